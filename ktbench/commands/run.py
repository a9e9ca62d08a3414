"""`ktbench run`: run a Gherkin suite against a target; leave Allure, JUnit and JSON results behind.

How it works: the command resolves and checks everything it can up front
(suite, targets file, tag expression, reachability), starts the embedded KT1
reference server when no target is given, then runs pytest in a *subprocess*
over the suite's step modules (steps/<suite>/) with ktbench.pytest_plugin.  A
subprocess keeps pytest-xdist workers, allure-pytest-bdd's global state and the
embedded server's thread apart, and makes `-n N` behave exactly like plain
pytest.  The verdict comes from the plugin's summary.json.

Exit codes (stable, for CI):
  0  every selected scenario passed (or was skipped)
  1  at least one scenario failed (non-conformance) or broke for a reason other than reachability
  2  usage or configuration error: unknown suite or target, bad targets file or tag expression,
     no scenario selected, or pytest could not collect/run the suite
  3  the target was unreachable (scenarios are reported BROKEN, not failed)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EMBEDDED_TARGET_NAME = "embedded"
# The embedded server expires claims quickly so claim-cycle scenarios do not wait the 300 s default.
EMBEDDED_CLAIM_TIMEOUT_SECONDS = 1.0

DEFAULT_OUT = Path("reports") / "out"
DEFAULT_HTML_DIR = DEFAULT_OUT / "allure-report"


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    title: str
    package: str  # the step modules
    kind: str  # target kind the suite tests
    embedded: str  # "module:function" of the context manager that starts an embedded target


SUITES: dict[str, SuiteSpec] = {
    "kt1": SuiteSpec(
        name="kt1",
        title="KT1.3 server",
        package="steps.kt1",
        kind="kt1-server",
        embedded="simulators.actors.kt1_bench:embedded_for_run",
    ),
}


class _UsageProblem(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def _error(message: str) -> None:
    typer.secho(f"ktbench run: {message}", err=True, fg=typer.colors.RED)


def _suite_dir(spec: SuiteSpec) -> Path:
    import importlib.util

    try:
        found = importlib.util.find_spec(spec.package)
    except ModuleNotFoundError:
        found = None
    if found is None or not found.submodule_search_locations:
        raise _UsageProblem(f"the step modules of suite {spec.name!r} ({spec.package}) are not installed; "
                            "run ktbench from a checkout of the repository")
    return Path(list(found.submodule_search_locations)[0]).resolve()


@contextmanager
def _embedded_target(spec: SuiteSpec) -> Iterator[str]:
    """Start the suite's embedded reference server; yields its URL."""
    import importlib

    module_name, _, func_name = spec.embedded.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise _UsageProblem(f"no --target given and the embedded reference server ({module_name}) is not "
                            f"available ({exc}); pass --target URL|NAME") from None
    start = getattr(module, func_name)
    try:
        running = start(data_path=None, db=":memory:", faults=(), claim_timeout=EMBEDDED_CLAIM_TIMEOUT_SECONDS)
        server = running.__enter__()
    except Exception as exc:  # a bench problem, reported without a traceback
        raise _UsageProblem(f"the embedded reference server did not start: {exc.__class__.__name__}: {exc}") from None
    try:
        yield str(server.url).rstrip("/")
    finally:
        running.__exit__(None, None, None)


def _write_embedded_targets(directory: Path, url: str, kind: str) -> Path:
    path = directory / "embedded-targets.toml"
    path.write_text(
        "# written by `ktbench run` for the embedded reference server (default data, default credentials)\n"
        f"[targets.{EMBEDDED_TARGET_NAME}]\n"
        f'kind = "{kind}"\n'
        f'url = "{url}"\n'
        "embedded = true\n"
        f"claim_timeout_seconds = {EMBEDDED_CLAIM_TIMEOUT_SECONDS}\n"
        'description = "ktbench embedded reference server"\n',
        encoding="utf-8",
    )
    return path


def probe(url: str, timeout: float = 5.0, verify: bool = True) -> str | None:
    """None if `url` answers HTTP at all, else why not."""
    import httpx

    try:
        with httpx.Client(timeout=timeout, verify=verify) as client:
            client.get(url)
    except httpx.TransportError as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


def _prepare_outputs(alluredir: Path, junitxml: Path, summary: Path, events: Path | None) -> None:
    from ktbench.report.allure_writer import clean_results_dir

    clean_results_dir(alluredir)  # never --clean-alluredir: it races between xdist workers
    alluredir.mkdir(parents=True, exist_ok=True)
    stale = [junitxml, summary]
    if events is not None:
        stale += [events, *events.parent.glob(f"{events.stem}.gw*{events.suffix}")]
    for path in stale:
        if path.is_file():
            path.unlink()


def build_pytest_args(*, suite: SuiteSpec, suite_dir: Path, target_args: list[str], alluredir: Path,
                      junitxml: Path, summary: Path, workers: str | None, tags: str | None, keep_going: bool,
                      validate: str, extra: list[str], events: Path | None = None,
                      fail_on: str = "error", validation_policy: Path | None = None) -> list[str]:
    rootdir = suite_dir.parents[1]
    args = [
        sys.executable, "-m", "pytest", str(suite_dir),
        "--rootdir", str(rootdir),
        "-p", "ktbench.pytest_plugin",
        "-p", "no:allure_pytest",
        "-p", "no:anyio",  # the suites are synchronous; its pytest plugin only adds deprecation noise
        "-p", "no:faker",  # importing Faker costs ~0.7 s per process; steps use the seeded `kt_faker` fixture
        "--alluredir", str(alluredir),
        "--junitxml", str(junitxml),
        "-o", f"junit_suite_name=ktbench-{suite.name}",
        "--kt-suite", suite.name,
        "--kt-summary", str(summary),
        "--kt-validate", validate,
        "--kt-fail-on", fail_on,
        "--tb", "short",  # step code and message; --pytest-args "--tb long" for the full picture
        *target_args,
    ]
    if workers is not None:
        args += ["-n", workers]
    if tags:
        args.append(f"--kt-tags={tags}")  # one token: pytest reads a separate "@..." argument as an args file
    if keep_going:
        args.append("--kt-keep-going")
    if events is not None:
        args += ["--kt-events", str(events)]
    if validation_policy is not None:
        args += ["--kt-validation-policy", str(validation_policy)]
    return args + extra


def _verdict_exit(pytest_rc: int, summary: Path) -> tuple[int, str]:
    """The exit code from pytest's return code and the run's summary.json.

    Reachability comes from the summary (a scenario broke with TargetUnreachable), not from the up-front
    probe alone: with --keep-going a target that was still starting may have answered after all.
    """
    import json

    if pytest_rc == 5:
        return EXIT_USAGE, "no scenario was selected (check --tags)"
    if pytest_rc not in (0, 1):
        return EXIT_USAGE, f"pytest could not run the suite (pytest exit code {pytest_rc}; see its output above)"
    try:
        data: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return EXIT_USAGE, f"the run wrote no summary ({summary}); see pytest's output above"
    verdict = data.get("verdict")
    counts = data.get("counts", {})
    text = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("passed", "failed", "broken", "skipped"))
    if verdict == "unreachable":
        return EXIT_UNREACHABLE, f"target unreachable ({text})"
    if verdict in ("failed", "broken"):
        return EXIT_FAILED, f"not all scenarios passed ({text})"
    if verdict == "empty":
        return EXIT_USAGE, "no scenario ran"
    return EXIT_PASSED, f"all scenarios passed ({text})"


def _print_locations(alluredir: Path, junitxml: Path, summary: Path) -> None:
    report_dir = alluredir.parent / "allure-report"
    typer.echo("")
    typer.echo(f"Allure results: {alluredir}")
    typer.echo(f"JUnit XML:      {junitxml}")
    typer.echo(f"JSON summary:   {summary}")
    typer.echo("View the Allure report:")
    typer.echo(f"  npx allure generate {alluredir} -o {report_dir} && npx allure open {report_dir}   (Allure 3)")
    typer.echo(f"  allure serve {alluredir}   (Allure 2 CLI, Java; static HTML: allure generate ... -o DIR --clean)")


def run_command(
    suite: Annotated[str, typer.Option("--suite", help="Suite to run (kt1).")] = "kt1",
    target: Annotated[str | None, typer.Option(
        "--target", "-t", help="URL (reference-server default credentials) or a target name from --targets. "
                               "Omit to test the embedded reference server.")] = None,
    targets: Annotated[Path | None, typer.Option(
        "--targets", help="TOML targets file (default: $KTBENCH_TARGETS).")] = None,
    workers: Annotated[str | None, typer.Option(
        "-n", "--workers", help="Parallel workers (pytest-xdist): a number or 'auto'.")] = None,
    alluredir: Annotated[Path, typer.Option("--alluredir", help="Allure results directory.")] =
        DEFAULT_OUT / "allure-results",
    junitxml: Annotated[Path, typer.Option("--junitxml", help="JUnit XML file.")] = DEFAULT_OUT / "junit.xml",
    summary: Annotated[Path, typer.Option("--summary", help="JSON summary file.")] = DEFAULT_OUT / "summary.json",
    tags: Annotated[str | None, typer.Option(
        "--tags", help="Tag expression, e.g. '@req:KT1-META-* and not @slow'.")] = None,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="Keep sending requests to a target that refused connections "
                             "(default: later requests fail fast as BROKEN).")] = False,
    validate: Annotated[str, typer.Option(
        "--validate", help="Validate every JSON/XML request and response of FHIR endpoints: auto (if the "
                           "validator is installed), on, off.")]
        = "auto",
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="Validation findings at or above this severity decide the verdict: error (default), "
                          "warning or never. In a response they fail the scenario; in a request the bench sent "
                          "they make it broken.")] = "error",
    validation_policy: Annotated[Path | None, typer.Option(
        "--validation-policy", help="TOML validation policy: per-rule severity overrides and suppressions "
                                    "(see reports/README.md).")] = None,
    events: Annotated[Path | None, typer.Option(
        "--events", help="Also write every event (redacted HTTP traffic, steps, outcomes) as NDJSON.")] = None,
    pytest_args: Annotated[str, typer.Option(
        "--pytest-args", help="Extra pytest arguments, e.g. \"-k metadata -x\".")] = "",
    html: Annotated[bool, typer.Option(
        "--html", help="After the run, build the Allure 3 HTML report (needs the Allure 3 CLI: npm install "
                       "allure@3, or $KTBENCH_ALLURE). Does not change the exit code.")] = False,
    html_dir: Annotated[Path | None, typer.Option(
        "--html-dir", help=f"HTML report directory (default: {DEFAULT_HTML_DIR}); implies --html.")] = None,
) -> None:
    """Run a conformance suite against a target (default: the embedded KT1 reference server).

    Exit codes: 0 all passed, 1 a scenario failed or broke, 2 usage/configuration error, 3 target unreachable.
    Results: Allure (--alluredir), JUnit (--junitxml), JSON summary (--summary); see reports/README.md.
    """
    try:
        code = _run(suite=suite, target=target, targets=targets, workers=workers, alluredir=alluredir,
                    junitxml=junitxml, summary=summary, tags=tags, keep_going=keep_going, validate=validate,
                    pytest_args=pytest_args, events=events, fail_on=fail_on,
                    validation_policy=validation_policy,
                    html_dir=html_dir if html_dir is not None else (DEFAULT_HTML_DIR if html else None))
    except _UsageProblem as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code)


def _run(*, suite: str, target: str | None, targets: Path | None, workers: str | None, alluredir: Path,
         junitxml: Path, summary: Path, tags: str | None, keep_going: bool, validate: str,
         pytest_args: str, events: Path | None = None, html_dir: Path | None = None,
         fail_on: str = "error", validation_policy: Path | None = None) -> int:
    from ktbench.pytest_plugin import TagExpression, TagExpressionError
    from ktbench.targets import TargetConfigError, resolve_target
    from ktbench.validation_policy import PolicyError, load_policy

    spec = SUITES.get(suite)
    if spec is None:
        raise _UsageProblem(f"unknown suite {suite!r} (known: {', '.join(sorted(SUITES))})")
    if validate not in ("auto", "on", "off"):
        raise _UsageProblem(f"--validate must be auto, on or off, not {validate!r}")
    try:  # checked here so a bad policy is a usage error before any server starts
        load_policy(validation_policy, fail_on=fail_on)
    except PolicyError as exc:
        raise _UsageProblem(str(exc)) from None
    validation_policy = validation_policy.resolve() if validation_policy is not None else None
    if workers is not None and not (workers == "auto" or workers.isdigit()):
        raise _UsageProblem(f"-n must be a number or 'auto', not {workers!r}")
    if tags:
        try:
            TagExpression(tags)
        except TagExpressionError as exc:
            raise _UsageProblem(f"--tags: {exc}") from None
    try:
        extra = shlex.split(pytest_args)
    except ValueError as exc:
        raise _UsageProblem(f"--pytest-args: {exc}") from None
    try:
        resolved = resolve_target(target, targets)
    except TargetConfigError as exc:
        raise _UsageProblem(str(exc)) from None
    if resolved is not None and resolved.kind != spec.kind:
        raise _UsageProblem(f"suite {spec.name!r} tests a {spec.kind}, but target {resolved.name!r} is a "
                            f"{resolved.kind}")
    suite_dir = _suite_dir(spec)
    alluredir, junitxml, summary = (p.resolve() for p in (alluredir, junitxml, summary))
    events = events.resolve() if events is not None else None

    with tempfile.TemporaryDirectory(prefix="ktbench-run-") as tmp, _maybe_embedded(resolved, spec) as url:
        if resolved is None:
            targets_file = _write_embedded_targets(Path(tmp), url, spec.kind)
            target_args = ["--kt-targets", str(targets_file), "--kt-target", EMBEDDED_TARGET_NAME]
            described = f"the embedded {spec.title} reference server at {url}"
            probe_url, verify = url, True
        else:
            target_args = ["--kt-target", target if target is not None else resolved.name]
            if targets is not None:  # otherwise the plugin reads $KTBENCH_TARGETS itself, like we did
                target_args += ["--kt-targets", str(Path(targets).resolve())]
            described = resolved.describe()
            probe_url, verify = resolved.url, resolved.verify_tls
        typer.echo(f"ktbench: suite {spec.name} ({spec.title}) against {described}")
        unreachable_reason = probe(probe_url, verify=verify)
        if unreachable_reason:
            typer.secho(f"ktbench: target unreachable: {unreachable_reason}; running the suite anyway so every "
                        "scenario is reported as BROKEN", err=True, fg=typer.colors.YELLOW)
        _prepare_outputs(alluredir, junitxml, summary, events)
        args = build_pytest_args(suite=spec, suite_dir=suite_dir, target_args=target_args, alluredir=alluredir,
                                 junitxml=junitxml, summary=summary, workers=workers, tags=tags,
                                 keep_going=keep_going, validate=validate, extra=extra, events=events,
                                 fail_on=fail_on, validation_policy=validation_policy)
        env = dict(os.environ)
        rootdir = str(suite_dir.parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (rootdir, env.get("PYTHONPATH", "")) if p)
        try:
            rc = subprocess.run(args, env=env, check=False).returncode
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
    code, message = _verdict_exit(rc, summary)
    if code != EXIT_USAGE:
        _print_locations(alluredir, junitxml, summary)
    if html_dir is not None:
        _build_html(spec, alluredir, html_dir.resolve(), resolved, probe_url)
    colour = typer.colors.GREEN if code == EXIT_PASSED else typer.colors.RED
    typer.secho(f"ktbench: {message} -> exit code {code}", fg=colour, err=code != EXIT_PASSED)
    return code


def _build_html(spec: SuiteSpec, alluredir: Path, html_dir: Path, resolved: Any, url: str) -> None:
    """--html: the Allure 3 HTML report; a problem is reported, the run's exit code stays as it is.

    The secrets to keep out of it are the target's; the embedded server runs on the default data.
    """
    from ktbench.report.html import HtmlReportError, build_html_report, report_secrets, viewing_hint
    from ktbench.targets import BenchError, target_from_url

    typer.echo(f"ktbench: building the HTML report in {html_dir} ...")
    try:
        target = resolved if resolved is not None else target_from_url(url, name=EMBEDDED_TARGET_NAME)
        report = build_html_report(alluredir, html_dir, secrets=report_secrets(target),
                                   name=f"ktbench {spec.name.upper()} conformance")
    except (HtmlReportError, BenchError, OSError) as exc:
        typer.secho(f"ktbench: HTML report not built: {exc}", err=True, fg=typer.colors.YELLOW)
        return
    for note in report.notes:
        typer.secho(f"ktbench: note: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"HTML report:    {report.index}   (Allure {report.allure.version}, {report.seconds:.1f} s)")
    typer.echo(f"  view it over http: {viewing_hint(report)}")


@contextmanager
def _maybe_embedded(resolved: Any, spec: SuiteSpec) -> Iterator[str]:
    if resolved is not None:
        yield resolved.url
        return
    with _embedded_target(spec) as url:
        yield url

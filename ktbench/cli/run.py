"""`ktbench run`: run a Gherkin suite against a target; leave Allure, JUnit and JSON results behind.

How it works: the command resolves and checks everything it can up front
(suite, targets file, tag expression, reachability), then hands over to the one
runner (ktbench.runner.suite_run), which starts the suite's embedded reference
simulators when no target is given and runs pytest in a subprocess over the
suite's steps with ktbench.runner.plugin.  The verdict comes from the plugin's
summary.json.

Before any scenario the generation's preflight checks that the target is reachable, speaks the suite's
protocol and accepts every role's credentials: a set-up mistake is a configuration verdict, never a failed
scenario.

Exit codes (stable, for CI):
  0  every selected scenario passed, and every selected requirement was verified
  1  at least one scenario failed (non-conformance) or broke for a reason other than reachability
  2  usage or configuration error: unknown suite or target, bad targets file or tag expression, a failed
     preflight (not the protocol, credentials refused), no scenario selected, or pytest could not run
  3  the target was unreachable (at the preflight, or mid-run: scenarios are then reported BROKEN)
  4  incomplete: nothing failed, but a selected requirement went unverified because its scenarios were
     skipped (the target did not declare what they need); --allow-incomplete makes this exit 0
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INCOMPLETE = 4
ALL_SUITES = "all"
# which exit code of several suites' wins: a set-up problem before unreachability before failures before gaps
_EXIT_PRIORITY = (EXIT_USAGE, EXIT_UNREACHABLE, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_PASSED)

DEFAULT_OUT = Path("reports") / "out"
DEFAULT_HTML_DIR = DEFAULT_OUT / "allure-report"


class _UsageProblem(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


def _error(message: str) -> None:
    typer.secho(f"ktbench run: {message}", err=True, fg=typer.colors.RED)


def _check_outputs(alluredir: Path, junitxml: Path, summary: Path, events: Path | None,
                   html_dir: Path | None) -> None:
    """Every output is usable before anything starts (one clear message, exit 2)."""
    import os

    for option, path in (("--alluredir", alluredir), ("--html-dir", html_dir)):
        if path is not None and path.exists() and not path.is_dir():
            raise _UsageProblem(f"{option} {path} is a file; give a directory")
    for option, path in (("--junitxml", junitxml), ("--summary", summary), ("--events", events)):
        if path is None:
            continue
        if path.is_dir():
            raise _UsageProblem(f"{option} {path} is a directory; give a file name")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            raise _UsageProblem(f"{option} {path}: {path.parent} is not a writable directory") from None
        if not os.access(path.parent, os.W_OK):
            raise _UsageProblem(f"{option} {path}: {path.parent} is not a writable directory")


def _prepare_outputs(alluredir: Path | None, junitxml: Path, summary: Path, events: Path | None) -> None:
    from ktbench.report.allure_writer import clean_results_dir

    if alluredir is not None:  # None: a later suite of `--suite all` adds to the results of the earlier ones
        clean_results_dir(alluredir)  # never --clean-alluredir: it races between xdist workers
        alluredir.mkdir(parents=True, exist_ok=True)
    stale = [junitxml, summary]
    if events is not None:
        stale += [events, *events.parent.glob(f"{events.stem}.gw*{events.suffix}")]
    for path in stale:
        if path.is_file():
            path.unlink()


def _verdict_exit(pytest_rc: int, summary: Path, allow_incomplete: bool = False) -> tuple[int, str]:
    """The exit code from pytest's return code and the run's summary.json.

    Reachability comes from the summary (a scenario broke with TargetUnreachable), not from the up-front
    probe alone: with --keep-going a target that was still starting may have answered after all.
    """
    import json

    if pytest_rc == -1:  # stopped by the preflight: the summary says why
        data = json.loads(summary.read_text(encoding="utf-8"))
        problems = "; ".join(p["message"] for p in data.get("preflight", []))
        if data.get("verdict") == "unreachable":
            return EXIT_UNREACHABLE, f"target unreachable, no scenario ran: {problems}"
        return EXIT_USAGE, f"configuration problem, no scenario ran: {problems}"
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
    incomplete = data.get("incomplete") or {}
    if incomplete and not allow_incomplete:
        return EXIT_INCOMPLETE, (f"incomplete: {len(incomplete)} selected requirement(s) went unverified ({text}); "
                                 "declare what their skip reasons ask for, or pass --allow-incomplete")
    return EXIT_PASSED, f"all scenarios passed ({text})" + (
        f"; {len(incomplete)} requirement(s) unverified, allowed by --allow-incomplete" if incomplete else "")


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
    ctx: typer.Context,
    suite: Annotated[str, typer.Option("--suite", help="Suite to run: kt1, kt2, all (every server suite, one "
                                                        "report), or kt1-apps / kt2-apps with --role.")] = "kt1",
    role: Annotated[str | None, typer.Option(
        "--role", help="With kt1-apps / kt2-apps: the role of the application under test (portal or module); "
                       "default: the target's kind.")] = None,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", help="URL (the generation's default credentials) or a target name from --targets. "
                               "Omit to test the embedded reference simulators.")] = None,
    targets: Annotated[Path | None, typer.Option(
        "--targets", help="TOML targets file (default: $KTBENCH_TARGETS).")] = None,
    fault: Annotated[list[str] | None, typer.Option(
        "--fault", help="Switch on a catalogued defect of the embedded simulator under test (repeatable; see "
                        "`ktbench serve kt1|kt2 --list-faults`, simulators/ktN/apps/faults.py): watch the suite "
                        "catch it. Not with --target.")] = None,
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
        "--validate", help="Validate every JSON/XML message of FHIR endpoints: auto (if the validator is "
                           "installed), on, off.")] = "auto",
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="Validation findings at or above this severity decide the verdict: error (default), "
                          "warning or never. In a message the target sent they fail the scenario; in one the "
                          "bench sent they make it broken.")] = "error",
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
    slow: Annotated[bool, typer.Option(
        "--slow", help="Also run the scenarios that wait for a real server's long timers (claim timeouts of "
                       "minutes).")] = False,
    allow_incomplete: Annotated[bool, typer.Option(
        "--allow-incomplete", help="Exit 0 even when selected requirements went unverified (skipped scenarios); "
                                   "they are still listed.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show pytest's own output with full tracebacks instead of ktbench's progress lines.")]
        = False,
) -> None:
    """Run a conformance suite against a target (default: the embedded reference simulators).

    Exit codes: 0 all passed, 1 a scenario failed or broke, 2 usage/configuration error, 3 target unreachable,
    4 incomplete (selected requirements unverified; --allow-incomplete).
    Results: Allure (--alluredir), JUnit (--junitxml), JSON summary (--summary); see reports/README.md.
    """
    from ktbench.cli.registry import registry_from_context
    from ktbench.core.errors import ConfigurationError

    try:
        registry = registry_from_context(ctx)
        suite = _suite_for_role(registry, suite, role, target, targets)
        code = _run(registry, suite=suite, target=target, targets=targets, workers=workers, alluredir=alluredir,
                    junitxml=junitxml, summary=summary, tags=tags, keep_going=keep_going, validate=validate,
                    pytest_args=pytest_args, events=events, fail_on=fail_on,
                    validation_policy=validation_policy, slow=slow, allow_incomplete=allow_incomplete, debug=debug,
                    html_dir=html_dir if html_dir is not None else (DEFAULT_HTML_DIR if html else None),
                    faults=tuple(fault or ()))
    except (_UsageProblem, ConfigurationError) as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    raise typer.Exit(code)


def _check_faults(generation: Any, spec: Any, faults: tuple[str, ...]) -> None:
    if not faults:
        return
    catalogue = getattr(generation, "fault_catalogue", None)
    known = catalogue(spec) if catalogue is not None else {}
    unknown = [name for name in faults if name not in known]
    if unknown:
        listed = ", ".join(known) or "none"
        raise _UsageProblem(f"suite {spec.name} has no fault {', '.join(map(repr, unknown))} (faults: {listed})")


def _suite_for_role(registry: Any, suite: str, role: str | None, target: str | None,
                    targets: Path | None) -> str:
    """`--suite kt2-apps --role module` -> the suite `kt2-apps-module`; without --role, the target's kind decides."""
    suites = registry.suites()
    family = sorted(name for name in suites if name.startswith(f"{suite}-") and "-" not in name[len(suite) + 1:]
                    and not registry.kind(suites[name][1].kind)[1].bench_is_client)
    if role is not None:
        if not family:
            raise _UsageProblem(f"--role goes with an application suite (kt1-apps, kt2-apps), not --suite {suite}")
        chosen = f"{suite}-{role}"
        if chosen not in suites:
            roles = ", ".join(name[len(suite) + 1:] for name in family)
            raise _UsageProblem(f"suite {suite} has no role {role!r} (roles: {roles})")
        return chosen
    if suite in suites or not family:
        return suite
    if target is not None:
        from ktbench.targets.reader import resolve_target

        kind = suites[family[0]][1].kind
        resolved = resolve_target(target, targets, registry, kind=kind)
        for name in family:
            if resolved is not None and suites[name][1].kind == resolved.kind:
                return name
    roles = " or ".join(name[len(suite) + 1:] for name in family)
    raise _UsageProblem(f"suite {suite} needs --role {roles} (the role of the application under test)")


def _run(registry: Any, *, suite: str, target: str | None, targets: Path | None, workers: str | None,
         alluredir: Path, junitxml: Path, summary: Path, tags: str | None, keep_going: bool, validate: str,
         pytest_args: str, events: Path | None = None, html_dir: Path | None = None,
         fail_on: str = "error", validation_policy: Path | None = None, slow: bool = False,
         allow_incomplete: bool = False, debug: bool = False, clean: bool = True,
         tested_targets: list[Any] | None = None, faults: tuple[str, ...] = ()) -> int:
    if faults and (suite == ALL_SUITES or target is not None):
        raise _UsageProblem("--fault switches on a defect of the embedded simulators of one suite: leave out "
                            "--target and --suite all")
    if suite == ALL_SUITES:
        return _run_all(registry, target=target, targets=targets, workers=workers, alluredir=alluredir,
                        junitxml=junitxml, summary=summary, tags=tags, keep_going=keep_going, validate=validate,
                        pytest_args=pytest_args, events=events, html_dir=html_dir, fail_on=fail_on,
                        validation_policy=validation_policy, slow=slow, allow_incomplete=allow_incomplete,
                        debug=debug)
    from ktbench.runner.suite_run import RunOptions, run_suite, steps_dir
    from ktbench.runner.tags import TagExpression, TagExpressionError
    from ktbench.targets.reader import looks_like_url, resolve_target
    from ktbench.validation_policy import PolicyError, load_policy

    generation, spec = registry.suite(suite)
    _check_faults(generation, spec, faults)
    application_target = not registry.kind(spec.kind)[1].bench_is_client
    if application_target and workers not in (None, "1"):
        raise _UsageProblem(f"suite {spec.name} runs serially: the application under test talks to one bench "
                            "server, so leave out -n")
    if validate not in ("auto", "on", "off"):
        raise _UsageProblem(f"--validate must be auto, on or off, not {validate!r}")
    try:  # checked here so a bad policy is a usage error before any server starts
        load_policy(validation_policy, fail_on=fail_on)
    except PolicyError as exc:
        raise _UsageProblem(str(exc)) from None
    validation_policy = validation_policy.resolve() if validation_policy is not None else None
    if workers is not None and not (workers == "auto" or (workers.isascii() and workers.isdigit()
                                                          and 0 < int(workers) <= 64)):
        raise _UsageProblem(f"-n must be a number from 1 to 64 or 'auto', not {workers!r}")
    if tags:
        try:
            TagExpression(tags)
        except TagExpressionError as exc:
            raise _UsageProblem(f"--tags: {exc}") from None
    try:
        extra = shlex.split(pytest_args)
    except ValueError as exc:
        raise _UsageProblem(f"--pytest-args: {exc}") from None
    if application_target and target is not None and looks_like_url(target):
        raise _UsageProblem(f"suite {spec.name} tests an application, which a bare URL cannot describe: give it a "
                            "table in a targets file (kind, url, driver, server_port, credentials; see "
                            "docs/driver-contract.md) and use --targets FILE --target NAME")
    resolved = resolve_target(target, targets, registry, kind=spec.kind)
    if resolved is not None and resolved.kind != spec.kind:
        raise _UsageProblem(f"suite {spec.name!r} tests a {spec.kind} target, but target {resolved.name!r} is a "
                            f"{resolved.kind}")
    steps_dir(spec)  # installed?
    alluredir, junitxml, summary = (p.resolve() for p in (alluredir, junitxml, summary))
    events = events.resolve() if events is not None else None
    _check_outputs(alluredir, junitxml, summary, events, html_dir)
    try:
        _prepare_outputs(alluredir if clean else None, junitxml, summary, events)
    except OSError as exc:
        raise _UsageProblem(f"cannot prepare the outputs: {exc.strerror or exc} ({exc.filename})") from None
    tested: list[Any] = []

    def announce(ready: Any) -> None:
        tested.append(ready)
        if tested_targets is not None:
            tested_targets.append(ready)
        described = (f"the embedded reference simulators at {ready.url}" if resolved is None
                     else ready.describe())
        typer.echo(f"ktbench: suite {spec.name} ({spec.title}) against {described}")
        briefing = getattr(generation, "application_briefing", None)
        if application_target and briefing is not None:  # on the console only: it may hold credentials
            for line in briefing(ready):
                typer.echo(f"ktbench:   {line}")

    options = RunOptions(workers=workers, tags=tags, keep_going=keep_going, validate=validate, fail_on=fail_on,
                         validation_policy=validation_policy, alluredir=alluredir, junitxml=junitxml,
                         summary=summary, events=events, extra_args=tuple(extra), slow=slow, debug=debug)
    try:
        run = run_suite(registry, spec.name, target=resolved, faults=faults, options=options, on_target=announce)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    for problem in run.preflight:
        _error(f"preflight: {problem.message}")
    code, message = _verdict_exit(run.returncode, summary, allow_incomplete)
    if code != EXIT_USAGE:
        _print_locations(alluredir, junitxml, summary)
    if html_dir is not None and tested:
        _build_html(spec, alluredir, html_dir.resolve(), tested[0])
    colour = typer.colors.GREEN if code == EXIT_PASSED else typer.colors.RED
    typer.secho(f"ktbench: {message} -> exit code {code}", fg=colour, err=code != EXIT_PASSED)
    return code


def _build_html(spec: Any, alluredir: Path, html_dir: Path, target: Any) -> None:
    """--html: the Allure 3 HTML report; a problem is reported, the run's exit code stays as it is."""
    from ktbench.core.errors import BenchError
    from ktbench.report.html import (
        HtmlReportError,
        build_html_report,
        report_secrets,
        viewing_hint,
    )

    typer.echo(f"ktbench: building the HTML report in {html_dir} ...")
    try:
        report = build_html_report(alluredir, html_dir, secrets=report_secrets(target),
                                   name=f"ktbench {spec.name.upper()} conformance")
    except (HtmlReportError, BenchError, OSError) as exc:
        typer.secho(f"ktbench: HTML report not built: {exc}", err=True, fg=typer.colors.YELLOW)
        return
    for note in report.notes:
        typer.secho(f"ktbench: note: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"HTML report:    {report.index}   (Allure {report.allure.version}, {report.seconds:.1f} s)")
    typer.echo(f"  view it over http: {viewing_hint(report)}")


def _per_suite(path: Path, suite: str) -> Path:
    return path.with_name(f"{path.stem}-{suite}{path.suffix}")


def _run_all(registry: Any, *, target: str | None, targets: Path | None, junitxml: Path, summary: Path,
             alluredir: Path, events: Path | None, html_dir: Path | None, **common: Any) -> int:
    """`--suite all`: every suite in turn into one Allure results directory; one summary.json and one JUnit
    file over all of them (each suite's own are kept next to them as <name>-<suite>.<ext>).

    Each suite runs against its embedded reference simulators, or - with --targets - against the file's one
    target of the suite's kind.  The exit code is the most serious of the suites' (2, 3, 1, 4, 0).
    """
    from ktbench.report.allure_writer import clean_results_dir
    from ktbench.report.combined import combine_junit, combine_summaries
    from ktbench.targets.reader import load_targets_file

    if target is not None:
        raise _UsageProblem("--suite all runs every suite against its own target: leave out --target (embedded "
                            "simulators) or give --targets with one target per kind")
    alluredir, junitxml, summary = (p.resolve() for p in (alluredir, junitxml, summary))
    _check_outputs(alluredir, junitxml, summary, events, html_dir)
    targets_file = None
    if targets is not None:
        targets_file = load_targets_file(targets, registry)
    clean_results_dir(alluredir)
    alluredir.mkdir(parents=True, exist_ok=True)
    codes: dict[str, int] = {}
    tested: list[Any] = []
    for name, (_, spec) in registry.suites().items():
        if not registry.kind(spec.kind)[1].bench_is_client:
            continue  # application-under-test suites need an application: run them with --suite ...-apps
        chosen = None
        if targets_file is not None:
            of_kind = [t for t in targets_file.targets.values() if t.kind == spec.kind]
            if len(of_kind) != 1:
                raise _UsageProblem(f"--suite all with --targets needs exactly one {spec.kind} target in {targets} "
                                    f"for suite {name} (found {len(of_kind)})")
            chosen = of_kind[0].name
        typer.echo(f"ktbench: --suite all: suite {name}")
        codes[name] = _run(registry, suite=name, target=chosen, targets=targets, alluredir=alluredir,
                           junitxml=_per_suite(junitxml, name), summary=_per_suite(summary, name),
                           events=_per_suite(events, name) if events is not None else None, html_dir=None,
                           clean=False, tested_targets=tested, **common)
    code = next(c for c in _EXIT_PRIORITY if c in codes.values())
    combine_summaries({n: _per_suite(summary, n) for n in codes}, summary, codes, code)
    combine_junit([_per_suite(junitxml, n) for n in codes], junitxml)
    if html_dir is not None:
        _build_html_all(alluredir, html_dir.resolve(), tested)
    text = ", ".join(f"{n} exit {c}" for n, c in codes.items())
    typer.secho(f"ktbench: all suites: {text} -> exit code {code}",
                fg=typer.colors.GREEN if code == EXIT_PASSED else typer.colors.RED, err=code != EXIT_PASSED)
    return code


def _build_html_all(alluredir: Path, html_dir: Path, tested: list[Any]) -> None:
    from ktbench.core.errors import BenchError
    from ktbench.report.html import HtmlReportError, build_html_report, report_secrets

    typer.echo(f"ktbench: building the HTML report in {html_dir} ...")
    secrets = [s for target in tested for s in report_secrets(target)]
    try:
        report = build_html_report(alluredir, html_dir, secrets=secrets, name="ktbench conformance (all suites)")
    except (HtmlReportError, BenchError, OSError) as exc:
        typer.secho(f"ktbench: HTML report not built: {exc}", err=True, fg=typer.colors.YELLOW)
        return
    typer.echo(f"HTML report:    {report.index}")

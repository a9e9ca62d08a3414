"""The one way to run a suite: `ktbench run`, the kill-matrix tests and the benchmarks all call `run_suite`.

It starts the suite's embedded reference simulators when no target is given (with faults, for the kill
matrix), describes the target in a private targets file (the one description the subprocess gets), runs
pytest in a *subprocess* over the suite's steps package with ktbench.runner.plugin, and reads the verdict
from the plugin's summary.json - never by parsing JUnit text.  A subprocess keeps pytest-xdist workers,
allure-pytest-bdd's global state and the embedded servers' threads apart, and makes `-n N` behave exactly
like plain pytest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktbench.core.errors import ConfigurationError
from ktbench.core.generation import (
    GenerationRegistry,
    PreflightProblem,
    SuiteSpec,
    preflight,
)
from ktbench.targets.model import Target
from ktbench.targets.writer import write_targets_file

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ScenarioResult:
    nodeid: str
    name: str
    feature: str
    outcome: str                      # passed | failed | broken | skipped
    requirements: tuple[str, ...]
    failed_requirement: str | None
    checked_requirements: tuple[str, ...] = ()
    message: str = ""


@dataclass
class SuiteRun:
    suite: str
    target: str
    faults: tuple[str, ...]
    returncode: int                   # pytest's
    wall_seconds: float
    summary: dict[str, Any] | None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    output: str = ""                  # captured pytest output (tail), when captured
    preflight: list[PreflightProblem] = field(default_factory=list)  # non-empty: no scenario ran

    @property
    def verdict(self) -> str:
        return (self.summary or {}).get("verdict", "no-summary")

    def with_outcome(self, outcome: str) -> list[ScenarioResult]:
        return [s for s in self.scenarios if s.outcome == outcome]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "broken": 0, "skipped": 0}
        for s in self.scenarios:
            counts[s.outcome] = counts.get(s.outcome, 0) + 1
        return counts


@dataclass(frozen=True)
class RunOptions:
    workers: str | None = None
    tags: str | None = None
    keep_going: bool = False
    validate: str = "auto"
    fail_on: str = "error"
    validation_policy: Path | None = None
    alluredir: Path | None = None
    junitxml: Path | None = None
    summary: Path | None = None       # default: in the run's work folder
    events: Path | None = None
    extra_args: tuple[str, ...] = ()
    capture_output: bool = False      # True: keep pytest's output in SuiteRun.output instead of printing it
    timeout: float | None = None
    pycache: Path | None = None       # shared compiled modules for many runs (PYTHONPYCACHEPREFIX)
    quiet: bool = False
    slow: bool = False                # include the scenarios that wait for a real server's long timers
    preflight: bool = True            # check reachability, protocol and credentials before any scenario
    debug: bool = False               # full pytest tracebacks in the console


def steps_dir(suite: SuiteSpec) -> Path:
    try:
        found = importlib.util.find_spec(suite.steps_package)
    except ModuleNotFoundError:
        found = None
    if found is None or not found.submodule_search_locations:
        raise ConfigurationError(f"the steps of suite {suite.name!r} ({suite.steps_package}) are not installed; "
                                 "run ktbench from a checkout of the repository")
    return Path(list(found.submodule_search_locations)[0]).resolve()


def combined_tags(suite: SuiteSpec, tags: str | None) -> str | None:
    parts = [f"({t})" for t in (suite.default_tags, tags) if t]
    return " and ".join(parts) if parts else None


def pytest_command(registry: GenerationRegistry, suite: SuiteSpec, targets_file: Path, target_name: str,
                   summary: Path, options: RunOptions) -> list[str]:
    args = [
        sys.executable, "-m", "pytest", str(steps_dir(suite)),
        "--rootdir", str(REPO),
        "-p", "ktbench.runner.plugin",
        "-p", "no:allure_pytest",
        "-p", "no:anyio",     # the suites are synchronous; its pytest plugin only adds deprecation noise
        "-p", "no:faker",     # importing Faker costs ~0.7 s per process; steps use the seeded `kt_faker` fixture
        "-p", "no:hypothesispytest",   # the bench's own fuzz tests use it; loading it costs ~1.7 s per process
        "-p", "no:cacheprovider",
        "--kt-suite", suite.name,
        "--kt-targets", str(targets_file), "--kt-target", target_name,
        "--kt-summary", str(summary),
        "--kt-validate", options.validate,
        "--kt-fail-on", options.fail_on,
    ]
    for path in registry.import_paths.values():
        args += ["--kt-generation", path]
    if options.alluredir is not None:
        args += ["--alluredir", str(options.alluredir)]
    else:
        args += ["-p", "no:allure_pytest_bdd"]
    if options.junitxml is not None:
        args += ["--junitxml", str(options.junitxml), "-o", f"junit_suite_name=ktbench-{suite.name}"]
    if options.workers is not None:
        args += ["-n", str(options.workers)]
    tags = combined_tags(suite, options.tags)
    if tags:
        args.append(f"--kt-tags={tags}")  # one token: pytest reads a separate "@..." argument as an args file
    if options.keep_going:
        args.append("--kt-keep-going")
    if options.slow:
        args.append("--kt-slow")
    if options.events is not None:
        args += ["--kt-events", str(options.events)]
    if options.validation_policy is not None:
        args += ["--kt-validation-policy", str(options.validation_policy)]
    if options.quiet:          # captured (tests, benchmarks): short and parseable
        args += ["-q", "--tb", "line"]
    elif options.debug:        # a developer looking into the bench: pytest's full picture
        args += ["--tb", "long", "-rA"]
    else:                      # a tester: ktbench's progress lines and summary, no pytest internals
        args += ["-q", "--tb", "no", "--no-header", "--kt-progress"]
    return args + list(options.extra_args)


def _environment(options: RunOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KTBENCH_TARGETS", None)  # the subprocess gets its target explicitly
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if options.pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(options.pycache)
    return env


def preflight_summary(suite: SuiteSpec, target: Target, problems: list[PreflightProblem]) -> dict[str, Any]:
    """summary.json of a run stopped by its preflight: the configuration verdict and why, no scenarios."""
    from ktbench.report.summary_json import SCHEMA_VERSION

    verdict = "unreachable" if any(p.kind == "unreachable" for p in problems) else "configuration"
    return {"schema": SCHEMA_VERSION, "suite": suite.name, "verdict": verdict,
            "target": {"name": target.name, "url": target.url, "kind": target.kind, "embedded": target.embedded},
            "preflight": [{"kind": p.kind, "message": p.message} for p in problems],
            "counts": {"passed": 0, "failed": 0, "broken": 0, "skipped": 0, "total": 0},
            "requirements": {}, "incomplete": {}, "not_tested": {}, "scenarios": []}


def _write_preflight_results(suite: SuiteSpec, target: Target, problems: list[PreflightProblem],
                             options: RunOptions) -> None:
    """Allure and JUnit say why nothing ran, so a CI pipeline publishing them shows the configuration verdict."""
    from ktbench.report import preflight_results
    from ktbench.report.allure_writer import environment_values

    if options.alluredir is not None:
        preflight_results.write_allure(options.alluredir, suite.name, target.name, problems,
                                       environment_values(suite.name, target), REPO / "reports" / "categories.json")
    if options.junitxml is not None:
        preflight_results.write_junit(options.junitxml, suite.name, problems)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def scenarios_of(summary: dict[str, Any] | None) -> list[ScenarioResult]:
    results = []
    for s in (summary or {}).get("scenarios", []):
        results.append(ScenarioResult(
            nodeid=s.get("nodeid", ""), name=s.get("name", ""), feature=s.get("feature", ""),
            outcome=s.get("outcome", "broken"), requirements=tuple(s.get("requirements", ())),
            failed_requirement=s.get("failed_requirement"),
            checked_requirements=tuple(s.get("checked_requirements", ())), message=s.get("message", "")))
    return results


@contextmanager
def prepared_target(registry: GenerationRegistry, suite: SuiteSpec, target: Target | None,
                    faults: Sequence[str], workdir: Path) -> Iterator[Target]:
    """The target to test: the given one, or the suite's embedded simulators (started here, with `faults`)."""
    if target is not None:
        if faults:
            raise ConfigurationError("faults apply to the embedded reference simulators only")
        yield target
        return
    generation, _ = registry.suite(suite.name)
    with generation.embedded(suite, faults=tuple(faults), workdir=workdir) as embedded:
        yield embedded


def run_suite(registry: GenerationRegistry, suite_name: str, *, target: Target | None = None,
              faults: Sequence[str] = (), workdir: Path | None = None, options: RunOptions = RunOptions(),
              on_target: Callable[[Target], None] | None = None) -> SuiteRun:
    """Run one suite against `target` (None: the embedded reference simulators, with `faults`).

    `on_target` is called with the target once it is ready (the CLI prints what is being tested).
    """
    _, suite = registry.suite(suite_name)
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ktbench-run-")))
        workdir.mkdir(parents=True, exist_ok=True)
        ready = stack.enter_context(prepared_target(registry, suite, target, faults, workdir))
        if on_target is not None:
            on_target(ready)
        summary = options.summary or (workdir / "summary.json")
        if summary.exists():
            summary.unlink()
        problems = preflight(registry.suite(suite_name)[0], ready) if options.preflight else []
        if problems:
            data = preflight_summary(suite, ready, problems)
            write_json(summary, data)
            _write_preflight_results(suite, ready, problems, options)
            return SuiteRun(suite=suite.name, target=ready.name, faults=tuple(faults), returncode=-1, wall_seconds=0.0,
                            summary=data, preflight=problems)
        targets_file = write_targets_file(workdir / "targets.toml", [ready])
        command = pytest_command(registry, suite, targets_file, ready.name, summary, options)
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=str(REPO), env=_environment(options), check=False,
                              capture_output=options.capture_output, text=True, timeout=options.timeout)
        wall = time.perf_counter() - started
        targets_file.unlink(missing_ok=True)  # it holds the target's credentials
    data = read_summary(summary)
    output = (proc.stdout or "") + (proc.stderr or "") if options.capture_output else ""
    return SuiteRun(suite=suite.name, target=ready.name, faults=tuple(faults), returncode=proc.returncode,
                    wall_seconds=wall, summary=data, scenarios=scenarios_of(data), output=output[-6000:])

"""The pytest plugin that turns a pytest-bdd run into a ktbench conformance run: the hooks, wired together.

Loaded by `ktbench run` (`-p ktbench.runner.plugin`) and by the repo-root conftest.py (so
`pytest steps/kt1 --kt-target URL` works too); inert unless `--kt-target` or `--kt-suite` is given, so the
bench's own tests are unaffected.  The generation(s) come in as import paths (`--kt-generation module:attr`,
default: the `kt_generations` ini value), never as a static import.  What each hook does lives in the
modules named in ktbench.runner's docstring; this module only decides when.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ktbench.core.errors import BenchError, ConfigurationError
from ktbench.core.events import (
    OUTCOMES,
    Event,
    EventRecorder,
    HttpExchange,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
    StepFinished,
    StepStarted,
    ValidationReported,
)
from ktbench.core.generation import registry_of
from ktbench.core.redact import Redactor
from ktbench.core.requirements import (
    ScenarioRequirements,
    enter_scope,
    leave_scope,
    load_catalogue,
)
from ktbench.http.client import TargetUnreachable
from ktbench.report.junit import OUTCOME_PROPERTY
from ktbench.runner import allure_bridge, scrub, xdist_relay
from ktbench.runner.fixtures import (  # noqa: F401
    kt_events,
    kt_http,
    kt_profile_check,
    kt_requirements,
    kt_target,
)
from ktbench.runner.outcomes import (
    classify_exception,
    classify_report,
    failure_requirement,
)
from ktbench.runner.state import (
    RUN,
    TAGS_ATTR,
    ItemState,
    RunState,
    item_state,
    run_state,
)
from ktbench.runner.tags import TagExpression, TagExpressionError, split_tags
from ktbench.runner.verdict import profile_verdict
from ktbench.targets.reader import resolve_target
from ktbench.validation_policy import (
    DEFAULT_FAIL_ON,
    FAIL_ON_CHOICES,
    PolicyError,
    load_policy,
)

_CONFIG: list[pytest.Config] = []  # the config(s) being configured; pytest-bdd's tag hook does not get one


# ---------------------------------------------------------------------------------------------------------------
# Options and configuration
# ---------------------------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("kt_generations", type="linelist", default=[],
                  help="ktbench generations (module:attribute) to load when --kt-generation is not given")
    group = parser.getgroup("ktbench", "ktbench (Koppeltaal conformance bench)")
    group.addoption("--kt-target", dest="kt_target", metavar="URL|NAME", default=None,
                    help="target to test: a URL (the generation's default credentials) or a name from --kt-targets")
    group.addoption("--kt-targets", dest="kt_targets", metavar="FILE", default=None,
                    help="TOML targets file (default: $KTBENCH_TARGETS)")
    group.addoption("--kt-generation", dest="kt_generations", metavar="MODULE:ATTR", action="append", default=[],
                    help="a ktbench generation to load (repeatable; default: the kt_generations ini value)")
    group.addoption("--kt-suite", dest="kt_suite", metavar="NAME", default=None,
                    help="the suite being run (default: the first suite of the target's kind)")
    group.addoption("--kt-tags", dest="kt_tags", metavar="EXPR", default=None,
                    help="run only scenarios whose tags match, e.g. '@req:KT1-META-* and not @slow'")
    group.addoption("--kt-summary", dest="kt_summary", metavar="FILE", default=None,
                    help="write the JSON run summary to FILE")
    group.addoption("--kt-events", dest="kt_events", metavar="FILE", default=None,
                    help="write every event (redacted) as NDJSON to FILE (xdist workers: FILE stem + .gwN)")
    group.addoption("--kt-keep-going", dest="kt_keep_going", action="store_true", default=False,
                    help="keep sending requests to a target that refused connections (default: fail fast)")
    group.addoption("--kt-validate", dest="kt_validate", choices=("auto", "on", "off"), default="auto",
                    help="validate every JSON/XML message of FHIR endpoints with ktbench.validation "
                         "(auto: if installed)")
    group.addoption("--kt-fail-on", dest="kt_fail_on", choices=FAIL_ON_CHOICES, default=DEFAULT_FAIL_ON,
                    help="validation findings at or above this severity decide the verdict: in a message the "
                         "target sent they fail the scenario, in one the bench sent they make it broken")
    group.addoption("--kt-validation-policy", dest="kt_validation_policy", metavar="FILE", default=None,
                    help="TOML validation policy: per-rule severity overrides and suppressions "
                         "(see reports/README.md)")


def load_validator(mode: str, kt: int | None = None,
                   suppressions: Any = None) -> Callable[[bytes, str | None], Any] | None:
    """The live validator hook: ktbench.validation.validate_bytes, when present (optional component)."""
    if mode == "off":
        return None
    try:
        module = importlib.import_module("ktbench.validation")
    except ModuleNotFoundError as exc:
        if exc.name != "ktbench.validation":
            raise
        module = None
    validate_bytes = getattr(module, "validate_bytes", None)
    if validate_bytes is None:
        if mode == "on":
            raise pytest.UsageError("--kt-validate on: ktbench.validation.validate_bytes is not available")
        return None

    def validate(data: bytes, content_type: str | None) -> Any:
        return validate_bytes(data, content_type=content_type, kt=kt, suppressions=suppressions)

    return validate


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG.append(config)
    config.addinivalue_line("markers", "allure_label: allure label marker (set from Gherkin tags by ktbench)")
    opt = config.option
    spec = getattr(opt, "kt_target", None)
    suite_name = getattr(opt, "kt_suite", None)
    state = RunState(active=spec is not None or suite_name is not None, is_worker=hasattr(config, "workerinput"))
    config.stash[RUN] = state
    if not state.active:
        return
    try:
        _configure_run(config, state, spec, suite_name)
    except (ConfigurationError, PolicyError, TagExpressionError) as exc:
        raise pytest.UsageError(str(exc)) from None
    _subscribe_writers(config, state)


def _configure_run(config: pytest.Config, state: RunState, spec: str | None, suite_name: str | None) -> None:
    opt = config.option
    paths = list(opt.kt_generations) or list(config.getini("kt_generations"))
    if not paths:
        raise ConfigurationError("no ktbench generation to load: pass --kt-generation module:attr "
                                 "(`ktbench run` does this) or set kt_generations in the pytest ini")
    registry = registry_of(paths)
    if suite_name is not None:
        generation, suite = registry.suite(suite_name)
        kind_name = suite.kind
    else:
        suite = None
        kinds = registry.kinds()
        if len(kinds) != 1:
            raise ConfigurationError("--kt-suite NAME is needed to know which target kind to expect")
        kind_name = next(iter(kinds))
    target = resolve_target(spec, opt.kt_targets, registry, kind=kind_name)
    if target is None:
        raise ConfigurationError("no target given: pass --kt-target URL|NAME "
                                 "(`ktbench run` without --target starts the embedded reference simulators)")
    generation, kind = registry.kind(target.kind)
    if suite is None:
        suite = next((s for s in generation.suites if s.kind == kind.name), None)
    elif suite.kind != target.kind:
        raise ConfigurationError(f"suite {suite.name!r} tests a {suite.kind} target, but {target.name!r} is a "
                                 f"{target.kind}")
    state.generation, state.kind, state.target, state.suite_spec = generation, kind, target, suite
    state.suite = suite.name if suite is not None else generation.name
    state.profile_requirement = suite.profile_requirement if suite is not None else None
    if suite is not None and Path(suite.catalogue).is_file():
        state.catalogue = load_catalogue(suite.catalogue)
    state.tag_expression = TagExpression(opt.kt_tags) if opt.kt_tags else None
    state.keep_going = bool(opt.kt_keep_going)
    state.redactor = Redactor(target.secrets())
    state.policy = load_policy(opt.kt_validation_policy, fail_on=opt.kt_fail_on)
    state.validator = load_validator(opt.kt_validate, kt=generation.validation_kt,
                                     suppressions=state.policy.suppressions)
    state.summary_path = Path(opt.kt_summary) if opt.kt_summary else None


def _subscribe_writers(config: pytest.Config, state: RunState) -> None:
    opt = config.option
    stream = state.events
    stream.subscribe(_ScenarioCounter(state), HttpExchange, ValidationReported)
    if opt.kt_events:
        from ktbench.report.ndjson import NdjsonEventWriter, worker_path

        worker_id = config.workerinput.get("workerid") if state.is_worker else None  # type: ignore[attr-defined]
        state.ndjson = NdjsonEventWriter(worker_path(opt.kt_events, worker_id))
        stream.subscribe(state.ndjson)
    if allure_bridge.alluredir(config):
        from ktbench.report.allure_writer import AllureAttachmentWriter

        stream.subscribe(AllureAttachmentWriter(), HttpExchange, ValidationReported)
    if state.is_worker:
        state.relay = EventRecorder(stream, ScenarioFinished)
        return
    from ktbench.report.console import ConsoleSummary
    from ktbench.report.results import RunResults
    from ktbench.report.summary_json import JsonSummaryWriter

    not_tested = state.catalogue.not_tested() if state.catalogue is not None else {}
    state.results = RunResults(not_tested=not_tested)
    stream.subscribe(state.results)
    if state.summary_path is not None:
        stream.subscribe(JsonSummaryWriter(state.summary_path, state.results), RunFinished)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    width = getattr(getattr(terminal, "_tw", None), "fullwidth", 100) or 100
    color = bool(getattr(getattr(terminal, "_tw", None), "hasmarkup", False))
    stream.subscribe(ConsoleSummary(state.console_text.append, state.results, width=min(width, 140),
                                    color=color), RunFinished)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _CONFIG:
        _CONFIG.remove(config)
    state = config.stash.get(RUN, None)
    if state is not None and state.ndjson is not None:
        state.ndjson.close()


class _ScenarioCounter:
    """Counts exchanges and validation errors of the scenario that is running; keeps its validations."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def __call__(self, event: Event) -> None:
        current = self.state.current
        if current is None:
            return
        if isinstance(event, HttpExchange):
            current.http_exchanges += 1
        elif isinstance(event, ValidationReported):
            current.validation_errors += len(event.errors)
            if event.direction in ("request", "response"):
                current.validations.append(event)


# ---------------------------------------------------------------------------------------------------------------
# Collection: tags -> labels, properties, selection
# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Callable[..., Any]) -> Any:
    tags = function.__dict__.setdefault(TAGS_ATTR, [])
    if tag not in tags:
        tags.append(tag)
    prefix, sep, value = tag.partition(":")
    if sep and value:
        allure_bridge.mark_tag(function, tag)
        return True
    if _CONFIG:
        _CONFIG[-1].addinivalue_line("markers", f"{tag}: Gherkin tag")
    getattr(pytest.mark, tag)(function)
    return True


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = run_state(config)
    if not state.active:
        return
    if state.tag_expression is not None:
        keep, drop = [], []
        for item in items:
            tags = getattr(getattr(item, "obj", None), TAGS_ATTR, ())
            (keep if state.tag_expression.matches(tags) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    for item in items:
        reqs, roles = split_tags(getattr(getattr(item, "obj", None), TAGS_ATTR, ()))
        item.user_properties.extend(("requirement", r) for r in reqs)
        item.user_properties.extend(("role", r) for r in roles)


# ---------------------------------------------------------------------------------------------------------------
# Run and scenario lifecycle -> events
# ---------------------------------------------------------------------------------------------------------------
def pytest_sessionstart(session: pytest.Session) -> None:
    state = run_state(session.config)
    if not state.active or state.target is None:
        return
    target = state.target
    state.started = time.perf_counter()
    state.events.emit(RunStarted(suite=state.suite, target_name=target.name, target_url=target.url,
                                 target_kind=target.kind, embedded=target.embedded))
    allure_bridge.write_run_files(session.config, state)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = run_state(item.config)
    if state.active:
        state.current = item_state(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """The scenario's steps run here: open its requirement scope so every check knows what it may name."""
    state = run_state(item.config)
    if not state.active:
        return (yield)
    ist = item_state(item)
    if ist.checks_scope is None:
        implicit = (state.profile_requirement,) if state.profile_requirement else ()
        ist.checks_scope = ScenarioRequirements(split_tags(ist.tags)[0], implicit)
    token = enter_scope(ist.checks_scope)
    try:
        return (yield)
    except AssertionError as exc:
        # a failure must name one of the scenario's requirements; one that cannot is the bench's defect, and
        # raising it as such makes pytest, JUnit and Allure all report the scenario BROKEN
        _, problem = failure_requirement(exc, split_tags(ist.tags)[0], state.profile_requirement)
        if problem is not None:
            raise BenchError(f"{problem}: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        leave_scope(token)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    state = run_state(request.config)
    if not state.active:
        return
    ist = item_state(request.node)
    ist.name = scenario.name
    ist.feature = feature.name or Path(feature.filename).name
    ist.tags = tuple(sorted({t.lstrip("@") for t in scenario.tags} | set(ist.tags)))
    if ist.checks_scope is not None:
        ist.checks_scope.ids = split_tags(ist.tags)[0]
    reqs, roles = split_tags(ist.tags)
    state.events.emit(ScenarioStarted(nodeid=request.node.nodeid, name=ist.name, feature=ist.feature,
                                      tags=ist.tags, requirements=reqs, roles=roles))
    if allure_bridge.alluredir(request.config):
        allure_bridge.label_scenario(state, ist)


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                           step_func: Any) -> None:
    state = run_state(request.config)
    if not state.active:
        return
    ist = item_state(request.node)
    ist.step_started = time.perf_counter()
    ist.open_step = (step.keyword, step.name)
    if ist.checks_scope is not None:
        ist.checks_scope.phase = getattr(step, "type", "") or ""
    state.events.emit(StepStarted(nodeid=request.node.nodeid, keyword=step.keyword, text=step.name))


def _emit_step_finished(state: RunState, item: pytest.Item, keyword: str, text: str, outcome: Any,
                        message: str) -> None:
    ist = item_state(item)
    ist.open_step = None
    duration = time.perf_counter() - ist.step_started if ist.step_started else 0.0
    state.events.emit(StepFinished(nodeid=item.nodeid, keyword=keyword, text=text, outcome=outcome,
                                   message=state.redactor.text(message), duration=duration))


def _step_finished(request: pytest.FixtureRequest, step: Any, outcome: Any, message: str = "") -> None:
    state = run_state(request.config)
    if state.active:
        _emit_step_finished(state, request.node, step.keyword, step.name, outcome, message)


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any) -> None:
    _step_finished(request, step, "passed")


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any, exception: BaseException) -> None:
    item_state(request.node).step_failed = True
    _step_finished(request, step, classify_exception(exception), f"{type(exception).__name__}: {exception}")


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                      exception: BaseException) -> None:
    item_state(request.node).step_failed = True
    _step_finished(request, step, "broken", f"{type(exception).__name__}: {exception}")


@pytest.hookimpl(trylast=True)  # after allure-pytest-bdd closed the last Gherkin step and stamped the stop time
def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """The profile check of every exchanged message, as a final step (ktbench.runner.verdict)."""
    state = run_state(request.config)
    if not state.active or state.validator is None or state.policy.fail_on == "never":
        return
    ist = item_state(request.node)
    if ist.step_failed or ist.open_step is not None:
        return  # a step already failed (or skipped): that is the scenario's verdict
    problem = profile_verdict(ist.validations, state.policy, ist.tags, state.profile_requirement)
    if problem is None:
        return
    keyword, text = "Then", f"every exchanged message conforms to the profiles (--fail-on {state.policy.fail_on})"
    ist.step_started = time.perf_counter()
    state.events.emit(StepStarted(nodeid=request.node.nodeid, keyword=keyword, text=text))
    try:
        allure_bridge.attach_profile_findings(request.config, state, keyword, text, problem)
    finally:
        _emit_step_finished(state, request.node, keyword, text, classify_exception(problem),
                            f"{type(problem).__name__}: {problem}")


# ---------------------------------------------------------------------------------------------------------------
# Reports: outcome, requirement, ScenarioFinished
# ---------------------------------------------------------------------------------------------------------------
def _set_property(item: pytest.Item, name: str, value: str) -> None:
    item.user_properties[:] = [(n, v) for n, v in item.user_properties if n != name]
    item.user_properties.append((name, value))


def _message(call: pytest.CallInfo[Any], report: pytest.TestReport) -> str:
    text = call.excinfo.exconly() if call.excinfo is not None else str(report.longrepr or "")
    return text.strip()[:4000]


def skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def _judge(state: RunState, ist: ItemState, report: pytest.TestReport, call: pytest.CallInfo[Any]) -> str:
    outcome = classify_report(report, call)
    exc = call.excinfo.value if call.excinfo is not None else None
    message = state.redactor.text(_message(call, report)) if outcome in ("failed", "broken") else ""
    if outcome == "failed":
        requirement, problem = failure_requirement(exc, split_tags(ist.tags)[0], state.profile_requirement)
        if problem is not None:
            outcome, message = "broken", f"{problem}: {message}"
        ist.failed_requirement = requirement
    if ist.outcome in (None, "passed"):
        ist.outcome = outcome  # type: ignore[assignment]
        if outcome in ("failed", "broken"):
            ist.message = message
            ist.error_type = type(exc).__name__ if exc is not None else None
        elif outcome == "skipped":
            ist.message = state.redactor.text(skip_reason(report))
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    state = run_state(item.config)
    if not state.active:
        return report
    ist = item_state(item)
    if report.when == "call" or not report.passed:
        outcome = _judge(state, ist, report, call)
        if ist.open_step is not None and report.when == "call":
            # pytest.skip()/exit inside a step bypasses pytest-bdd's step_error hook: close the step here
            _emit_step_finished(state, item, *ist.open_step, outcome, ist.message if outcome != "passed" else "")
        if outcome == "broken" and report.when == "call":
            report.kt_outcome = "broken"  # type: ignore[attr-defined]  (read by pytest_report_teststatus)
            if call.excinfo is not None and isinstance(call.excinfo.value, TargetUnreachable):
                report.longrepr = call.excinfo.exconly()  # the traceback of an unreachable target is noise
        _set_property(item, OUTCOME_PROPERTY, ist.outcome or outcome)
        if ist.failed_requirement and ist.outcome == "failed":
            _set_property(item, "failed_requirement", ist.failed_requirement)
    if report.when == "setup" and not report.passed and allure_bridge.alluredir(item.config):
        allure_bridge.write_unstarted(item, report, call, ist, state, skip_reason(report))
    if report.when == "teardown":
        state.current = None
        reqs, roles = split_tags(ist.tags)
        checked = ist.checks_scope.checked if ist.checks_scope is not None else set()
        state.events.emit(ScenarioFinished(
            nodeid=item.nodeid, name=ist.name, feature=ist.feature, outcome=ist.outcome or "skipped",
            requirements=reqs, roles=roles, tags=ist.tags, message=ist.message, error_type=ist.error_type,
            duration=time.perf_counter() - ist.started, http_exchanges=ist.http_exchanges,
            validation_errors=ist.validation_errors,
            failed_requirement=ist.failed_requirement if ist.outcome == "failed" else None,
            checked_requirements=tuple(sorted(checked & set(reqs))),
        ))
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when == "call" and getattr(report, "kt_outcome", None) == "broken":
        return "error", "E", ("BROKEN", {"yellow": True})
    return None


# ---------------------------------------------------------------------------------------------------------------
# xdist relay and the end of the run
# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    state = run_state(node.config)
    if state.active:
        xdist_relay.take_over(node, state)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = run_state(config)
    if not state.active:
        return
    if state.is_worker:
        xdist_relay.hand_over(config, state)
        return
    counts = state.results.counts() if state.results is not None else {o: 0 for o in OUTCOMES}
    state.events.emit(RunFinished(duration=time.perf_counter() - state.started,
                                  counts=tuple((o, counts.get(o, 0)) for o in OUTCOMES)))
    scrub.scrub_outputs(config, state)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = run_state(config)
    if not state.active or not state.console_text:
        return
    terminalreporter.section("ktbench summary", sep="=")
    for chunk in state.console_text:
        terminalreporter.write(chunk)


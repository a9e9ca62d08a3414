"""The pytest plugin that turns a pytest-bdd run into a ktbench conformance run.

Loaded by the repo-root conftest.py (so `pytest steps/kt1 --kt-target URL`
works) and by `ktbench run` (`-p ktbench.pytest_plugin`).  It stays inert
unless `--kt-target` or `--kt-suite` is given, so the bench's own tests are
unaffected.  What it does:

* resolves the target (`--kt-target URL|NAME`, `--kt-targets FILE`) once, at
  configure time, so a bad targets file is a usage error before anything runs;
* provides the session fixtures `kt_target`, `kt_events` and `kt_http` (one
  recording client per session/worker, probed for reachability up front);
* bridges pytest-bdd's scenario/step hooks and pytest's reports to the event
  stream, and attaches the writers (Allure attachments, console and JSON
  summaries);
* turns `@req:ID` and `@role:NAME` tags into Allure labels (requirement/story
  and role, plus a visible tag) and JUnit testcase properties; selects
  scenarios with `--kt-tags` (cucumber-style tag expressions with wildcards);
* classifies outcomes: AssertionError / pytest.fail -> failed (the target does
  not conform); BenchError (TargetUnreachable, config) and any other exception
  -> broken, shown as ERROR by pytest, <error> in JUnit and broken in Allure;
* judges live validation at the end of each scenario (after its last step):
  findings at or above `--kt-fail-on` in a response of the target fail the
  scenario (`ProfileViolation`, naming the suite's profile requirement - the
  fixture `kt_profile_requirement` - rule, location and message); such
  findings in a request the bench sent make it broken (`InvalidBenchRequest`),
  unless the scenario is tagged @invalid-request (it means to send bad input).
  The check shows in Allure as a final step; `--kt-validation-policy FILE`
  overrides severities per rule and adds suppressions (ktbench.validation_policy);
* after the run, scrubs every configured or learned secret from allure-results,
  the JUnit XML and the summary (allure-pytest-bdd writes the repr() of every
  step argument, captured logs and tracebacks into its results).

Under pytest-xdist each worker runs its own client and emits its own events;
finished scenarios and learned secrets travel to the controller through
`workeroutput`, where the summaries are written.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ktbench.client import RecordingClient, TargetUnreachable
from ktbench.events import (
    OUTCOMES,
    Event,
    EventRecorder,
    EventStream,
    Finding,
    HttpExchange,
    Outcome,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
    StepFinished,
    StepStarted,
    ValidationReported,
    event_from_dict,
    to_dict,
)
from ktbench.redact import Redactor
from ktbench.report.junit import OUTCOME_PROPERTY, mark_broken_as_errors
from ktbench.targets import BenchError, Target, TargetConfigError, resolve_target
from ktbench.validation_policy import (
    DEFAULT_FAIL_ON,
    FAIL_ON_CHOICES,
    PolicyError,
    ValidationPolicy,
    load_policy,
)

REQUIREMENT_PREFIX = "req"
ROLE_PREFIX = "role"
_TAGS_ATTR = "_ktbench_tags"
INVALID_REQUEST_TAG = "invalid-request"  # the scenario sends bad input on purpose: request findings do not count
MAX_LISTED_FINDINGS = 10
_WORKER_SCENARIOS = "ktbench_scenarios"
_WORKER_SECRETS = "ktbench_learned_secrets"

_CONFIG: list[pytest.Config] = []  # the config(s) being configured; pytest-bdd's tag hook does not get one


# ---------------------------------------------------------------------------------------------------------------
# Tag expressions (--kt-tags)
# ---------------------------------------------------------------------------------------------------------------
class TagExpressionError(ValueError):
    pass


_TOKEN_RE = re.compile(r"\s*(\(|\)|[^\s()]+)")


class TagExpression:
    """Cucumber-style tag expression: `@req:KT1-META-* and not (@slow or @wip)`.

    Operators `and`, `or`, `not` and parentheses; a tag may use shell wildcards.
    The leading `@` is optional.  An empty expression matches everything.
    """

    def __init__(self, source: str) -> None:
        self.source = source.strip()
        self._tokens = [t for t in _TOKEN_RE.findall(self.source)]
        self._pos = 0
        self._tree: Any = ("true",) if not self._tokens else self._parse_or()
        if self._pos != len(self._tokens):
            raise TagExpressionError(f"unexpected {self._tokens[self._pos]!r} in tag expression {source!r}")

    def _peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _next(self) -> str:
        token = self._peek()
        if token is None:
            raise TagExpressionError(f"tag expression {self.source!r} ends too early")
        self._pos += 1
        return token

    def _parse_or(self) -> Any:
        node = self._parse_and()
        while self._peek() == "or":
            self._next()
            node = ("or", node, self._parse_and())
        return node

    def _parse_and(self) -> Any:
        node = self._parse_not()
        while self._peek() == "and":
            self._next()
            node = ("and", node, self._parse_not())
        return node

    def _parse_not(self) -> Any:
        if self._peek() == "not":
            self._next()
            return ("not", self._parse_not())
        return self._parse_atom()

    def _parse_atom(self) -> Any:
        token = self._next()
        if token == "(":
            node = self._parse_or()
            if self._next() != ")":
                raise TagExpressionError(f"missing ')' in tag expression {self.source!r}")
            return node
        if token in (")", "and", "or"):
            raise TagExpressionError(f"unexpected {token!r} in tag expression {self.source!r}")
        return ("tag", token.lstrip("@"))

    def matches(self, tags: Iterable[str]) -> bool:
        tagset = {t.lstrip("@") for t in tags}
        return self._eval(self._tree, tagset)

    def _eval(self, node: Any, tags: set[str]) -> bool:
        op = node[0]
        if op == "true":
            return True
        if op == "tag":
            pattern = node[1]
            return any(fnmatch.fnmatchcase(t, pattern) for t in tags)
        if op == "not":
            return not self._eval(node[1], tags)
        if op == "and":
            return self._eval(node[1], tags) and self._eval(node[2], tags)
        return self._eval(node[1], tags) or self._eval(node[2], tags)


def split_tags(tags: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requirement ids, roles) from tags such as `req:KT1-META-CONFORMANCE` and `role:portal`."""
    reqs, roles = [], []
    for tag in tags:
        prefix, sep, value = tag.lstrip("@").partition(":")
        if sep and value:
            if prefix == REQUIREMENT_PREFIX:
                reqs.append(value)
            elif prefix == ROLE_PREFIX:
                roles.append(value)
    return tuple(sorted(set(reqs))), tuple(sorted(set(roles)))


# ---------------------------------------------------------------------------------------------------------------
# Outcome classification
# ---------------------------------------------------------------------------------------------------------------
def classify_exception(exc: BaseException | None) -> Outcome:
    """failed = the target does not conform; broken = the bench could not tell."""
    if exc is None:
        return "broken"
    if isinstance(exc, BenchError):
        return "broken"
    if isinstance(exc, pytest.skip.Exception):
        return "skipped"
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return "failed"
    return "broken"


def classify_report(report: pytest.TestReport, call: pytest.CallInfo[Any]) -> Outcome:
    if report.skipped:
        return "skipped"
    if report.passed:
        return "passed"
    if report.when != "call":
        return "broken"  # a fixture (setup/teardown) failed: nothing was checked
    return classify_exception(call.excinfo.value if call.excinfo else None)


# ---------------------------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _ItemState:
    name: str
    feature: str
    tags: tuple[str, ...] = ()
    outcome: Outcome | None = None
    message: str = ""
    error_type: str | None = None
    started: float = field(default_factory=time.perf_counter)
    step_started: float = 0.0
    open_step: tuple[str, str] | None = None  # (keyword, text) of a step that started and did not finish
    http_exchanges: int = 0
    validation_errors: int = 0
    validations: list[ValidationReported] = field(default_factory=list)  # live validation of its exchanges
    step_failed: bool = False


@dataclass
class _RunState:
    active: bool
    is_worker: bool
    suite: str = ""
    target: Target | None = None
    tag_expression: TagExpression | None = None
    keep_going: bool = False
    validator: Callable[[bytes, str | None], Any] | None = None
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)
    summary_path: Path | None = None
    events: EventStream = field(default_factory=EventStream)
    redactor: Redactor = field(default_factory=Redactor)
    relay: EventRecorder | None = None
    console_text: list[str] = field(default_factory=list)
    current: _ItemState | None = None
    started: float = field(default_factory=time.perf_counter)
    results: Any = None
    ndjson: Any = None


_STATE = pytest.StashKey[_RunState]()
_ITEM = pytest.StashKey[_ItemState]()


def _state(config: pytest.Config) -> _RunState:
    state = config.stash.get(_STATE, None)
    if state is None:  # plugin registered after configure (should not happen); behave inert
        state = _RunState(active=False, is_worker=hasattr(config, "workerinput"))
        config.stash[_STATE] = state
    return state


def _item_state(item: pytest.Item) -> _ItemState:
    ist = item.stash.get(_ITEM, None)
    if ist is None:
        tags = tuple(getattr(getattr(item, "obj", None), _TAGS_ATTR, ()))
        doc = (getattr(getattr(item, "obj", None), "__doc__", None) or "").strip()
        feature, _, name = doc.partition(": ")
        ist = _ItemState(name=name or item.name, feature=feature if name else "", tags=tags)
        item.stash[_ITEM] = ist
    return ist


# ---------------------------------------------------------------------------------------------------------------
# Options and configuration
# ---------------------------------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ktbench", "ktbench (Koppeltaal conformance bench)")
    group.addoption("--kt-target", dest="kt_target", metavar="URL|NAME", default=None,
                    help="target to test: a URL (reference-server default credentials) or a name from --kt-targets")
    group.addoption("--kt-targets", dest="kt_targets", metavar="FILE", default=None,
                    help="TOML targets file (default: $KTBENCH_TARGETS)")
    group.addoption("--kt-suite", dest="kt_suite", metavar="NAME", default=None,
                    help="suite name shown in reports (default: derived from the target kind)")
    group.addoption("--kt-tags", dest="kt_tags", metavar="EXPR", default=None,
                    help="run only scenarios whose tags match, e.g. '@req:KT1-META-* and not @slow'")
    group.addoption("--kt-summary", dest="kt_summary", metavar="FILE", default=None,
                    help="write the JSON run summary to FILE")
    group.addoption("--kt-events", dest="kt_events", metavar="FILE", default=None,
                    help="write every event (redacted) as NDJSON to FILE (xdist workers: FILE stem + .gwN)")
    group.addoption("--kt-keep-going", dest="kt_keep_going", action="store_true", default=False,
                    help="keep sending requests to a target that refused connections (default: fail fast)")
    group.addoption("--kt-validate", dest="kt_validate", choices=("auto", "on", "off"), default="auto",
                    help="validate every JSON/XML request and response of FHIR endpoints with ktbench.validation "
                         "(auto: if installed)")
    group.addoption("--kt-fail-on", dest="kt_fail_on", choices=FAIL_ON_CHOICES, default=DEFAULT_FAIL_ON,
                    help="validation findings at or above this severity decide the verdict: in a response they "
                         "fail the scenario, in a request the bench sent they make it broken (default: error)")
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


def _categories_file(config: pytest.Config) -> Path | None:
    for root in (Path(str(config.rootpath)), Path(__file__).resolve().parents[1]):
        candidate = root / "reports" / "categories.json"
        if candidate.is_file():
            return candidate
    return None


def _alluredir(config: pytest.Config) -> str | None:
    return getattr(config.option, "allure_report_dir", None)


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG.append(config)
    config.addinivalue_line("markers", "allure_label: allure label marker (set from Gherkin tags by ktbench)")
    opt = config.option
    spec = getattr(opt, "kt_target", None)
    suite = getattr(opt, "kt_suite", None)
    active = spec is not None or suite is not None
    state = _RunState(active=active, is_worker=hasattr(config, "workerinput"))
    config.stash[_STATE] = state
    if not active:
        return
    try:
        target = resolve_target(spec, getattr(opt, "kt_targets", None))
    except TargetConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    if target is None:
        raise pytest.UsageError("no target given: pass --kt-target URL|NAME "
                                "(`ktbench run` without --target starts the embedded reference server)")
    try:
        state.tag_expression = TagExpression(opt.kt_tags) if opt.kt_tags else None
    except TagExpressionError as exc:
        raise pytest.UsageError(f"--kt-tags: {exc}") from None
    state.target = target
    state.suite = suite or target.kind.split("-")[0]
    state.keep_going = bool(opt.kt_keep_going)
    state.redactor = Redactor(target.secrets())
    try:
        state.policy = load_policy(opt.kt_validation_policy, fail_on=opt.kt_fail_on)
    except PolicyError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.validator = load_validator(opt.kt_validate, kt=1 if target.kind.startswith("kt1") else None,
                                     suppressions=state.policy.suppressions)
    state.summary_path = Path(opt.kt_summary) if opt.kt_summary else None

    stream = state.events
    stream.subscribe(_ScenarioCounter(state), HttpExchange, ValidationReported)
    if opt.kt_events:
        from ktbench.report.ndjson import NdjsonEventWriter, worker_path

        worker_id = config.workerinput.get("workerid") if state.is_worker else None  # type: ignore[attr-defined]
        state.ndjson = NdjsonEventWriter(worker_path(opt.kt_events, worker_id))
        stream.subscribe(state.ndjson)
    if _alluredir(config):
        from ktbench.report.allure_writer import AllureAttachmentWriter

        stream.subscribe(AllureAttachmentWriter(), HttpExchange, ValidationReported)
    if state.is_worker:
        state.relay = EventRecorder(stream, ScenarioFinished)
    else:
        from ktbench.report.console import ConsoleSummary
        from ktbench.report.results import RunResults
        from ktbench.report.summary_json import JsonSummaryWriter

        state.results = RunResults()
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
    state = config.stash.get(_STATE, None)
    if state is not None and state.ndjson is not None:
        state.ndjson.close()


class _ScenarioCounter:
    """Counts exchanges and validation errors of the scenario that is running."""

    def __init__(self, state: _RunState) -> None:
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
    tags = function.__dict__.setdefault(_TAGS_ATTR, [])
    if tag not in tags:
        tags.append(tag)
    prefix, sep, value = tag.partition(":")
    if sep and value:
        # `req:X` / `role:X` (any `prefix:value`): Allure labels instead of an (invalid) pytest marker.
        label = {REQUIREMENT_PREFIX: "requirement"}.get(prefix, prefix)
        function = pytest.mark.allure_label(value, label_type=label)(function)
        if prefix == REQUIREMENT_PREFIX:
            function = pytest.mark.allure_label(value, label_type="story")(function)
        pytest.mark.allure_label(tag, label_type="tag")(function)
        return True
    if _CONFIG:
        _CONFIG[-1].addinivalue_line("markers", f"{tag}: Gherkin tag")
    getattr(pytest.mark, tag)(function)
    return True


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if not state.active:
        return
    if state.tag_expression is not None:
        keep, drop = [], []
        for item in items:
            tags = getattr(getattr(item, "obj", None), _TAGS_ATTR, ())
            (keep if state.tag_expression.matches(tags) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    for item in items:
        tags = tuple(getattr(getattr(item, "obj", None), _TAGS_ATTR, ()))
        reqs, roles = split_tags(tags)
        item.user_properties.extend(("requirement", r) for r in reqs)
        item.user_properties.extend(("role", r) for r in roles)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kt_events(pytestconfig: pytest.Config) -> EventStream:
    """The run's event stream (subscribe to observe exchanges, steps and scenarios)."""
    return _state(pytestconfig).events


@pytest.fixture(scope="session")
def kt_target(pytestconfig: pytest.Config) -> Target:
    """The target under test, with the credentials of every simulated role."""
    target = _state(pytestconfig).target
    if target is None:
        raise BenchError("no target configured: run the suite with `ktbench run` or pass --kt-target URL|NAME")
    return target


@pytest.fixture(scope="session")
def kt_http(pytestconfig: pytest.Config, kt_target: Target, kt_events: EventStream) -> Iterator[RecordingClient]:
    """The session's recording HTTP client (one httpx.Client), probed for reachability before first use."""
    state = _state(pytestconfig)
    client = RecordingClient(
        kt_events,
        redactor=state.redactor,
        timeout=kt_target.request_timeout_seconds,
        verify=kt_target.verify_tls,
        validator=state.validator,
        keep_going=state.keep_going,
        finding_policy=state.policy.review if state.policy.overrides else None,
    )
    client.probe(kt_target.url, timeout=min(5.0, kt_target.request_timeout_seconds))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def kt_profile_requirement() -> str | None:
    """The requirement id a profile-validation failure names; a suite overrides this (KT1: KT1-PROFILE-EXCHANGE)."""
    return None


@pytest.fixture
def kt_profile_check(request: pytest.FixtureRequest, kt_profile_requirement: str | None) -> Callable[[], None]:
    """A step's way to judge the scenario's exchanges so far, exactly as the end-of-scenario check does.

    Calling it raises ProfileViolation / InvalidBenchRequest under the run's policy (--kt-fail-on,
    --kt-validation-policy), and skips when live validation is off.
    """
    state = _state(request.config)

    def check() -> None:
        if state.validator is None:
            pytest.skip("live validation is off (--kt-validate off, or ktbench.validation is not installed)")
        ist = _item_state(request.node)
        problem = profile_verdict(ist.validations, state.policy, ist.tags, kt_profile_requirement)
        if problem is not None:
            raise problem

    return check


# ---------------------------------------------------------------------------------------------------------------
# Run and scenario lifecycle -> events
# ---------------------------------------------------------------------------------------------------------------
def pytest_sessionstart(session: pytest.Session) -> None:
    state = _state(session.config)
    if not state.active or state.target is None:
        return
    target = state.target
    state.started = time.perf_counter()
    state.events.emit(RunStarted(suite=state.suite, target_name=target.name, target_url=target.url,
                                 target_kind=target.kind, embedded=target.embedded))
    alluredir = _alluredir(session.config)
    if alluredir and not state.is_worker:
        from ktbench.report.allure_writer import install_categories, write_environment

        import ktbench

        write_environment(alluredir, {
            "Suite": state.suite,
            "Target": target.name,
            "Target.URL": target.url,
            "Target.kind": target.kind,
            "Target.embedded": str(target.embedded).lower(),
            "Domain": target.domain,
            "ktbench": ktbench.__version__,
        })
        categories = _categories_file(session.config)
        if categories is not None:
            install_categories(alluredir, categories)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = _state(item.config)
    if state.active:
        state.current = _item_state(item)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    state = _state(request.config)
    if not state.active:
        return
    ist = _item_state(request.node)
    ist.name = scenario.name
    ist.feature = feature.name or Path(feature.filename).name
    ist.tags = tuple(sorted({t.lstrip("@") for t in scenario.tags} | set(ist.tags)))
    reqs, roles = split_tags(ist.tags)
    state.events.emit(ScenarioStarted(nodeid=request.node.nodeid, name=ist.name, feature=ist.feature,
                                      tags=ist.tags, requirements=reqs, roles=roles))
    if _alluredir(request.config):
        import allure

        allure.dynamic.label("parentSuite", f"{state.suite} suite")
        allure.dynamic.label("suite", ist.feature)
        if state.target is not None:
            allure.dynamic.parameter("target", state.target.name)


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                           step_func: Any) -> None:
    state = _state(request.config)
    if not state.active:
        return
    ist = _item_state(request.node)
    ist.step_started = time.perf_counter()
    ist.open_step = (step.keyword, step.name)
    state.events.emit(StepStarted(nodeid=request.node.nodeid, keyword=step.keyword, text=step.name))


def _step_finished(request: pytest.FixtureRequest, step: Any, outcome: Outcome, message: str = "") -> None:
    state = _state(request.config)
    if not state.active:
        return
    _emit_step_finished(state, request.node, step.keyword, step.name, outcome, message)


def _emit_step_finished(state: _RunState, item: pytest.Item, keyword: str, text: str, outcome: Outcome,
                        message: str) -> None:
    ist = _item_state(item)
    ist.open_step = None
    duration = time.perf_counter() - ist.step_started if ist.step_started else 0.0
    state.events.emit(StepFinished(nodeid=item.nodeid, keyword=keyword, text=text, outcome=outcome,
                                   message=state.redactor.text(message), duration=duration))


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any) -> None:
    _step_finished(request, step, "passed")


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any, exception: BaseException) -> None:
    _item_state(request.node).step_failed = True
    _step_finished(request, step, classify_exception(exception), f"{type(exception).__name__}: {exception}")


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                      exception: BaseException) -> None:
    _item_state(request.node).step_failed = True
    _step_finished(request, step, "broken", f"{type(exception).__name__}: {exception}")


# ---------------------------------------------------------------------------------------------------------------
# The profile check at the end of a scenario
# ---------------------------------------------------------------------------------------------------------------
class ProfileViolation(AssertionError):
    """A message the target sent breaks the profiles at or above --fail-on (the scenario FAILS)."""


class InvalidBenchRequest(BenchError):
    """A message the bench sent breaks the profiles: the bench built a bad message (the scenario is BROKEN)."""


def _finding_line(event: ValidationReported, finding: Finding) -> str:
    return (f"{finding.severity} {finding.rule} at {finding.location or '(document)'}: {finding.message} "
            f"({event.subject})")


def _listed(found: list[tuple[ValidationReported, Finding]]) -> str:
    lines = [f"  {_finding_line(event, f)}" for event, f in found[:MAX_LISTED_FINDINGS]]
    if len(found) > MAX_LISTED_FINDINGS:
        lines.append(f"  ... and {len(found) - MAX_LISTED_FINDINGS} more (see the validation attachments)")
    return "\n".join(lines)


def profile_verdict(validations: Iterable[ValidationReported], policy: ValidationPolicy, tags: Iterable[str],
                    requirement: str | None = None) -> BaseException | None:
    """The exception that ends a scenario whose exchanges break the profiles, or None.

    Request findings (the bench's own messages) make the scenario broken - unless it is tagged
    @invalid-request - before response findings (the target's messages) fail it: a scenario that sent a
    bad message cannot judge the answer.  The first line names the first finding (JUnit shows only that
    line as the failure message); the rest lists them all.
    """
    tagset = {t.lstrip("@") for t in tags}
    blocking: dict[str, list[tuple[ValidationReported, Finding]]] = {"request": [], "response": []}
    for event in validations:
        if event.direction in blocking:
            blocking[event.direction] += [(event, f) for f in policy.blocking(event.findings)]
    threshold = f"--fail-on {policy.fail_on}"
    if blocking["request"] and INVALID_REQUEST_TAG not in tagset:
        found = blocking["request"]
        return InvalidBenchRequest(
            f"the bench sent a message that breaks the profiles: {_finding_line(*found[0])}; "
            f"{len(found)} finding(s) at or above {threshold} in the bench's requests (a bench defect; tag the "
            f"scenario @{INVALID_REQUEST_TAG} if it sends bad input on purpose):\n" + _listed(found))
    if blocking["response"]:
        found = blocking["response"]
        reqs = tuple(r for r in split_tags(tagset)[0] if r != requirement)
        prefix = f"{requirement}: " if requirement else ""
        scenario_reqs = f"[{', '.join(reqs)}] " if reqs else ""
        return ProfileViolation(
            f"{prefix}{scenario_reqs}the target's message breaks the profiles: {_finding_line(*found[0])}; "
            f"{len(found)} finding(s) at or above {threshold} in the target's answers:\n" + _listed(found))
    return None


@pytest.hookimpl(trylast=True)  # after allure-pytest-bdd closed the last Gherkin step and stamped the stop time
def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    state = _state(request.config)
    if not state.active or state.validator is None or state.policy.fail_on == "never":
        return
    ist = _item_state(request.node)
    if ist.step_failed or ist.open_step is not None:
        return  # a step already failed (or skipped): that is the scenario's verdict
    requirement = request.getfixturevalue("kt_profile_requirement")
    problem = profile_verdict(ist.validations, state.policy, ist.tags, requirement)
    if problem is None:
        return
    keyword, text = "Then", f"every exchanged message conforms to the profiles (--fail-on {state.policy.fail_on})"
    ist.step_started = time.perf_counter()
    state.events.emit(StepStarted(nodeid=request.node.nodeid, keyword=keyword, text=text))
    outcome = classify_exception(problem)
    message = f"{type(problem).__name__}: {problem}"
    try:
        if _alluredir(request.config):
            import allure

            with allure.step(f"{keyword} {text}"):
                allure.attach(state.redactor.text(str(problem)), name="profile findings that decide the verdict",
                              attachment_type=allure.attachment_type.TEXT)
                raise problem
        raise problem
    finally:
        _emit_step_finished(state, request.node, keyword, text, outcome, message)


def _set_property(item: pytest.Item, name: str, value: str) -> None:
    item.user_properties[:] = [(n, v) for n, v in item.user_properties if n != name]
    item.user_properties.append((name, value))


def _message(call: pytest.CallInfo[Any], report: pytest.TestReport) -> str:
    if call.excinfo is not None:
        text = call.excinfo.exconly()
    else:
        text = str(report.longrepr or "")
    return text.strip()[:4000]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    state = _state(item.config)
    if not state.active:
        return report
    ist = _item_state(item)
    if report.when == "call" or not report.passed:
        outcome = classify_report(report, call)
        if ist.outcome in (None, "passed"):
            ist.outcome = outcome
            if outcome in ("failed", "broken"):
                ist.message = state.redactor.text(_message(call, report))
                ist.error_type = type(call.excinfo.value).__name__ if call.excinfo else None
            elif outcome == "skipped":
                ist.message = state.redactor.text(_skip_reason(report))
        if ist.open_step is not None and report.when == "call":
            # pytest.skip()/exit inside a step bypasses pytest-bdd's step_error hook: close the step here
            _emit_step_finished(state, item, *ist.open_step, outcome, ist.message if outcome != "passed" else "")
        if outcome == "broken" and report.when == "call":
            report.kt_outcome = "broken"  # type: ignore[attr-defined]  (read by pytest_report_teststatus)
            if call.excinfo is not None and isinstance(call.excinfo.value, TargetUnreachable):
                # the traceback of an unreachable target is noise: the message says it all
                report.longrepr = call.excinfo.exconly()
        _set_property(item, OUTCOME_PROPERTY, ist.outcome or outcome)
    if report.when == "setup" and not report.passed and _alluredir(item.config):
        _allure_unstarted(item, report, call, ist, state)
    if report.when == "teardown":
        state.current = None
        state.events.emit(ScenarioFinished(
            nodeid=item.nodeid,
            name=ist.name,
            feature=ist.feature,
            outcome=ist.outcome or "skipped",
            requirements=split_tags(ist.tags)[0],
            roles=split_tags(ist.tags)[1],
            tags=ist.tags,
            message=ist.message,
            error_type=ist.error_type,
            duration=time.perf_counter() - ist.started,
            http_exchanges=ist.http_exchanges,
            validation_errors=ist.validation_errors,
        ))
    return report


def _scenario_template(item: pytest.Item) -> Any:
    """pytest-bdd's scenario template of a test function (None for plain tests or other pytest-bdd versions)."""
    try:
        from pytest_bdd.scenario import scenario_wrapper_template_registry
    except ImportError:  # pragma: no cover - pytest-bdd internals moved
        return None
    try:
        return scenario_wrapper_template_registry.get(getattr(item, "obj", None))
    except TypeError:
        return None


def _allure_unstarted(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[Any],
                      ist: _ItemState, state: _RunState) -> None:
    """Setup failed or skipped: pytest-bdd never started the scenario, so allure-pytest-bdd has no test case."""
    from allure_commons.utils import now, represent

    from ktbench.report.allure_writer import write_unstarted_scenario

    template = _scenario_template(item)
    if template is not None:
        name = template.name
        feature = template.feature.name or Path(template.feature.filename).name
        full_name = f"{os.path.normpath(template.feature.rel_filename)}:{template.name}"
        steps = [f"{step.keyword} {step.name}" for step in template.steps]
    else:
        name, feature, full_name, steps = ist.name, ist.feature or item.nodeid, item.nodeid, []
    ist.name, ist.feature = name, feature
    labels = [("feature", feature), ("suite", feature), ("parentSuite", f"{state.suite} suite"),
              ("framework", "pytest-bdd")]
    for mark in item.iter_markers(name="allure_label"):
        label_type = mark.kwargs.get("label_type")
        labels += [(label_type, str(value)) for value in mark.args if label_type]
    status = "skipped" if report.skipped else "broken"
    message = _skip_reason(report) if report.skipped else (call.excinfo.exconly() if call.excinfo else "")
    parameters = [("target", represent(state.target.name))] if state.target is not None else []
    stop = now()
    write_unstarted_scenario(
        _alluredir(item.config) or "", name=name, full_name=full_name, status=status,
        message=state.redactor.text(message), trace=state.redactor.text(str(report.longrepr or "")),
        labels=labels, steps=steps, parameters=parameters,
        start_ms=stop - int(report.duration * 1000), stop_ms=stop,
    )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when == "call" and getattr(report, "kt_outcome", None) == "broken":
        return "error", "E", ("BROKEN", {"yellow": True})
    return None


# ---------------------------------------------------------------------------------------------------------------
# xdist relay
# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    state = _state(node.config)
    if not state.active:
        return
    output = getattr(node, "workeroutput", {}) or {}
    for data in output.get(_WORKER_SCENARIOS, []):
        state.events.emit(event_from_dict(data))
    for secret in output.get(_WORKER_SECRETS, []):
        state.redactor.learn(secret)


# ---------------------------------------------------------------------------------------------------------------
# End of run
# ---------------------------------------------------------------------------------------------------------------
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    if not state.active:
        return
    if state.is_worker:
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None and state.relay is not None:
            workeroutput[_WORKER_SCENARIOS] = [to_dict(e) for e in state.relay.events]
            workeroutput[_WORKER_SECRETS] = sorted(state.redactor.known_secrets)
        return
    counts = state.results.counts() if state.results is not None else {o: 0 for o in OUTCOMES}
    state.events.emit(RunFinished(duration=time.perf_counter() - state.started,
                                  counts=tuple((o, counts.get(o, 0)) for o in OUTCOMES)))
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:  # LogXML wrote the file in its (earlier) sessionfinish
        mark_broken_as_errors(xmlpath)
    from ktbench.report.scrub import scrub_files

    outputs: list[Any] = [p for p in (_alluredir(config), xmlpath, state.summary_path) if p]
    if config.option.kt_events:
        events = Path(config.option.kt_events)
        outputs += [events, *events.parent.glob(f"{events.stem}.gw*{events.suffix}")]
    scrub_files(outputs, state.redactor.known_secrets)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if not state.active or not state.console_text:
        return
    terminalreporter.section("ktbench summary", sep="=")
    for chunk in state.console_text:
        terminalreporter.write(chunk)

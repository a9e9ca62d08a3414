"""The run and its scenarios and steps, as events; each scenario's requirement scope; the profile check.

pytest-bdd's hooks tell when a scenario or step starts and ends; each becomes an event on the run's stream
(which the report writers follow).  While a scenario's steps run its requirement scope is open, so every
check knows what it may name; when it ends the exchanged messages are judged (ktbench.runner.verdict).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from ktbench.core.errors import BenchError
from ktbench.core.events import RunStarted, ScenarioStarted, StepFinished, StepStarted
from ktbench.core.requirements import ScenarioRequirements, enter_scope, leave_scope
from ktbench.runner import allure_bridge
from ktbench.runner.outcomes import classify_exception, failure_requirement
from ktbench.runner.state import RunState, item_state, run_state
from ktbench.runner.tags import split_tags
from ktbench.runner.verdict import profile_verdict


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
        ist.checks_scope = ScenarioRequirements(split_tags(ist.tags)[0], state.implicit_requirements)
    token = enter_scope(ist.checks_scope)
    try:
        return (yield)
    except AssertionError as exc:
        # a failure must name one of the scenario's requirements; one that cannot is the bench's defect, and
        # raising it as such makes pytest, JUnit and Allure all report the scenario BROKEN
        _, problem = failure_requirement(exc, split_tags(ist.tags)[0], state.implicit_requirements)
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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_bdd_before_step_call(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                step_func: Any, step_func_args: dict[str, Any]) -> Any:
    """Around allure-pytest-bdd's parameter recording: it sees only the step's own arguments; the step
    function is called with all of them afterwards."""
    state = run_state(request.config)
    if not state.active or not allure_bridge.alluredir(request.config):
        return (yield)
    everything = dict(step_func_args)
    step_func_args.clear()
    step_func_args.update(allure_bridge.primitive_step_arguments(everything))
    try:
        return (yield)
    finally:
        step_func_args.clear()
        step_func_args.update(everything)


def emit_step_finished(state: RunState, item: pytest.Item, keyword: str, text: str, outcome: Any,
                        message: str) -> None:
    ist = item_state(item)
    ist.open_step = None
    duration = time.perf_counter() - ist.step_started if ist.step_started else 0.0
    state.events.emit(StepFinished(nodeid=item.nodeid, keyword=keyword, text=text, outcome=outcome,
                                   message=state.redactor.text(message), duration=duration))


def _step_finished(request: pytest.FixtureRequest, step: Any, outcome: Any, message: str = "") -> None:
    state = run_state(request.config)
    if state.active:
        emit_step_finished(state, request.node, step.keyword, step.name, outcome, message)


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
    if not state.active:
        return
    ist = item_state(request.node)
    if ist.step_failed or ist.open_step is not None:
        return  # a step already failed (or skipped): that is the scenario's verdict
    # the profiles first: a message the bench built badly makes the scenario broken before anything is judged
    if state.validator is not None and state.policy.fail_on != "never":
        problem = profile_verdict(ist.validations, state.policy, ist.tags, state.profile_requirement)
        if problem is not None:
            _final_check(request, state, ist,
                         f"every exchanged message conforms to the profiles (--fail-on {state.policy.fail_on})",
                         problem)
    if state.exchange_rules is not None:
        problem = state.exchange_rules(ist.exchanges, state.target)
        if problem is not None:
            _final_check(request, state, ist, "every exchange follows the suite's transport rules (headers, minted "
                         "URLs)", problem)


def _final_check(request: pytest.FixtureRequest, state: RunState, ist: Any, text: str,
                 problem: BaseException) -> None:
    """A check of the whole scenario, shown as its last Then step; raises `problem`."""
    keyword = "Then"
    ist.step_started = time.perf_counter()
    state.events.emit(StepStarted(nodeid=request.node.nodeid, keyword=keyword, text=text))
    try:
        allure_bridge.attach_final_check(request.config, state, keyword, text, problem)
    finally:
        emit_step_finished(state, request.node, keyword, text, classify_exception(problem),
                            f"{type(problem).__name__}: {problem}")

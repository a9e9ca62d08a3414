"""pytest's reports -> the scenario's outcome, the one requirement a failure blames, and ScenarioFinished."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ktbench.core.events import ScenarioFinished
from ktbench.http.client import TargetUnreachable
from ktbench.report.junit import OUTCOME_PROPERTY
from ktbench.runner import allure_bridge
from ktbench.runner.lifecycle import emit_step_finished
from ktbench.runner.outcomes import classify_report, failure_requirement
from ktbench.runner.progress import note_scenario
from ktbench.runner.state import ItemState, RunState, item_state, run_state
from ktbench.runner.tags import split_tags


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
        requirement, problem = failure_requirement(exc, split_tags(ist.tags)[0], state.implicit_requirements)
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
            emit_step_finished(state, item, *ist.open_step, outcome, ist.message if outcome != "passed" else "")
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
        note_scenario(report, ist.name, ist.feature, ist.message)
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

"""The pytest plugin that turns a pytest-bdd run into a ktbench conformance run: the hooks, wired together.

Loaded by `ktbench run` (`-p ktbench.runner.plugin`) and by the repo-root conftest.py (so
`pytest steps/kt1 --kt-target URL` works too); inert unless `--kt-target` or `--kt-suite` is given, so the
bench's own tests are unaffected.  The generation(s) come in as import paths (`--kt-generation module:attr`,
default: the `kt_generations` ini value), never as a static import.  What each hook does lives in the
modules named in ktbench.runner's docstring; this module only decides when.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ktbench.core.events import OUTCOMES, RunFinished
from ktbench.runner import allure_bridge, scrub, xdist_relay
from ktbench.runner.collection import (  # noqa: F401
    pytest_bdd_apply_tag,
    pytest_collection_modifyitems,
)
from ktbench.runner.configure import pytest_configure, pytest_unconfigure  # noqa: F401
from ktbench.runner.fixtures import (  # noqa: F401
    kt_events,
    kt_http,
    kt_profile_check,
    kt_requirements,
    kt_slow,
    kt_target,
)
from ktbench.runner.lifecycle import (  # noqa: F401
    pytest_bdd_after_scenario,
    pytest_bdd_after_step,
    pytest_bdd_before_scenario,
    pytest_bdd_before_step,
    pytest_bdd_before_step_call,
    pytest_bdd_step_error,
    pytest_bdd_step_func_lookup_error,
    pytest_runtest_call,
    pytest_runtest_setup,
    pytest_sessionstart,
)
from ktbench.runner.options import load_validator, pytest_addoption  # noqa: F401
from ktbench.runner.reporting import pytest_report_teststatus, pytest_runtest_makereport  # noqa: F401
from ktbench.runner.state import run_state


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
    allure_bridge.write_not_tested(config, state)
    scrub.scrub_outputs(config, state)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = run_state(config)
    if not state.active or not state.console_text:
        return
    terminalreporter.section("ktbench summary", sep="=")
    for chunk in state.console_text:
        terminalreporter.write(chunk)

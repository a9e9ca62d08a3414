"""The engine's fixtures for every suite: the target, the event stream, the one HTTP client, the scenario's
requirements, and a step's way to judge the exchanged messages so far."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ktbench.core.errors import BenchError
from ktbench.core.events import EventStream
from ktbench.core.requirements import ScenarioRequirements
from ktbench.http.client import RecordingClient, origin_of
from ktbench.runner.state import item_state, run_state
from ktbench.runner.verdict import profile_verdict
from ktbench.targets.model import Target


@pytest.fixture(scope="session")
def kt_events(pytestconfig: pytest.Config) -> EventStream:
    """The run's event stream (subscribe to observe exchanges, steps and scenarios)."""
    return run_state(pytestconfig).events


@pytest.fixture(scope="session")
def kt_target(pytestconfig: pytest.Config) -> Target:
    """The target under test, with the credentials of every simulated role."""
    target = run_state(pytestconfig).target
    if target is None:
        raise BenchError("no target configured: run the suite with `ktbench run` or pass --kt-target URL|NAME")
    return target


@pytest.fixture(scope="session")
def kt_http(pytestconfig: pytest.Config, kt_target: Target, kt_events: EventStream) -> Iterator[RecordingClient]:
    """The session's recording HTTP client (one httpx.Client), probed for reachability before first use."""
    state = run_state(pytestconfig)
    client = RecordingClient(
        kt_events,
        redactor=state.redactor,
        timeout=kt_target.request_timeout_seconds,
        verify=kt_target.tls.httpx_verify(),
        cert=kt_target.tls.httpx_cert(),
        validator=state.validator,
        keep_going=state.keep_going,
        finding_policy=state.policy.review if state.policy.overrides else None,
        target_origins=(origin_of(kt_target.url),),
    )
    client.probe(kt_target.url, timeout=min(5.0, kt_target.request_timeout_seconds))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def kt_slow(pytestconfig: pytest.Config) -> bool:
    """--kt-slow (`ktbench run --slow`): scenarios may wait for a real server's long timers."""
    return run_state(pytestconfig).slow


@pytest.fixture
def kt_requirements(request: pytest.FixtureRequest) -> ScenarioRequirements:
    """The scenario's @req: ids; `pick(...)` chooses the one a generic check verifies."""
    ist = item_state(request.node)
    if ist.checks_scope is None:  # outside ktbench runs (plain pytest without the plugin active)
        from ktbench.runner.tags import split_tags

        ist.checks_scope = ScenarioRequirements(split_tags(ist.tags)[0])
    return ist.checks_scope


@pytest.fixture
def kt_profile_check(request: pytest.FixtureRequest) -> Callable[[], None]:
    """A step's way to judge the scenario's exchanges so far, exactly as the end-of-scenario check does.

    Calling it raises ProfileViolation / InvalidBenchMessage under the run's policy (--kt-fail-on,
    --kt-validation-policy), and skips when live validation is off.
    """
    state = run_state(request.config)

    def check() -> None:
        if state.validator is None:
            pytest.skip("live validation is off (--kt-validate off, or ktbench.validation is not installed)")
        ist = item_state(request.node)
        problem = profile_verdict(ist.validations, state.policy, ist.tags, state.profile_requirement)
        if problem is not None:
            raise problem

    return check

"""Fixtures of the KT2 application-under-test suites.

`kt2_app_bench` (session) starts the bench's voorziening and counter-role application for the target's role
(steps/kt2_apps/bench.py) and the driver that makes the application act; `kt2app` is one scenario's world.
The step modules are imported here so the suite's test module sees them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ktbench.driver.console import say_for
from ktbench.driver.drivers import driver_for
from ktbench.runner.state import run_state
from steps.kt2_apps.bench import AppBench, open_app_bench
from steps.kt2_apps.steps_module import *  # noqa: F403
from steps.kt2_apps.steps_notify import *  # noqa: F403
from steps.kt2_apps.steps_path_b import *  # noqa: F403
from steps.kt2_apps.steps_portal import *  # noqa: F403
from steps.kt2_apps.steps_shared import *  # noqa: F403
from steps.kt2_apps.world import AppWorld


@pytest.fixture(scope="session")
def kt2_app_bench(request: pytest.FixtureRequest, kt_target, kt_http) -> Iterator[AppBench]:
    # the driver has an httpx client of its own: its trigger calls are no traffic of the application's
    driver = driver_for(kt_target.settings, say_for(request.config))
    try:
        with open_app_bench(kt_target, kt_http, driver) as bench:
            yield bench
    finally:
        driver.close()


@pytest.fixture
def kt2app(request: pytest.FixtureRequest, kt2_app_bench: AppBench, kt_faker, kt_events) -> Iterator[AppWorld]:
    world = AppWorld(bench=kt2_app_bench, faker=kt_faker, events=kt_events, state=run_state(request.config))
    yield world
    world.flush()

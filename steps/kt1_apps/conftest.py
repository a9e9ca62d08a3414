"""Fixtures of the KT1 application-under-test suites: the bench's side for the session, a world per scenario.

`kt1_app_bench` starts the bench's KT1 reference server (recorded) on the port the application was told, plus
the bench's counter-role application; `kt1app` is the scenario's world with the driver of the target's
settings.  The step modules are imported here so pytest-bdd sees them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ktbench.driver.console import say_for
from ktbench.driver.drivers import driver_for
from ktbench.runner.state import run_state
from simulators.kt1.actors import People
from steps.kt1_apps.bench import AppBench, running_app_bench
from steps.kt1_apps.steps_module import *  # noqa: F403
from steps.kt1_apps.steps_portal import *  # noqa: F403
from steps.kt1_apps.world import AppWorld


@pytest.fixture(scope="session")
def kt1_app_bench(kt_target, kt_http) -> Iterator[AppBench]:
    with running_app_bench(kt_target, kt_http) as bench:
        yield bench


@pytest.fixture(scope="session")
def kt1_app_driver(pytestconfig, kt_target):
    driver = driver_for(kt_target.settings, say_for(pytestconfig))
    yield driver
    driver.close()


@pytest.fixture
def kt1app(request, kt1_app_bench, kt1_app_driver, kt_events, kt_faker) -> Iterator[AppWorld]:
    world = AppWorld(bench=kt1_app_bench, driver=kt1_app_driver, people=People(kt_faker), events=kt_events,
                     state=run_state(request.config))
    world.mark = kt1_app_bench.log.mark()
    yield world
    world.sync()

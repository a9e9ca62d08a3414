"""Fixtures and shared steps for every suite under steps/.

The engine fixtures (`kt_target`, `kt_http`, `kt_events`, `kt_requirements`) come
from ktbench.runner.fixtures; this file adds the per-scenario ones.  Generic step
definitions from steps.common are imported here so that every suite sees them
(pytest-bdd registers steps as fixtures in the module that defines them).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import pytest

from ktbench.core.requirements import ScenarioRequirements
from steps.common import *  # noqa: F403  (the shared step definitions)
from steps.common import ScenarioContext

if TYPE_CHECKING:
    from faker import Faker


@pytest.fixture
def kt_context(kt_requirements: ScenarioRequirements) -> ScenarioContext:
    """Fresh state for each scenario; knows the scenario's requirement ids for its checks."""
    return ScenarioContext(requirements=kt_requirements)


@pytest.fixture
def kt_faker(request: pytest.FixtureRequest) -> Faker:
    """Faker seeded from the scenario id: reproducible data, never shared between scenarios."""
    from faker import Faker  # imported on first use: loading Faker costs ~0.7 s

    fake = Faker("nl_NL")
    fake.seed_instance(zlib.crc32(request.node.nodeid.encode("utf-8")))
    return fake

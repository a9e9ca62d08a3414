"""Fixtures and step definitions of the KT2 suite.

`kt2_bench` (session) hosts the bench's simulated applications and registers them in the target's domain on
first use; `kt2` is one scenario's world on top of it (steps/kt2/world.py).  The step modules are imported
here so every test module of the suite sees them (pytest-bdd registers step definitions as fixtures of the
module that defines them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steps.kt2.bench import Kt2Bench, open_bench
from steps.kt2.steps_admin import *  # noqa: F403
from steps.kt2.steps_common import *  # noqa: F403
from steps.kt2.steps_discovery import *  # noqa: F403
from steps.kt2.steps_launch import *  # noqa: F403
from steps.kt2.steps_permissions import *  # noqa: F403
from steps.kt2.steps_rest import *  # noqa: F403
from steps.kt2.steps_tasks import *  # noqa: F403
from steps.kt2.steps_tokens import *  # noqa: F403
from steps.kt2.world import Kt2World


@pytest.fixture(scope="session")
def kt2_bench(kt_target, kt_http) -> Iterator[Kt2Bench]:
    with open_bench(kt_target, kt_http) as bench:
        yield bench


@pytest.fixture
def kt2(kt2_bench, kt_faker, kt_slow) -> Kt2World:
    """A fresh world per scenario: the session's applications, new resources, faker data seeded per scenario."""
    return Kt2World(bench=kt2_bench, faker=kt_faker, slow=kt_slow)

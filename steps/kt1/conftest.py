"""Fixtures and step definitions of the KT1.3 suite.

`kt1` is the scenario's world (simulated applications plus what they did),
built on the engine fixtures `kt_target` and `kt_http` (ktbench.runner.fixtures)
and the seeded `kt_faker` (steps/conftest.py).  The step modules are imported
here so every test module of the suite sees them (pytest-bdd registers step
definitions as fixtures of the module that defines them).
"""

from __future__ import annotations

import pytest

from simulators.kt1.actors import People
from steps.kt1.steps_activities import *  # noqa: F403
from steps.kt1.steps_careplan import *  # noqa: F403
from steps.kt1.steps_formats import *  # noqa: F403
from steps.kt1.steps_mailbox import *  # noqa: F403
from steps.kt1.steps_messages import *  # noqa: F403
from steps.kt1.steps_security import *  # noqa: F403
from steps.kt1.steps_smoke import *  # noqa: F403
from steps.kt1.steps_sso import *  # noqa: F403
from steps.kt1.world import Kt1World, target_options


@pytest.fixture
def kt1(kt_target, kt_http, kt_faker, kt_slow) -> Kt1World:
    """A fresh world per scenario: new actors, faker data seeded from the scenario id."""
    return Kt1World(target=kt_target, http=kt_http, people=People(kt_faker), options=target_options(kt_target),
                    slow=kt_slow)

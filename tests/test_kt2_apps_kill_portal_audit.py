"""Kill matrix of the bench's simulated KT2 portal under test, Task updates and notifications: each fault flag
(simulators/kt2/apps/faults.py PORTAL_FAULTS) is caught by the kt2-apps-portal suite with a failure naming a
requirement the fault breaks (tests/kt2_apps_support.py)."""

from __future__ import annotations

import pytest

from simulators.kt2.apps.faults import PORTAL_FAULTS as FAULTS
from tests.kt2_apps_support import assert_killed

NAMES = ("task-update-without-if-match", "no-receive-audit", "receive-audit-without-correlation")


@pytest.mark.parametrize("name", NAMES)
def test_fault_is_killed(name: str, tmp_path) -> None:
    assert_killed("kt2-apps-portal", FAULTS[name], tmp_path)

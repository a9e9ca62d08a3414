"""The first half of the simulated KT1 portal's faults: each is killed by the portal's role suite for the right
reason (a failure naming a requirement the fault declares it breaks), without a bench defect.  Split in two
files so each stays well under a minute with `pytest -n 2`."""

from __future__ import annotations

import pytest

from simulators.kt1.apps.faults import PORTAL_FAULTS
from tests.test_kt1_apps_support import assert_killed

HALF = (len(PORTAL_FAULTS) + 1) // 2


@pytest.mark.parametrize("fault", list(PORTAL_FAULTS)[:HALF])
def test_portal_fault_is_killed(fault, request, tmp_path_factory) -> None:
    assert_killed("kt1-apps-portal", PORTAL_FAULTS, fault, request, tmp_path_factory)

"""The second half of the simulated KT1 module's faults: each is killed by the module's role suite for the right
reason (a failure naming a requirement the fault declares it breaks), without a bench defect.  Split in two
files so each stays well under a minute with `pytest -n 2`."""

from __future__ import annotations

import pytest

from simulators.kt1.apps.faults import MODULE_FAULTS
from tests.test_kt1_apps_support import assert_killed

HALF = (len(MODULE_FAULTS) + 1) // 2


@pytest.mark.parametrize("fault", list(MODULE_FAULTS)[HALF:])
def test_module_fault_is_killed(fault, request, tmp_path_factory) -> None:
    assert_killed("kt1-apps-module", MODULE_FAULTS, fault, request, tmp_path_factory)

"""Kill matrix of the bench's simulated KT2 module under test, path B: each fault flag
(simulators/kt2/apps/faults.py MODULE_FAULTS) is caught by the kt2-apps-module suite with a failure naming a
requirement the fault breaks (tests/kt2_apps_support.py).  The embedded module takes path B for these."""

from __future__ import annotations

import pytest

from simulators.kt2.apps.faults import MODULE_FAULTS as FAULTS
from tests.kt2_apps_support import assert_killed

NAMES = ("pkce-plain", "wrong-scope", "noop-on-store")


@pytest.mark.parametrize("name", NAMES)
def test_fault_is_killed(name: str, tmp_path) -> None:
    assert_killed("kt2-apps-module", FAULTS[name], tmp_path)

"""`require`: the one way KT1 steps judge the target - every failure names the rule it checks.

A tester reading a red scenario should see at once which KT1.3 requirement
the server broke (`KT1-VER-STALE-FOCAL: expected 409, got 200 ...`); the ids
are those of features/kt1/requirements.toml.
"""

from __future__ import annotations

from typing import Any, NoReturn


class RequirementFailed(AssertionError):
    """The target does not meet a KT1.3 requirement (reported as FAILED, not BROKEN)."""

    def __init__(self, req_id: str, message: str) -> None:
        super().__init__(f"{req_id}: {message}")
        self.req_id = req_id


def require(condition: Any, req_id: str, message: str) -> None:
    """Assert `condition`; on failure raise `RequirementFailed` naming `req_id`."""
    if not condition:
        raise RequirementFailed(req_id, message)


def fail(req_id: str, message: str) -> NoReturn:
    raise RequirementFailed(req_id, message)


def require_equal(actual: Any, expected: Any, req_id: str, what: str) -> None:
    if actual != expected:
        raise RequirementFailed(req_id, f"{what}: expected {expected!r}, got {actual!r}")

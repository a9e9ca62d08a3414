"""The two kinds of trouble a run can have, kept apart so verdicts stay true.

- `BenchError`: the bench could not judge (its own set-up, configuration, an unreachable target, a bench
  defect).  A scenario ending in one is BROKEN, never FAILED: the target is not blamed.
- `RequirementFailed` (an AssertionError): the target broke a named requirement.  A scenario ending in one
  is FAILED, and the summary blames exactly that requirement.
"""

from __future__ import annotations


class BenchError(Exception):
    """A problem of the bench or its configuration, not of the target: reported as BROKEN."""


class ConfigurationError(BenchError):
    """The user's set-up is unusable (targets file, --target, credentials): a configuration verdict."""


class TargetConfigError(ConfigurationError):
    """The targets file or --target value is unusable; the message says where and why."""


class PreconditionFailed(BenchError):
    """A Given step's check of a requirement the scenario does not verify failed: the target broke that
    requirement (its own scenarios report it FAILED), so this scenario could not reach what it verifies and
    is BROKEN - not failed for something it was not written to judge."""

    def __init__(self, req_id: str, message: str) -> None:
        super().__init__(f"precondition not met: {req_id}: {message}")
        self.req_id = req_id


class RequirementFailed(AssertionError):
    """The target does not meet the requirement `req_id` (the scenario FAILS, naming it)."""

    def __init__(self, req_id: str, message: str) -> None:
        super().__init__(f"{req_id}: {message}")
        self.req_id = req_id
        self.detail = message

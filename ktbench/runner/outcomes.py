"""Outcome classification: failed means the target does not conform; broken means the bench could not tell.

- `RequirementFailed` (and `ProfileViolation`, and plain AssertionError / pytest.fail) -> failed;
- `BenchError` (configuration, unreachable target, a bench defect such as a check naming a requirement the
  scenario does not carry) and any other exception -> broken;
- a failing setup or teardown (a fixture) -> broken: nothing was checked.

`failure_requirement` decides which requirement a failure blames: the one its check names, which must be one
of the scenario's @req: tags (or the suite's profile requirement).  A bare AssertionError blames the
scenario's only requirement; in a scenario with several it is a bench defect (broken), never a guess.
"""

from __future__ import annotations

from typing import Any

import pytest

from ktbench.core.errors import BenchError, RequirementFailed
from ktbench.core.events import Outcome


def classify_exception(exc: BaseException | None) -> Outcome:
    if exc is None:
        return "broken"
    if isinstance(exc, BenchError):
        return "broken"
    if isinstance(exc, pytest.skip.Exception):
        return "skipped"
    if isinstance(exc, (AssertionError, pytest.fail.Exception)):
        return "failed"
    return "broken"


def classify_report(report: pytest.TestReport, call: pytest.CallInfo[Any]) -> Outcome:
    if report.skipped:
        return "skipped"
    if report.passed:
        return "passed"
    if report.when != "call":
        return "broken"  # a fixture (setup/teardown) failed: nothing was checked
    return classify_exception(call.excinfo.value if call.excinfo else None)


def failure_requirement(exc: BaseException | None, requirements: tuple[str, ...],
                        implicit: tuple[str, ...] | str | None = ()) -> tuple[str | None, str | None]:
    """(the requirement a failure blames, None) or (None, why this failure is a bench defect).

    `implicit`: requirements every scenario of the suite carries (its profile and exchange rules)."""
    implicit = (implicit,) if isinstance(implicit, str) else tuple(implicit or ())
    allowed = set(requirements) | set(implicit)
    if isinstance(exc, RequirementFailed):
        if exc.req_id in allowed:
            return exc.req_id, None
        return None, (f"bench defect: a check names requirement {exc.req_id}, which this scenario does not "
                      f"carry (its @req: tags: {', '.join(requirements) or 'none'})")
    if len(requirements) == 1:
        return requirements[0], None
    return None, (f"bench defect: a failing check names no requirement and the scenario carries "
                  f"{len(requirements)} ({', '.join(requirements) or 'none'}); use require(..., REQ_ID, ...)")

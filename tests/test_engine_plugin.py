"""ktbench.pytest_plugin units: tag expressions, tag parsing and outcome classification."""

from __future__ import annotations

import pytest

from ktbench.client import TargetUnreachable
from ktbench.pytest_plugin import TagExpression, TagExpressionError, classify_exception, split_tags
from ktbench.targets import BenchError, TargetConfigError

TAGS = ["kt1", "smoke", "req:KT1-META-CONFORMANCE", "role:portal"]


@pytest.mark.parametrize("expression, expected", [
    ("", True),
    ("@smoke", True),
    ("smoke", True),
    ("@slow", False),
    ("@req:KT1-META-CONFORMANCE", True),
    ("@req:KT1-META-*", True),
    ("@req:KT1-MAILBOX-*", False),
    ("@smoke and not @slow", True),
    ("@smoke and @slow", False),
    ("@slow or @role:portal", True),
    ("not (@slow or @wip) and @kt1", True),
    ("not not @kt1", True),
    ("@kt1 and (@role:module or @role:observer)", False),
])
def test_tag_expressions(expression: str, expected: bool) -> None:
    assert TagExpression(expression).matches(TAGS) is expected


@pytest.mark.parametrize("expression", ["@a and", "(@a", "@a)", "and @a", "@a or or @b", "not"])
def test_bad_tag_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(TagExpressionError):
        TagExpression(expression)


def test_split_tags() -> None:
    reqs, roles = split_tags(["@req:KT1-B", "req:KT1-A", "role:portal", "role:module", "smoke", "req:", "x:y"])
    assert reqs == ("KT1-A", "KT1-B")
    assert roles == ("module", "portal")


@pytest.mark.parametrize("exc, outcome", [
    (AssertionError("[KT1-X] wrong"), "failed"),
    (pytest.fail.Exception("explicit"), "failed"),
    (TargetUnreachable("refused"), "broken"),
    (TargetConfigError("bad file"), "broken"),
    (BenchError("bench bug"), "broken"),
    (KeyError("x"), "broken"),
    (pytest.skip.Exception("later"), "skipped"),
    (None, "broken"),
])
def test_classification(exc: BaseException | None, outcome: str) -> None:
    assert classify_exception(exc) == outcome

"""Steps of the toy suite (the engine fixtures kt_http, kt_target come from ktbench.runner)."""

from __future__ import annotations

import pytest
from pytest_bdd import then, when

from ktbench.core.requirements import require


@pytest.fixture
def toy() -> dict:
    return {}


@when("the visitor asks the server for a greeting")
def _(toy, kt_http, kt_target) -> None:
    toy["answer"] = kt_http.get(kt_target.url + "/hello", auth=kt_target.role("visitor"))


@then("the server says the greeting the target declares")
def _(toy, kt_target) -> None:
    answer = toy["answer"]
    expected = kt_target.setting("greeting")
    require(answer.status_code == 200 and answer.json().get("greeting") == expected, "TOY-HELLO",
            f"expected the greeting {expected!r}, got {answer.status_code} {answer.text[:80]!r}")

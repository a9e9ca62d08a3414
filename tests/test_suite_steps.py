"""The KT1 step layer's own helpers: requirement-naming assertions, target options, the scenario world."""

from __future__ import annotations


import httpx
import pytest

from ktbench.core.errors import BenchError, RequirementFailed
from ktbench.core.requirements import fail, require, require_equal
from ktbench.generations.kt1 import GENERATION as KT1
from ktbench.generations.kt1.settings import Kt1Settings
from simulators.kt1.actors import Kt1Module, Kt1Portal, People
from simulators.kt1.actors.kt1_application import Answer
from steps.kt1.checks import check_empty_claim
from steps.kt1.world import DOCUMENTED_MAX_CLAIM_EXPIRIES, Kt1World, target_options

URL = "http://127.0.0.1:8999"


def test_require_names_the_requirement() -> None:
    require(True, "KT1-X", "never shown")
    with pytest.raises(AssertionError, match=r"^KT1-VER-STALE-FOCAL: expected 409, got 200$") as info:
        require(False, "KT1-VER-STALE-FOCAL", "expected 409, got 200")
    assert isinstance(info.value, RequirementFailed) and info.value.req_id == "KT1-VER-STALE-FOCAL"
    with pytest.raises(RequirementFailed, match="KT1-A: boom"):
        fail("KT1-A", "boom")
    with pytest.raises(RequirementFailed, match=r"KT1-B: status: expected 1, got 2"):
        require_equal(2, 1, "KT1-B", "status")


def test_target_options_come_from_the_targets_settings() -> None:
    settings = Kt1Settings(claim_timeout_seconds=1.5, max_claim_expiries=3, webhook_receiver_url="http://127.0.0.1:1",
                           webhook_role="observer", authorization_code_seconds=1.0, access_token_seconds=2.0)
    target = KT1.target_for_url(URL).model_copy(update={"settings": settings})
    options = target_options(target)
    assert (options.claim_timeout, options.max_claim_expiries) == (1.5, 3)
    assert (options.webhook_receiver_url, options.webhook_role) == ("http://127.0.0.1:1", "observer")
    assert (options.code_seconds, options.token_seconds) == (1.0, 2.0)


def test_a_target_that_declares_nothing_gets_no_timers_and_the_documented_retries() -> None:
    options = target_options(KT1.target_for_url(URL))
    assert options.webhook_receiver_url is None and options.claim_timeout is None and options.code_seconds is None
    assert options.max_claim_expiries == DOCUMENTED_MAX_CLAIM_EXPIRIES


def test_world_builds_one_actor_per_role_and_keeps_its_repr_short() -> None:
    world = Kt1World(target=KT1.target_for_url(URL), http=object(), people=People(1),
                     options=target_options(KT1.target_for_url(URL)))
    assert isinstance(world.portal, Kt1Portal) and isinstance(world.module, Kt1Module)
    assert world.actor("other domain's portal").creds.role == "other-domain-portal"
    assert world.actor("portal") is world.portal
    assert "portal-secret" not in repr(world) + repr(world.portal)
    assert repr(world.portal).startswith("Kt1Portal(ktbench-portal @ ")
    with pytest.raises(BenchError):
        world.sent("careplan")
    with pytest.raises(BenchError):
        world.need(None, "a patient")


def _answer(status: int, body: object) -> Answer:
    return Answer.of(httpx.Response(status, json=body, headers={"Content-Type": "application/json"}))


def test_empty_claim_needs_an_entry_list() -> None:
    check_empty_claim(_answer(200, {"resourceType": "Bundle", "entry": []}), None)
    with pytest.raises(RequirementFailed, match="KT1-CLAIM-EMPTY: .*entry"):
        check_empty_claim(_answer(200, {"resourceType": "Bundle"}), None)
    with pytest.raises(RequirementFailed, match="KT1-SEC-CROSS-DOMAIN-CLAIM"):
        check_empty_claim(_answer(500, {"resourceType": "OperationOutcome"}), None, "KT1-SEC-CROSS-DOMAIN-CLAIM")

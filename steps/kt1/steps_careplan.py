"""Steps for a care plan activity end to end: assigned by the portal, performed in the module
(features/kt1/careplan_activity.feature).

The module answers with UpdateCarePlanActivityStatus messages about its own
CarePlanActivityStatus resource; the portal claims each one.  Because a newer
unprocessed message about the same resource replaces an older one, the
portal is only guaranteed to see the latest status - the steps check exactly
that.
"""

from __future__ import annotations

import copy

from pytest_bdd import given, parsers, then, when

from simulators.kt1.actors.kt1_resources import (
    LocalResource,
    careplan_activity_status,
    set_careplan_activity_status,
    status_of,
)
from steps.kt1.checks import check_accepted, check_intact
from ktbench.core.requirements import precondition, require
from steps.kt1.world import Kt1World


def claim_event(kt1: Kt1World, actor: str, event: str):
    answer, message = kt1.actor(actor).claim(kt1.patient.url, event)
    kt1.claim_answer, kt1.claimed = answer, message
    return answer, message


@given("the module has received the care plan")
def _(kt1: Kt1World) -> None:
    answer, message = claim_event(kt1, "module", "CreateOrUpdateCarePlan")
    require(message is not None and message.focal is not None, "KT1-CP-ASSIGN",
            f"the module should be able to claim the care plan the portal sent, got {answer.brief()}")
    focal = message.focal
    kt1.module_careplan = LocalResource("CarePlan", focal.url, copy.deepcopy(focal.content), version=focal.version,
                                        history=[focal.version] if focal.version else [])
    ack = kt1.module.ack(message, "Success")
    require(ack.ok, "KT1-ACK-SUCCESS", f"the module's Success acknowledgement was refused: {ack.brief()}")


@when(parsers.re(r"the module reports the activity as (?P<status>[A-Za-z]+)( at (?P<percent>\d+) percent)?"))
def _(status: str, percent: str | None, kt1: Kt1World) -> None:
    result = kt1.module.report_status(kt1.people, kt1.patient, kt1.need(kt1.activity_id, "an assigned activity"),
                                      status, int(percent) if percent else None)
    kt1.remember("activity status", result)
    previous = len(kt1.sends["activity status"]) > 1
    check_accepted(result, "KT1-CP-STATUS-UPDATE" if previous else "KT1-MSG-ACCEPT")


@then(parsers.re(r"the portal receives the activity status (?P<status>[A-Za-z]+)"))
def _(status: str, kt1: Kt1World) -> None:
    answer, message = claim_event(kt1, "portal", "UpdateCarePlanActivityStatus")
    require(message is not None, "KT1-CP-STATUS-FLOW",
            f"the portal should receive the module's status report ({status}), but its claim returned nothing "
            f"({answer.brief()})")
    focal = message.focal
    require(focal is not None, "KT1-CP-STATUS-FLOW", "the status message has no focal CarePlanActivityStatus")
    got = status_of(focal.content)
    require(got == status, "KT1-CP-STATUS-FLOW",
            f"the portal should see the activity as {status}, but the message it got says {got!r} "
            "(an older report that a newer one should have replaced?)")
    check_intact(kt1.sends["activity status"][-1], message, "KT1-CP-STATUS-FLOW")
    ack = kt1.portal.ack(message, "Success")
    precondition(ack.ok, "KT1-ACK-SUCCESS", f"the portal's Success acknowledgement was refused: {ack.brief()}")


@when("the portal cancels the activity in the care plan")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    set_careplan_activity_status(careplan.content, kt1.activity_id, "Cancelled")
    result = kt1.portal.send_careplan(careplan, kt1.patient, kt1.practitioner)
    check_accepted(kt1.remember("careplan update", result), "KT1-CP-CANCEL")


@then(parsers.re(r"the module receives the care plan with the activity (?P<status>[A-Za-z]+)"))
def _(status: str, kt1: Kt1World) -> None:
    answer, message = claim_event(kt1, "module", "CreateOrUpdateCarePlan")
    require(message is not None and message.focal is not None, "KT1-CP-CANCEL",
            f"the module should receive the updated care plan, got {answer.brief()}")
    got = careplan_activity_status(message.focal.content, kt1.activity_id)
    require(got == status, "KT1-CP-CANCEL", f"the activity should arrive as {status}, got {got!r}")
    require(message.focal.version == kt1.careplan.version, "KT1-CP-CANCEL",
            f"the module should get the care plan at its latest version {kt1.careplan.version!r}, "
            f"got {message.focal.version!r}")


@when("the module shares the activity's result")
def _(kt1: Kt1World) -> None:
    result_resource = kt1.module.new_result(kt1.people, kt1.patient, kt1.activity_id,
                                            performer_url=kt1.practitioner.url)
    result = kt1.module.send("CreateOrUpdateCarePlanActivityResult", result_resource, [kt1.patient],
                             patient_url=kt1.patient.url)
    check_accepted(kt1.remember("activity result", result))


@then("the portal receives the activity result")
def _(kt1: Kt1World) -> None:
    answer, message = claim_event(kt1, "portal", "CreateOrUpdateCarePlanActivityResult")
    require(message is not None, "KT1-CP-RESULT",
            f"the portal should receive the activity result, but its claim returned nothing ({answer.brief()})")
    check_intact(kt1.sent("activity result"), message, "KT1-CP-RESULT")

"""Steps for sending and routing messages and for resource versioning (features/kt1/routing, versioning).

Every scenario starts from its own patient; messages are found again by
their MessageHeader.identifier in searches filtered by that patient.
"""

from __future__ import annotations

import copy

from pytest_bdd import given, parsers, then, when

from ktbench.fhir.dstu1.constants import EXT_ISSUE_RESOURCE
from ktbench.fhir.dstu1.links import strip_history
from simulators.kt1.actors import Kt1Portal
from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_compose import compose, send_composed
from simulators.kt1.actors.kt1_resources import LocalResource, PlannedActivity
from steps.kt1.checks import check_accepted, check_not_received, check_received, check_reply, find_copy
from ktbench.core.requirements import fail, require
from steps.kt1.world import ACTOR, Kt1World

EVENT = r"(?P<event>[A-Za-z]+)"


# ---------------------------------------------------------------------------------------------------------------
# The scenario's patient and care plan
# ---------------------------------------------------------------------------------------------------------------
@given(parsers.re(rf"a new patient known to the {ACTOR}"))
def _(actor: str, kt1: Kt1World) -> None:
    owner = kt1.actor(actor)
    if not isinstance(owner, Kt1Portal):
        raise TypeError(f"patients are registered by portals, not by the {actor}")
    kt1.patient = owner.new_patient(kt1.people)
    kt1.practitioner = owner.new_practitioner(kt1.people)
    kt1.sender_of_patient = actor


def new_careplan(kt1: Kt1World, owner: Kt1Portal, patient: LocalResource, definition: str = "ktbench-game-1",
                 kind: str = "Game") -> LocalResource:
    activity_id = f"act-{kt1.people.unique_id()}"
    practitioner = kt1.need(kt1.practitioner, "a practitioner (Given a new patient known to the portal)")
    careplan = owner.new_careplan(kt1.people, patient, practitioner,
                                  [PlannedActivity(identifier=activity_id, definition=definition, kind=kind,
                                                   description=kt1.people.activity_name())])
    if kt1.careplan is None and patient is kt1.patient:
        kt1.careplan, kt1.activity_id = careplan, activity_id
    return careplan


def send_careplan(kt1: Kt1World, careplan: LocalResource, patient: LocalResource, purpose: str = "careplan",
                  owner: Kt1Portal | None = None, **kwargs):
    owner = owner or kt1.portal
    result = owner.send_careplan(careplan, patient, kt1.need(kt1.practitioner, "a practitioner"), **kwargs)
    return kt1.remember(purpose, result)


@given("the portal has sent a care plan for the patient")
def _(kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient (Given a new patient known to the portal)")
    check_accepted(send_careplan(kt1, new_careplan(kt1, kt1.portal, patient), patient))


@given(parsers.re(r"the portal has sent (?P<count>\d+) (more )?care plans for the patient"))
def _(count: str, kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    for _ in range(int(count)):
        check_accepted(send_careplan(kt1, new_careplan(kt1, kt1.portal, patient), patient))


@given("the portal has sent a care plan for another patient")
def _(kt1: Kt1World) -> None:
    kt1.other_patient = kt1.portal.new_patient(kt1.people)
    careplan = new_careplan(kt1, kt1.portal, kt1.other_patient)
    check_accepted(send_careplan(kt1, careplan, kt1.other_patient, purpose="other patient's care plan"))


@given("the portal has sent a user message for the patient")
def _(kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    result, _message = kt1.portal.send_user_message(kt1.people, patient, kt1.need(kt1.practitioner, "a practitioner").url)
    check_accepted(kt1.remember("user message", result))


@given("the portal has assigned the game activity to the patient")
def _(kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    definition = pick_game_definition(kt1)
    check_accepted(send_careplan(kt1, new_careplan(kt1, kt1.portal, patient, definition=definition), patient))


def pick_game_definition(kt1: Kt1World) -> str:
    """A Game the module offers, from the domain's ActivityDefinitions (a placeholder if there is none)."""
    answer, entries = kt1.portal.activities()
    fallback = None
    for entry in entries:
        content = entry.get("content") or {}
        kind = (res.ad_extension(content, "ActivityKind") or {}).get("valueCoding", {}).get("code")
        app = ((res.ad_extension(content, "Application") or {}).get("valueResource") or {}).get("display")
        ident = res.ad_identifier(content)
        if kind == "Game" and ident:
            if app == kt1.module.app_id:
                return ident
            fallback = fallback or ident
    return fallback or "ktbench-game-1"


def change_careplan(kt1: Kt1World, careplan: LocalResource, text: str | None = None) -> str:
    """Change the first activity's description; returns the new text."""
    text = text or kt1.people.activity_name()
    activity = careplan.content["activity"][0]
    exts = [e for e in activity["extension"] if e.get("url") != res.CAREPLAN + "ActivityDescription"]
    exts.append({"url": res.CAREPLAN + "ActivityDescription", "valueString": text})
    activity["extension"] = exts
    return text


@given("the portal has updated the care plan")
@when("the portal updates the care plan")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    change_careplan(kt1, careplan)
    check_accepted(send_careplan(kt1, careplan, kt1.patient, purpose="careplan update"))


@when("the portal updates the care plan twice")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    for _ in range(2):
        change_careplan(kt1, careplan)
        check_accepted(send_careplan(kt1, careplan, kt1.patient, purpose="careplan update"))


@given("the portal has updated the patient")
def _(kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    patient.content["telecom"][0]["value"] = kt1.people.fake.free_email()
    check_accepted(kt1.remember("patient update", kt1.portal.send_patient(patient)))


# ---------------------------------------------------------------------------------------------------------------
# Routing: one message of each event
# ---------------------------------------------------------------------------------------------------------------
@when(parsers.re(rf"the {ACTOR} sends an? {EVENT} message about the patient"))
def _(actor: str, event: str, kt1: Kt1World) -> None:
    sender = kt1.actor(actor)
    composed = compose(sender, event, kt1.people, kt1.need(kt1.patient, "a patient"))
    kt1.remember(event, send_composed(sender, composed))
    kt1.last_sender = actor


@then("the server accepts the message")
def _(kt1: Kt1World) -> None:
    check_accepted(kt1.need(kt1.last_send, "a sent message"))


@then("the reply confirms the message and the version of every resource")
def _(kt1: Kt1World) -> None:
    check_reply(kt1.need(kt1.last_send, "a sent message"))


@then(parsers.re(rf"the {ACTOR} receives the message with its content intact"))
def _(actor: str, kt1: Kt1World) -> None:
    check_received(kt1, actor, kt1.need(kt1.last_send, "a sent message"))


@then(parsers.re(rf"the {ACTOR} does not receive the message"))
def _(actor: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "a sent message")
    sender = kt1.actor(kt1.last_sender or "portal")
    check_not_received(kt1, actor, result, sender)


# ---------------------------------------------------------------------------------------------------------------
# Versioning (409 conflicts)
# ---------------------------------------------------------------------------------------------------------------
@when("the portal sends the care plan again without a version")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    change_careplan(kt1, careplan)
    kt1.rejected = send_careplan(kt1, careplan, kt1.patient, purpose="rejected", focal_version=None)


@when("the portal sends the care plan again quoting its first version")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    change_careplan(kt1, careplan)
    kt1.rejected = send_careplan(kt1, careplan, kt1.patient, purpose="rejected", focal_version=careplan.history[0])


@when("the portal sends the care plan quoting the patient's first version")
def _(kt1: Kt1World) -> None:
    careplan, patient = kt1.need(kt1.careplan, "a care plan"), kt1.need(kt1.patient, "a patient")
    change_careplan(kt1, careplan)
    kt1.rejected = send_careplan(kt1, careplan, patient, purpose="rejected",
                                 other_versions={patient.url: patient.history[0]})


@when("the portal sends the care plan with the patient but without the patient's version")
def _(kt1: Kt1World) -> None:
    careplan, patient = kt1.need(kt1.careplan, "a care plan"), kt1.need(kt1.patient, "a patient")
    change_careplan(kt1, careplan)
    send_careplan(kt1, careplan, patient, purpose="careplan update", other_versions={patient.url: None})


def _resource_named(kt1: Kt1World, what: str) -> LocalResource:
    named = {"care plan": kt1.careplan, "patient": kt1.patient}.get(what)
    return kt1.need(named, f"a {what}")


@then(parsers.re(r"the server refuses the message because the (?P<what>care plan|patient) has no version"))
def _(what: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.rejected, "a message the server should refuse")
    require(result.answer.status == 409, "KT1-VER-NO-FOCAL-VERSION",
            f"an update of the existing {what} without a version must be refused with 409 Conflict, "
            f"got {result.answer.brief()}")


@then(parsers.re(r"the server refuses the message because the (?P<what>care plan|patient) version is stale"))
def _(what: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.rejected or kt1.last_send, "a message the server should refuse")
    resource = _resource_named(kt1, what)
    req = "KT1-VER-STALE-FOCAL" if resource.url == result.focal.url else "KT1-VER-STALE-NON-FOCAL"
    require(result.answer.status == 409, req,
            f"a message quoting an outdated version of the {what} must be refused with 409 Conflict, "
            f"got {result.answer.brief()}")


@then(parsers.re(r'the OperationOutcome says "(?P<text>[^"]+)" about the (?P<what>care plan|patient)'))
def _(text: str, what: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.rejected or kt1.last_send, "a refused message")
    resource = _resource_named(kt1, what)
    answer = result.answer
    require(answer.resource_type == "OperationOutcome", "KT1-VER-OUTCOME",
            f"the 409 body should be an OperationOutcome, got {answer.brief()}")
    issues = answer.issues()
    require(any(i.get("details") == text for i in issues), "KT1-VER-OUTCOME",
            f"expected an issue with exactly the text {text!r}; got {answer.issue_details()}")
    issue = next(i for i in issues if i.get("details") == text)
    require(issue.get("severity") == "error" and (issue.get("type") or {}).get("code") == "conflict",
            "KT1-VER-OUTCOME", f"the issue should have severity 'error' and type 'conflict', got "
                               f"{issue.get('severity')!r}/{(issue.get('type') or {}).get('code')!r}")
    named = [((e.get("valueResource") or {}).get("reference")) for e in issue.get("extension") or []
             if isinstance(e, dict) and e.get("url") == EXT_ISSUE_RESOURCE]
    named_issues = [i for i in issues if any(
        strip_history(((e.get("valueResource") or {}).get("reference")) or "") == resource.url
        for e in i.get("extension") or [] if isinstance(e, dict) and e.get("url") == EXT_ISSUE_RESOURCE)]
    require(named_issues, "KT1-VER-OUTCOME",
            f"an issue should name the {what} {resource.url} (OperationOutcome#IssueResource); named: {named}")


@then("the module does not receive the rejected message")
def _(kt1: Kt1World) -> None:
    result = kt1.need(kt1.rejected, "a refused message")
    if find_copy(kt1.module, result) is not None:
        fail("KT1-VER-ATOMIC", f"the refused message {result.identifier} was still delivered to the module")


@then("every version the server minted for the care plan sorts after the previous one")
def _(kt1: Kt1World) -> None:
    history = kt1.need(kt1.careplan, "a care plan").history
    require(len(history) >= 3, "KT1-VER-INCREASING",
            f"expected a new version for each of the 3 accepted messages, learned {history}")
    for before, after in zip(history, history[1:]):
        require(after > before, "KT1-VER-INCREASING",
                f"version {after!r} was minted after {before!r} but does not sort after it "
                "(clients compare versions as strings)")


# Recovery: the portal's version is outdated because the module changed the care plan meanwhile.
@given("the module has updated the care plan")
def _(kt1: Kt1World) -> None:
    mine = kt1.need(kt1.module_careplan, "the module's copy of the care plan (Given the module has received it)")
    res.set_careplan_activity_status(mine.content, kt1.activity_id, "InProgress")
    # seed 003: a CreateOrUpdateCarePlan carries the Patient's content along with the care plan
    result = kt1.module.send("CreateOrUpdateCarePlan", mine, [kt1.need(kt1.patient, "the patient")],
                             patient_url=kt1.patient.url)
    check_accepted(kt1.remember("module care plan update", result))


@when("the portal sends its change to the care plan")
def _(kt1: Kt1World) -> None:
    careplan = kt1.need(kt1.careplan, "a care plan")
    kt1.portal_change = kt1.portal_change or kt1.people.activity_name()
    change_careplan(kt1, careplan, kt1.portal_change)
    result = send_careplan(kt1, careplan, kt1.patient, purpose="portal change")
    kt1.rejected = result if result.answer.status != 200 else None


@when("the portal takes the latest version of the care plan from its mailbox")
def _(kt1: Kt1World) -> None:
    """Like a connector after a conflict: find the newer care plan message in its own mailbox, adopt it."""
    careplan = kt1.need(kt1.careplan, "a care plan")
    newer = kt1.sent("module care plan update", -1)
    summary = kt1.portal.find(newer.identifier, patient_url=kt1.patient.url, event="CreateOrUpdateCarePlan")
    require(summary is not None, "KT1-VER-RECOVERY",
            "the portal (subscribed to CreateOrUpdateCarePlan) should find the module's update of the care plan "
            "in its mailbox")
    answer, message = kt1.portal.message(summary.entry_id)
    require(message is not None and message.focal is not None and message.focal.url == careplan.url,
            "KT1-VER-RECOVERY", f"looking up the module's care plan message should return it complete, got "
                                f"{answer.brief()}")
    careplan.content = copy.deepcopy(message.focal.content)
    careplan.learn_version(message.focal.version or "")


@then("the module receives the portal's change")
def _(kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "the portal's change")
    message = check_received(kt1, "module", result)
    text = kt1.portal_change
    focal = message.focal.content if message.focal else {}
    require(text is not None and text in str(focal), "KT1-VER-RECOVERY",
            f"the care plan the module received should carry the portal's change {text!r}")

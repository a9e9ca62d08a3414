"""Steps for authentication, domain isolation and bad input (features/kt1/security.feature).

Negative checks are only meaningful next to a positive control: each
"cannot see" step first makes sure the message exists for its rightful owner.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import replace

from pytest_bdd import parsers, then, when

from ktbench.fhir.dstu1.constants import MAILBOX_PATH
from simulators.kt1.actors.kt1_compose import compose
from simulators.kt1.actors.kt1_messages import message_bundle, new_identifier
from ktbench.targets import Secret
from steps.kt1.checks import check_empty_claim, find_copy
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from steps.kt1.world import ACTOR, Kt1World


def _actions(kt1: Kt1World, actor_name: str, password: str | None, user: str | None = None):
    actor = kt1.actor(actor_name)
    if user is not None:
        actor = replace(actor, basic_override=(user, Secret(password or "x")), bearer=None)
    elif password is not None:
        actor = actor.with_password(password)
    return actor


ACTIONS = r"(?P<action>sends a message|searches its mailbox|claims a message|lists the ActivityDefinitions|launches the module)"


def _do(kt1: Kt1World, actor, action: str):
    if action == "sends a message":
        patient = kt1.portal.new_patient(kt1.people)
        composed = compose(actor, "CreateOrUpdatePatient", kt1.people, patient)
        return actor.send(composed.event, composed.focal, patient_url=patient.url).answer
    if action == "searches its mailbox":
        return actor.search()
    if action == "claims a message":
        return actor.claim()[0]
    if action == "lists the ActivityDefinitions":
        return actor.activities()[0]
    patient = kt1.portal.new_patient(kt1.people)
    return actor.launch(kt1.module.app_id, patient.url, patient.url, "act")


@when(parsers.re(rf"the {ACTOR} {ACTIONS} with a wrong password"))
def _(actor: str, action: str, kt1: Kt1World) -> None:
    kt1.answers = [_do(kt1, _actions(kt1, actor, "wrong-" + secrets.token_hex(6)), action)]


@when(parsers.re(rf"an unknown application {ACTIONS}"))
def _(action: str, kt1: Kt1World) -> None:
    kt1.answers = [_do(kt1, _actions(kt1, "portal", "whatever", user="ktbench-no-such-app-" + secrets.token_hex(3)),
                       action)]


@when("a client without credentials sends a message to the Mailbox")
def _(kt1: Kt1World) -> None:
    patient = kt1.portal.new_patient(kt1.people)
    bundle = message_bundle(domain=kt1.portal.domain, event="CreateOrUpdatePatient", identifier=new_identifier(),
                            focal=patient, others=[], patient_url=patient.url, source=kt1.portal.source(),
                            header_base=kt1.portal.resource_base)
    kt1.answers = [kt1.portal.call("POST", MAILBOX_PATH, body=bundle, auth="none")]


@then("the request is refused as unauthorized")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.status == 401, "KT1-SEC-BASIC",
            f"wrong or missing application credentials must be refused with 401, got {answer.brief()}")
    require(answer.resource_type == "OperationOutcome", "KT1-SEC-BASIC",
            f"the 401 should explain itself with an OperationOutcome, got {answer.brief()}")


# ---------------------------------------------------------------------------------------------------------------
# Domain isolation
# ---------------------------------------------------------------------------------------------------------------
@when("the portal sends a care plan for the patient labelled with the other domain")
def _(kt1: Kt1World) -> None:
    from steps.kt1.steps_messages import new_careplan

    other_domain = kt1.target.role("other-domain-portal").domain
    liar = kt1.portal.claiming_domain(other_domain)
    careplan = new_careplan(kt1, kt1.portal, kt1.patient)
    kt1.rejected = kt1.remember("careplan", liar.send_careplan(careplan, kt1.patient, kt1.practitioner))
    kt1.last_sender = "portal"


@then("the message is refused as forbidden")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.rejected, "a refused message").answer
    require(400 <= answer.status < 500, "KT1-SEC-WRONG-DOMAIN",
            f"a bundle labelled with another domain than the credentials' must be refused (403), got {answer.brief()}")
    require(answer.resource_type == "OperationOutcome", "KT1-SEC-WRONG-DOMAIN",
            f"the refusal should carry an OperationOutcome, got {answer.brief()}")


@then("nobody in the patient's domain receives the refused message")
def _(kt1: Kt1World) -> None:
    result = kt1.need(kt1.rejected, "a refused message")
    require(find_copy(kt1.module, result) is None, "KT1-SEC-WRONG-DOMAIN",
            f"the refused message {result.identifier} was delivered to the module anyway")


def _module_copy(kt1: Kt1World):
    result = kt1.sent("careplan")
    summary = find_copy(kt1.module, result)
    precondition(summary is not None, "KT1-ROUTE-SUBSCRIBED",
            "the module (subscribed to care plans) should have a copy of the care plan message")
    return summary


@when(parsers.re(rf"the {ACTOR} looks up the module's copy of the care plan message"))
def _(actor: str, kt1: Kt1World) -> None:
    summary = _module_copy(kt1)
    answer, kt1.lookup = kt1.actor(actor).message(summary.self_link or summary.entry_id)
    kt1.answers = [answer]


@then("the lookup returns no message")
def _(kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    answer = kt1.answers[-1]
    req = kt_requirements.pick("KT1-SEC-CROSS-DOMAIN-READ", "KT1-SEC-CROSS-APP-READ")
    require(kt1.lookup is None, req,
            f"another application could read the module's copy of message {kt1.lookup.identifier if kt1.lookup else ''}")
    require(answer.status in (200, 403, 404), req,
            f"the refused lookup should be an empty result or 403/404, got {answer.brief()}")


@then("the claim returns no message of this domain")
def _(kt1: Kt1World) -> None:
    check_empty_claim(kt1.need(kt1.claim_answer, "a claim"), kt1.claimed, "KT1-SEC-CROSS-DOMAIN-CLAIM")


@when("the other domain's module acknowledges the module's copy of the care plan message as Success")
def _(kt1: Kt1World) -> None:
    summary = _module_copy(kt1)
    kt1.ack_answer = kt1.actor("other domain's module").ack(summary, "Success")


@then("the acknowledgement is refused")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.ack_answer, "an acknowledgement")
    require(400 <= answer.status < 500, "KT1-SEC-CROSS-DOMAIN-ACK",
            f"an application of another domain must not change this domain's messages (4xx), got {answer.brief()}")


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------
@when("the portal sends a message that is not valid JSON")
def _(kt1: Kt1World) -> None:
    kt1.answers = [kt1.portal.call("POST", MAILBOX_PATH, raw=b'{"resourceType": "Bundle", "entry": [')]


@then("the server refuses it with 400 and an OperationOutcome")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.status == 400, "KT1-SEC-BAD-INPUT",
            f"malformed input must be refused with 400 (never 5xx), got {answer.brief()}")
    require(answer.resource_type == "OperationOutcome", "KT1-SEC-BAD-INPUT",
            f"the refusal should carry an OperationOutcome, got {answer.brief()}")


@when("the portal sends a message carrying a Condition resource")
def _(kt1: Kt1World) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    composed = compose(kt1.portal, "CreateOrUpdatePatient", kt1.people, patient)
    bundle = message_bundle(domain=kt1.portal.domain, event="CreateOrUpdatePatient", identifier=new_identifier(),
                            focal=composed.focal, others=[], patient_url=patient.url, source=kt1.portal.source(),
                            header_base=kt1.portal.resource_base)
    bundle["entry"].append({"id": kt1.portal.new_url("Condition", kt1.people.unique_id()),
                            "content": {"resourceType": "Condition", "status": "confirmed",
                                        "subject": {"reference": patient.url}}})
    kt1.answers = [kt1.portal.send_raw(copy.deepcopy(bundle))]


@then(parsers.parse('the server refuses it saying "{text}"'))
def _(text: str, kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(400 <= answer.status < 500, "KT1-MSG-UNSUPPORTED-TYPE",
            f"a message with an unsupported resource type must be refused (4xx), got {answer.brief()}")
    require(any(text in d for d in answer.issue_details()), "KT1-MSG-UNSUPPORTED-TYPE",
            f"the OperationOutcome should say {text!r}, got {answer.issue_details()}")


@when("a browser page asks whether it may post to the Mailbox from another origin")
def _(kt1: Kt1World) -> None:
    kt1.answers = [kt1.portal.call("OPTIONS", MAILBOX_PATH, auth="none", headers={
        "Origin": "https://game.ktbench.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})]


@then("the server allows the cross-origin call")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    allowed = answer.headers.get("access-control-allow-origin")
    require(answer.ok and allowed in ("*", "https://game.ktbench.test"), "KT1-CORS",
            f"browser games call KT1 cross-origin: the preflight should be allowed, got HTTP {answer.status}, "
            f"Access-Control-Allow-Origin={allowed!r}")


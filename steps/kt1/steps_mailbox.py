"""Steps for the claim cycle, acknowledgements and mailbox searches (features/kt1/claim_cycle, mailbox_search).

Claims are always filtered by the scenario's own patient, as a real module
does after an SSO launch; that also keeps parallel scenarios apart.
"""

from __future__ import annotations

import copy
import time

from pytest_bdd import given, parsers, then, when

from ktbench.fhir.dstu1.links import strip_history, version_of
from simulators.kt1.actors import DeliveredMessage
from simulators.kt1.actors.kt1_messages import bundle_link, header_summaries
from steps.kt1.checks import check_empty_claim, check_intact, mailbox_status
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from steps.kt1.world import ACTOR, Kt1World

EXPIRY_MARGIN = 0.1           # seconds beyond the declared claim timeout before checking

# What a status check verifies: the status's own rule, or (in that order) the rule of the scenario's context.
STATUS_REQS = {
    "Claimed": "KT1-CLAIM-NEXT",
    "Success": "KT1-ACK-SUCCESS",
    "Failed": "KT1-ACK-FAILED",
    "New": "KT1-ACK-NEW",
    "MaximumRetriesExceeded": "KT1-CLAIM-MAX-RETRIES",
    "ReplacedByNewVersion": "KT1-MSG-REPLACED",
}
CONTEXT_REQS = ("KT1-ACK-HISTORYLESS", "KT1-ACK-ONLY-STATUS", "KT1-CLAIM-EXPIRY", "KT1-CLAIM-MAX-RETRIES",
                "KT1-SEC-CROSS-DOMAIN-ACK", "KT1-MSG-REPLACED")
ACK_REQS = ("KT1-ACK-HISTORYLESS", "KT1-ACK-ONLY-STATUS", "KT1-ACK-FAILED", "KT1-ACK-NEW", "KT1-ACK-SUCCESS")
ORDINALS = {"first": 0, "second": 1, "third": 2}


def _careplan_identifier(kt1: Kt1World, which: str = "first") -> str:
    return kt1.sent("careplan", ORDINALS[which]).identifier


# ---------------------------------------------------------------------------------------------------------------
# Claiming
# ---------------------------------------------------------------------------------------------------------------
def claim(kt1: Kt1World, actor: str = "module", event: str | None = None) -> DeliveredMessage | None:
    patient = kt1.need(kt1.patient, "a patient")
    kt1.claim_answer, kt1.claimed = kt1.actor(actor).claim(patient.url, event)
    return kt1.claimed


@given("the module has claimed the care plan message")
def _(kt1: Kt1World) -> None:
    message = claim(kt1)
    expected = _careplan_identifier(kt1)
    require(message is not None and message.identifier == expected, "KT1-CLAIM-NEXT",
            f"the module's claim should hand out the care plan message {expected}, got "
            f"{message.identifier if message else kt1.claim_answer.brief()}")
    kt1.claimed_careplan = message


@when(parsers.re(rf"the {ACTOR} claims its next new message for the patient"))
def _(actor: str, kt1: Kt1World) -> None:
    claim(kt1, actor)


@when(parsers.re(rf"the {ACTOR} claims its next new (?P<event>[A-Za-z]+) message for the patient"))
def _(actor: str, event: str, kt1: Kt1World) -> None:
    claim(kt1, actor, event)


@then("the claim returns the care plan message complete")
def _(kt1: Kt1World) -> None:
    answer, message = kt1.claim_answer, kt1.claimed
    require(answer is not None and answer.status == 200, "KT1-CLAIM-NEXT",
            f"GetNextNewAndClaim should answer 200, got {answer.brief() if answer else 'nothing'}")
    sent = kt1.sent("careplan")
    require(message is not None, "KT1-CLAIM-NEXT", "the claim handed out no message although one was New")
    require(message.identifier == sent.identifier, "KT1-CLAIM-NEXT",
            f"the claim should hand out the care plan message {sent.identifier}, got {message.identifier}")
    headers = header_summaries(answer.body)
    require(len(headers) == 1, "KT1-CLAIM-NEXT",
            f"a claim hands out exactly one message (one MessageHeader), got {len(headers)}")
    first = (answer.body.get("entry") or [{}])[0].get("content", {})
    require(first.get("resourceType") == "MessageHeader", "KT1-CLAIM-NEXT",
            "the MessageHeader must be the first entry of the message bundle")
    require(message.status == "Claimed", "KT1-CLAIM-NEXT",
            f"the claimed message's ProcessingStatus should be Claimed, got {message.status!r}")
    check_intact(sent, message, "KT1-CLAIM-NEXT")


@then("the claim answer has no next link")
def _(kt1: Kt1World) -> None:
    body = kt1.need(kt1.claim_answer, "a claim").body
    nxt = bundle_link(body, "next") if isinstance(body, dict) else None
    require(nxt is None, "KT1-CLAIM-NO-NEXT",
            f"a claim answer must not carry a 'next' link (a connector following it would claim again): {nxt}")


@then("the claim returns no message")
def _(kt1: Kt1World) -> None:
    check_empty_claim(kt1.need(kt1.claim_answer, "a claim"), kt1.claimed)


@then("the claim does not hand out the care plan message again")
def _(kt1: Kt1World) -> None:
    message = kt1.claimed
    expected = _careplan_identifier(kt1)
    require(message is None or message.identifier != expected, "KT1-CLAIM-ONCE",
            f"the care plan message {expected} was handed out by a second claim although it is still Claimed")


@then(parsers.re(r"the claim returns the (?P<which>first|second|third) care plan message"))
def _(which: str, kt1: Kt1World) -> None:
    message, expected = kt1.claimed, _careplan_identifier(kt1, which)
    order = [r.identifier for r in kt1.sends.get("careplan", [])]
    got = message.identifier if message else None
    require(got == expected, "KT1-CLAIM-ORDER",
            f"the claim should hand out the oldest New message ({which}: {expected}); got {got} "
            f"(sent in this order: {order})")


@then("the claim returns the user message")
def _(kt1: Kt1World) -> None:
    message, expected = kt1.claimed, kt1.sent("user message")
    got = message.identifier if message else None
    require(got == expected.identifier, "KT1-CLAIM-FILTER",
            f"a claim filtered on {expected.event} should hand out the user message {expected.identifier}, "
            f"got {got} ({message.event if message else 'nothing'})")


@then(parsers.re(r"the claim returns a care plan with the activity (?P<status>[A-Za-z]+)"))
def _(status: str, kt1: Kt1World) -> None:
    from simulators.kt1.actors.kt1_resources import careplan_activity_status

    message = kt1.claimed
    require(message is not None and message.event == "CreateOrUpdateCarePlan", "KT1-CP-ASSIGN",
            f"the module should receive the care plan, got {message.event if message else 'no message'}")
    focal = message.focal
    require(focal is not None and focal.rtype == "CarePlan", "KT1-CP-ASSIGN",
            "the delivered message's focal resource should be the CarePlan")
    got = careplan_activity_status(focal.content, kt1.activity_id)
    require(got == status, "KT1-CP-ASSIGN",
            f"activity {kt1.activity_id} should arrive with status {status}, got {got!r}")


# ---------------------------------------------------------------------------------------------------------------
# Acknowledging
# ---------------------------------------------------------------------------------------------------------------
def _acked_message(kt1: Kt1World) -> DeliveredMessage:
    return kt1.need(kt1.claimed, "a claimed message (Given the module has claimed the care plan message)")


@when(parsers.re(r"the module acknowledges the message as (?P<status>Success|Failed|New)"))
def _(status: str, kt1: Kt1World) -> None:
    kt1.ack_answer = kt1.module.ack(_acked_message(kt1), status)


@when(parsers.re(r'the module acknowledges the message as Failed because "(?P<reason>[^"]+)"'))
def _(reason: str, kt1: Kt1World) -> None:
    kt1.ack_answer = kt1.module.ack(_acked_message(kt1), "Failed", reason)


@when(parsers.re(r"the module acknowledges the message as (?P<status>Success|Failed|New) on its history-less URL"))
def _(status: str, kt1: Kt1World) -> None:
    kt1.ack_answer = kt1.module.ack(_acked_message(kt1), status, historyless=True)


@when("the module acknowledges the message as Success with other header fields changed")
def _(kt1: Kt1World) -> None:
    message = _acked_message(kt1)
    kt1.original_header = copy.deepcopy(message.header)
    tampered = copy.deepcopy(message.header)
    tampered["identifier"] = "tampered-" + str(tampered.get("identifier"))
    tampered["source"] = {"name": "tampered", "software": "tampered", "endpoint": "https://tampered.example"}
    tampered["extension"] = []  # a client that drops the Patient extension must not erase it
    kt1.ack_answer = kt1.module.ack(message, "Success", header=tampered)


@then("the acknowledgement is accepted")
def _(kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    answer = kt1.need(kt1.ack_answer, "an acknowledgement")
    require(answer.ok, kt_requirements.pick(*ACK_REQS),
            f"the ProcessingStatus update should be accepted (2xx), got {answer.brief()}")


@then(parsers.re(r"the module's mailbox shows the (?P<which>first )?care plan message as (?P<status>[A-Za-z]+)"))
def _(which: str | None, status: str, kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    own = STATUS_REQS.get(status, "KT1-ACK-SUCCESS")
    req = own if status == "Claimed" else kt_requirements.pick(own, *CONTEXT_REQS)
    identifier = _careplan_identifier(kt1)
    summary = mailbox_status(kt1.module, identifier, kt1.patient.url, req)
    require(summary.status == status, req,
            f"message {identifier} should now be {status} in the module's mailbox, but it is {summary.status!r}")


@then(parsers.re(r'the module\'s mailbox shows the care plan message as Failed with the exception "(?P<reason>[^"]+)"'))
def _(reason: str, kt1: Kt1World) -> None:
    identifier = _careplan_identifier(kt1)
    summary = mailbox_status(kt1.module, identifier, kt1.patient.url, "KT1-ACK-FAILED")
    require(summary.status == "Failed", "KT1-ACK-FAILED", f"expected status Failed, got {summary.status!r}")
    require(summary.exception == reason, "KT1-ACK-FAILED",
            f"the Failed message should keep the exception text {reason!r}, got {summary.exception!r}")


@then(parsers.re(r"the module's next claim for the patient returns the (?P<which>updated )?care plan message( again)?"))
def _(which: str | None, kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    message = claim(kt1)
    if which:
        expected, req = kt1.sent("careplan update", -1).identifier, "KT1-MSG-REPLACED"
    else:
        expected, req = _careplan_identifier(kt1), kt_requirements.pick("KT1-ACK-NEW", "KT1-CLAIM-EXPIRY")
    got = message.identifier if message else None
    require(got == expected, req, f"the next claim should hand out message {expected}, got {got}")


@then("the module's next claim for the patient returns no message")
def _(kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    claim(kt1)
    req = kt_requirements.pick("KT1-CLAIM-MAX-RETRIES", "KT1-ACK-SUCCESS", "KT1-ACK-FAILED", "KT1-CLAIM-EMPTY")
    check_empty_claim(kt1.claim_answer, kt1.claimed, req)


@then("the module's copy of the care plan message still has its original header")
def _(kt1: Kt1World) -> None:
    original = kt1.original_header
    answer, message = kt1.module.message(strip_history(_acked_message(kt1).ack_url or ""))
    require(message is not None, "KT1-ACK-ONLY-STATUS", f"the message can no longer be looked up: {answer.brief()}")
    for key in ("identifier", "source", "event", "data"):
        require(message.header.get(key) == original.get(key), "KT1-ACK-ONLY-STATUS",
                f"an acknowledgement may change only the ProcessingStatus, but MessageHeader.{key} changed to "
                f"{message.header.get(key)!r:.120}")
    require(message.patient == kt1.patient.url, "KT1-ACK-ONLY-STATUS",
            f"an acknowledgement may change only the ProcessingStatus, but MessageHeader#Patient is now "
            f"{message.patient!r}")
    require(message.status == "Success", "KT1-ACK-ONLY-STATUS",
            f"the acknowledgement should still set the status Success, got {message.status!r}")


# ---------------------------------------------------------------------------------------------------------------
# Claim expiry and retries
# ---------------------------------------------------------------------------------------------------------------
@given("the target expires unacknowledged claims quickly")
def _(kt1: Kt1World) -> None:
    kt1.skip_unless_timer(kt1.options.claim_timeout, "claim_timeout_seconds", "claim timeout")


def _wait_claim_timeout(kt1: Kt1World) -> None:
    time.sleep(float(kt1.options.claim_timeout or 0) + EXPIRY_MARGIN)


@when("the claim timeout has passed")
def _(kt1: Kt1World) -> None:
    _wait_claim_timeout(kt1)


@when("the module lets its claim on the care plan message expire as often as retries are allowed")
def _(kt1: Kt1World) -> None:
    identifier = _careplan_identifier(kt1)
    for attempt in range(1, kt1.options.max_claim_expiries + 1):
        message = claim(kt1)
        require(message is not None and message.identifier == identifier, "KT1-CLAIM-EXPIRY",
                f"claim {attempt}: the expired message {identifier} should be claimable again, got "
                f"{message.identifier if message else kt1.claim_answer.brief()}")
        _wait_claim_timeout(kt1)


# ---------------------------------------------------------------------------------------------------------------
# Searching the mailbox
# ---------------------------------------------------------------------------------------------------------------
@when("the module searches its mailbox for the patient")
def _(kt1: Kt1World) -> None:
    kt1.answers = [kt1.module.search(patient_url=kt1.patient.url)]


@when(parsers.parse("the module searches its mailbox for the patient with {count:d} messages per page"))
def _(count: int, kt1: Kt1World) -> None:
    kt1.page_size = count
    kt1.answers = [kt1.module.search(patient_url=kt1.patient.url, count=count)]


@when(parsers.re(r'the module searches its mailbox for the patient\'s messages with status (?P<status>[A-Za-z]+)'
                 r'( using the parameter "(?P<param>[A-Za-z]+)")?'))
def _(status: str, param: str | None, kt1: Kt1World) -> None:
    kt1.answers = [kt1.module.search(patient_url=kt1.patient.url, status=status,
                                     status_param=param or "ProcessingStatus")]


@when(parsers.re(r"the module searches its mailbox for the patient's (?P<event>[A-Za-z]+) messages"))
def _(event: str, kt1: Kt1World) -> None:
    kt1.answers = [kt1.module.search(patient_url=kt1.patient.url, event=event)]


@given("the module has acknowledged the first care plan message as Success")
def _(kt1: Kt1World) -> None:
    message = claim(kt1)
    expected = _careplan_identifier(kt1)
    require(message is not None and message.identifier == expected, "KT1-CLAIM-ORDER",
            f"the first claim should hand out the oldest message {expected}, got "
            f"{message.identifier if message else 'nothing'}")
    answer = kt1.module.ack(message, "Success")
    require(answer.ok, "KT1-ACK-SUCCESS", f"the Success acknowledgement was refused: {answer.brief()}")


def _listed(kt1: Kt1World, req: str, index: int = -1) -> list:
    answer = kt1.answers[index]
    require(answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("resourceType") == "Bundle",
            req, f"the mailbox search should answer 200 with a Bundle, got {answer.brief()}")
    return header_summaries(answer.body)


@then(parsers.parse("the search lists {count:d} messages and only MessageHeader entries"))
def _(count: int, kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    answer = kt1.answers[-1]
    req = kt_requirements.pick("KT1-SEARCH-COUNT-CLAMP", "KT1-SEARCH-SUMMARY")
    listed = _listed(kt1, req)
    entries = answer.body.get("entry") or []
    others = [e.get("content", {}).get("resourceType") for e in entries
              if e.get("content", {}).get("resourceType") != "MessageHeader"]
    precondition(not others, "KT1-SEARCH-SUMMARY", f"a _summary search lists MessageHeaders only; also got {others}")
    sent = {r.identifier for r in kt1.sends.get("careplan", [])}
    got = {h.identifier for h in listed}
    foreign = [h.patient for h in listed if h.patient != kt1.patient.url]
    precondition(not foreign, "KT1-SEARCH-PATIENT-FILTER",
                 f"a search filtered on the patient listed messages about other patients: {foreign[:3]}")
    require(len(listed) == count and got == sent, req,
            f"expected exactly the {count} care plan messages {sorted(sent)}, got {sorted(got)}")
    for header in listed:
        precondition(header.self_link and version_of(header.self_link), "KT1-SEARCH-SUMMARY",
                     f"each listed MessageHeader needs a versioned self link, got {header.self_link!r}")
        precondition(header.status == "New", "KT1-SEARCH-SUMMARY",
                     f"unclaimed messages should be listed as New, got {header.status!r}")


@then(parsers.parse("the first page lists {count:d} messages and links to a next page"))
def _(count: int, kt1: Kt1World) -> None:
    listed = _listed(kt1, "KT1-SEARCH-PAGING")
    require(len(listed) == count, "KT1-SEARCH-PAGING", f"_count={count} should give {count} messages on the first "
                                                       f"page, got {len(listed)}")
    nxt = bundle_link(kt1.answers[-1].body, "next")
    require(nxt, "KT1-SEARCH-PAGING", "the first page of a longer result must link to the next page (rel=next)")
    kt1.answers.append(kt1.module.follow(nxt))


@then(parsers.re(r"the next page lists (?P<count>\d+) messages? and has no next link"))
def _(count: str, kt1: Kt1World) -> None:
    listed = _listed(kt1, "KT1-SEARCH-PAGING")
    require(len(listed) == int(count), "KT1-SEARCH-PAGING",
            f"the last page should list the remaining {count} message(s), got {len(listed)}")
    require(bundle_link(kt1.answers[-1].body, "next") is None, "KT1-SEARCH-PAGING",
            "the last page must not link to a next page")
    seen = [h.identifier for a in kt1.answers for h in header_summaries(a.body)]
    sent = sorted(r.identifier for r in kt1.sends.get("careplan", []))
    require(sorted(seen) == sent, "KT1-SEARCH-PAGING",
            f"the pages together should list each care plan message once: {sent}, got {sorted(seen)}")


@then(parsers.re(r"the search lists only the (?P<which>first|second|third) care plan message"))
def _(which: str, kt1: Kt1World) -> None:
    listed = _listed(kt1, "KT1-SEARCH-STATUS-FILTER")
    expected = _careplan_identifier(kt1, which)
    got = [h.identifier for h in listed]
    require(got == [expected], "KT1-SEARCH-STATUS-FILTER",
            f"the status filter should list only message {expected}, got {got} "
            f"(statuses {[h.status for h in listed]})")


@then("the search lists the other 2 care plan messages")
def _(kt1: Kt1World) -> None:
    listed = _listed(kt1, "KT1-SEARCH-STATUS-FILTER")
    expected = sorted(r.identifier for r in kt1.sends.get("careplan", [])[1:])
    got = sorted(h.identifier for h in listed)
    require(got == expected, "KT1-SEARCH-STATUS-FILTER",
            f"the New filter should list {expected}, got {got} (statuses {[h.status for h in listed]})")


@then("the search lists only the user message")
def _(kt1: Kt1World) -> None:
    listed = _listed(kt1, "KT1-SEARCH-EVENT-FILTER")
    expected = kt1.sent("user message").identifier
    got = [(h.identifier, h.event) for h in listed]
    require([h.identifier for h in listed] == [expected], "KT1-SEARCH-EVENT-FILTER",
            f"the event filter should list only the user message {expected}, got {got}")


@when(parsers.re(r"the module looks up the first care plan message by its (?P<form>bare id|URL|versioned URL)"))
def _(form: str, kt1: Kt1World) -> None:
    summary = kt1.module.find(_careplan_identifier(kt1), patient_url=kt1.patient.url)
    require(summary is not None, "KT1-SEARCH-SUMMARY", "the care plan message is missing from the module's mailbox")
    url = summary.entry_id or strip_history(summary.self_link or "")
    value = {"bare id": url.rstrip("/").rsplit("/", 1)[-1], "URL": url,
             "versioned URL": summary.self_link or url}[form]
    answer, kt1.lookup = kt1.module.message(value)
    kt1.answers = [answer]


@then("the lookup returns the complete first care plan message")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    message = kt1.lookup
    require(answer.status == 200 and message is not None, "KT1-SEARCH-ID",
            f"_id lookup should return the complete message bundle, got {answer.brief()}")
    check_intact(kt1.sent("careplan"), message, "KT1-SEARCH-ID")

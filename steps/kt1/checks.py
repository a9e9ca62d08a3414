"""Checks shared by several KT1 step modules: accepted messages, delivered copies, mailbox statuses.

Each check names the requirement it verifies; the steps stay one-liners.
"""

from __future__ import annotations

from ktbench.fhir.dstu1.links import strip_history, version_of
from ktbench.targets import BenchError
from simulators.kt1.actors import DeliveredMessage, HeaderSummary
from simulators.kt1.actors.kt1_application import Answer, Kt1Application, SendResult
from simulators.kt1.actors.kt1_messages import contains, patient_of
from ktbench.core.requirements import fail, precondition, require
from steps.kt1.world import Kt1World


def sent_patient(result: SendResult) -> str | None:
    header = result.bundle["entry"][0]["content"]
    return patient_of(header)


def sent_by(result: SendResult) -> str | None:
    """The sending application's id (the actors put it in MessageHeader.source.name)."""
    source = result.bundle["entry"][0]["content"].get("source") or {}
    return source.get("name")


def check_accepted(result: SendResult, req: str = "KT1-MSG-ACCEPT") -> None:
    """200 + a Bundle holding exactly one MessageHeader (the connector raises otherwise)."""
    answer = result.answer
    require(answer.status == 200, req,
            f"the Mailbox should accept the {result.event} message with 200, got {answer.brief()}")
    require(isinstance(answer.body, dict) and answer.body.get("resourceType") == "Bundle", req,
            f"the Mailbox reply should be a Bundle, got {answer.resource_type or answer.parse_error or 'nothing'}")
    require(result.reply_headers_count == 1, req,
            f"the Mailbox reply should hold exactly one MessageHeader, got {result.reply_headers_count}")


def check_reply(result: SendResult) -> None:
    header = result.reply_header or {}
    event = (header.get("event") or {}).get("code") if isinstance(header.get("event"), dict) else None
    require(event == result.event, "KT1-MSG-REPLY-ECHO",
            f"the reply's MessageHeader.event should echo {result.event!r}, got {event!r}")
    response = header.get("response") if isinstance(header.get("response"), dict) else {}
    require(response.get("identifier") == result.identifier, "KT1-MSG-REPLY-ECHO",
            f"reply response.identifier should be the request's identifier {result.identifier!r}, "
            f"got {response.get('identifier')!r}")
    require(response.get("code") == "ok", "KT1-MSG-REPLY-ECHO",
            f"reply response.code should be 'ok', got {response.get('code')!r}")
    refs = result.data_refs
    require(refs, "KT1-MSG-REPLY-DATA", "the reply's MessageHeader.data is empty")
    require(strip_history(refs[0]) == result.focal.url and version_of(refs[0]), "KT1-MSG-REPLY-DATA",
            f"reply data[0] should be the focal resource's own URL with its new version "
            f"({result.focal.url}/_history/<v>), got {refs[0]!r}")
    minted = result.minted_versions()
    for res in [result.focal, *result.others]:
        require(res.url in minted, "KT1-MSG-REPLY-DATA",
                f"the reply's data should give the new version of {res.url}; it lists {refs}")


def find_copy(actor: Kt1Application, result: SendResult) -> HeaderSummary | None:
    """The actor's copy of a sent message, found by its identifier (search filtered by patient and event)."""
    summary, answer = actor.find_with_answer(result.identifier, patient_url=sent_patient(result),
                                             event=result.event)
    if answer.status != 200:
        raise BenchError(f"the {actor.role} ({actor.app_id}) could not search its own mailbox: {answer.brief()}")
    return summary


def check_received(world: Kt1World, actor_name: str, result: SendResult) -> DeliveredMessage:
    actor = world.actor(actor_name)
    summary = find_copy(actor, result)
    own = sent_by(result) == actor.app_id
    precondition(summary is not None, "KT1-ROUTE-SENDER" if own else "KT1-ROUTE-SUBSCRIBED",
            f"the {actor_name} ({actor.app_id}) is subscribed to {result.event} but has no copy of message "
            f"{result.identifier} in its mailbox" + (" (it sent the message itself)" if own else ""))
    answer, message = actor.message(summary.entry_id)
    precondition(message is not None, "KT1-SEARCH-ID",
                 f"looking up {summary.entry_id} by _id should return the complete message, got {answer.brief()}")
    check_intact(result, message, "KT1-ROUTE-CONTENT")
    return message


def check_intact(result: SendResult, message: DeliveredMessage, req: str) -> None:
    """The delivered message is the sent one: header fields, every resource, focal reference, versions.

    A judgment of `req` in scenarios that carry it, a precondition elsewhere (ktbench.core.requirements)."""
    precondition(message.event == result.event, req, f"delivered event {message.event!r}, sent {result.event!r}")
    precondition(message.identifier == result.identifier, req,
            f"delivered MessageHeader.identifier {message.identifier!r}, sent {result.identifier!r}")
    patient = sent_patient(result)
    if patient:
        precondition(message.patient == patient, req,
                f"delivered MessageHeader#Patient {message.patient!r}, sent {patient!r}")
    precondition(message.ack_url and version_of(message.ack_url), req,
            f"the delivered MessageHeader entry needs a versioned self link (the ack URL), got {message.ack_url!r}")
    focal_ref = message.focal_reference
    focal = message.focal
    precondition(focal is not None and strip_history(focal_ref or "") == result.focal.url, req,
            f"delivered data[0] {focal_ref!r} should reference the focal resource {result.focal.url}")
    precondition(focal.link == focal_ref, req,
            f"delivered data[0] {focal_ref!r} should equal the focal entry's self link {focal.link!r}")
    minted = result.minted_versions()
    for res in [result.focal, *result.others]:
        delivered = message.resource(res.url)
        precondition(delivered is not None, req, f"the delivered message lacks {res.rtype} {res.url}")
        problem = contains(res.content, delivered.content)
        precondition(problem is None, req, f"{res.rtype} {res.url} was changed on the way: {problem}")
        if res.url in minted:
            precondition(delivered.version == minted[res.url], req,
                    f"{res.url} was delivered at version {delivered.version!r}, but the Mailbox reply minted "
                    f"{minted[res.url]!r}")


def check_not_received(world: Kt1World, actor_name: str, result: SendResult, sender: Kt1Application) -> None:
    actor = world.actor(actor_name)
    req = "KT1-ROUTE-DOMAIN" if actor.creds.domain != sender.creds.domain else "KT1-ROUTE-UNSUBSCRIBED"
    summary = find_copy(actor, result)
    if summary is not None:
        why = ("it belongs to another domain" if req == "KT1-ROUTE-DOMAIN"
               else f"it is not subscribed to {result.event}")
        fail(req, f"the {actor_name} ({actor.app_id}) received {result.event} message {result.identifier} "
                  f"although {why}")


def mailbox_status(actor: Kt1Application, identifier: str, patient_url: str | None, req: str) -> HeaderSummary:
    summary = actor.find(identifier, patient_url=patient_url)
    require(summary is not None, req, f"message {identifier} is missing from the {actor.role}'s mailbox")
    return summary


def check_empty_claim(answer: Answer, message: DeliveredMessage | None, req: str = "KT1-CLAIM-EMPTY") -> None:
    """Nothing handed out (`req`: the rule that says why nothing may come), as a Bundle with "entry": []."""
    require(answer.status == 200, req, f"a claim with nothing to hand out should answer 200, got {answer.brief()}")
    body = answer.body if isinstance(answer.body, dict) else {}
    require(body.get("resourceType") == "Bundle", req, f"the claim answer should be a Bundle, got {answer.brief()}")
    require(message is None, req, f"expected no message, but the claim handed out {message.identifier if message else ''}"
                                  f" ({message.event if message else ''}, status {message.status if message else ''})")
    precondition("entry" in body and body.get("entry") == [], "KT1-CLAIM-EMPTY",
            "an empty claim answer must carry \"entry\": [] (the connector loops forever without it), got "
            + ("no entry key" if "entry" not in body else repr(body.get("entry"))[:80]))

"""Steps for the Conformance statement, JSON/XML representations and webhook notifications
(features/kt1/metadata.feature, representations.feature, webhook.feature).
"""

from __future__ import annotations

import time

import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.fhir.dstu1.constants import AUTHORIZE_PATH, FHIR_VERSION, OAUTH_URI_FAMILIES, TOKEN_PATH
from ktbench.fhir.dstu1.links import path_of
from simulators.kt1.actors.kt1_compose import compose, send_composed
from steps.kt1.checks import check_accepted, check_intact, find_copy
from ktbench.core.requirements import precondition, require
from steps.kt1.world import ACTOR, ACTOR_ROLES, Kt1World

WEBHOOK_WAIT_SECONDS = 5.0


def _same_entries(a: dict, b: dict) -> str | None:
    """None when two bundles carry the same entries (ids, links, contents), else what differs."""
    ea, eb = a.get("entry") or [], b.get("entry") or []
    if len(ea) != len(eb):
        return f"{len(ea)} entries vs {len(eb)}"
    for i, (x, y) in enumerate(zip(ea, eb)):
        for key in ("id", "link", "content"):
            if x.get(key) != y.get(key):
                return f"entry[{i}].{key} differs"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Conformance statement
# ---------------------------------------------------------------------------------------------------------------
@when(parsers.re(rf"the {ACTOR} reads the Conformance statement(?P<xml> as XML)?"))
def _(actor: str, xml: str | None, kt1: Kt1World) -> None:
    kt1.answers = [kt1.actor(actor).metadata(fmt="xml" if xml else "json")]


@then("the statement is Koppeltaal's, for FHIR DSTU1 0.0.82, with its REST description as an array")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    body = answer.body if isinstance(answer.body, dict) else {}
    require(answer.status == 200 and body.get("resourceType") == "Conformance", "KT1-META-CONFORMANCE",
            f"metadata should answer 200 with a Conformance resource, got {answer.brief()}")
    require(body.get("fhirVersion") == FHIR_VERSION, "KT1-META-CONFORMANCE",
            f"fhirVersion must be {FHIR_VERSION!r}, got {body.get('fhirVersion')!r}")
    require(body.get("name") == "Koppeltaal", "KT1-META-CONFORMANCE", f"name must be 'Koppeltaal', got {body.get('name')!r}")
    version = body.get("version")
    require(isinstance(version, str) and version >= "v1.0", "KT1-META-CONFORMANCE",
            f"version must be a string that sorts at or after 'v1.0' (the connector compares strings), got {version!r}")
    require(isinstance(body.get("rest"), list) and body["rest"], "KT1-META-CONFORMANCE",
            "rest must be a non-empty array (clients read rest[0])")


@then("the statement points to the server's own OAuth authorize and token endpoints")
def _(kt1: Kt1World) -> None:
    body = kt1.answers[-1].body if isinstance(kt1.answers[-1].body, dict) else {}
    rest = body.get("rest") if isinstance(body.get("rest"), list) else []
    exts = ((rest[0] if rest else {}).get("security") or {}).get("extension") or []
    uris = {e.get("url"): e.get("valueUri") for e in exts if isinstance(e, dict)}
    family = OAUTH_URI_FAMILIES[0]
    for kind, path in (("authorize", AUTHORIZE_PATH), ("token", TOKEN_PATH)):
        uri = uris.get(f"{family}#{kind}")
        require(isinstance(uri, str) and path_of(uri).rstrip("/") == path, "KT1-META-OAUTH-URIS",
                f"{family}#{kind} should point to this server's {path}, got {uri!r}")


@then("the answer is labelled application/json")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.content_type.lower().startswith("application/json"), "KT1-META-JSON-CONTENT-TYPE",
            f"JSON answers must be labelled application/json (the Python connector refuses "
            f"application/fhir+json), got {answer.content_type!r}")


@when(parsers.re(r"the module (?P<what>searches its mailbox|claims a message|lists the ActivityDefinitions) in JSON"))
def _(what: str, kt1: Kt1World) -> None:
    module = kt1.module
    if what == "searches its mailbox":
        kt1.answers = [module.search(patient_url=kt1.patient.url)]
    elif what == "claims a message":
        kt1.answers = [module.claim(kt1.patient.url)[0]]
    else:
        kt1.answers = [module.activities()[0]]


# ---------------------------------------------------------------------------------------------------------------
# XML
# ---------------------------------------------------------------------------------------------------------------
def _require_xml(kt1: Kt1World, answer, req: str, what: str) -> None:
    require(answer.is_xml, req, f"{what} asked for XML (Accept: application/xml) but got {answer.content_type!r}")
    require(answer.parse_error is None and isinstance(answer.body, dict), req,
            f"{what}: the XML answer cannot be read: {answer.parse_error}")


@then("the answer is an XML Conformance statement for FHIR DSTU1 0.0.82")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.status == 200, "KT1-FMT-XML", f"metadata as XML should answer 200, got {answer.brief()}")
    _require_xml(kt1, answer, "KT1-FMT-XML", "metadata")
    require(answer.body.get("resourceType") == "Conformance" and answer.body.get("fhirVersion") == FHIR_VERSION,
            "KT1-FMT-XML", f"expected <Conformance> with fhirVersion {FHIR_VERSION}, got "
                           f"{answer.body.get('resourceType')!r} {answer.body.get('fhirVersion')!r}")


@when(parsers.re(rf"the {ACTOR} sends an? (?P<event>[A-Za-z]+) message about the patient as XML"))
def _(actor: str, event: str, kt1: Kt1World) -> None:
    sender = kt1.actor(actor)
    composed = compose(sender, event, kt1.people, kt1.need(kt1.patient, "a patient"))
    kt1.remember(event, send_composed(sender, composed, fmt="xml"))
    kt1.last_sender = actor


@then("the server accepts the message and answers in XML")
def _(kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "a sent message")
    _require_xml(kt1, result.answer, "KT1-FMT-XML-MAILBOX", "the Mailbox reply")
    check_accepted(result, "KT1-FMT-XML-MAILBOX")


@then(parsers.re(rf"the {ACTOR}'s copy read as XML has the same content as read as JSON"))
def _(actor: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "a sent message")
    reader = kt1.actor(actor)
    summary = find_copy(reader, result)
    precondition(summary is not None, "KT1-ROUTE-SUBSCRIBED", f"the {actor} has no copy of the message")
    as_json, json_message = reader.message(summary.entry_id, fmt="json")
    as_xml, xml_message = reader.message(summary.entry_id, fmt="xml")
    precondition(json_message is not None, "KT1-SEARCH-ID", f"the JSON lookup returned no message: {as_json.brief()}")
    check_intact(result, json_message, "KT1-ROUTE-CONTENT")
    _require_xml(kt1, as_xml, "KT1-FMT-XML-SAME", "the message lookup")
    require(xml_message is not None, "KT1-FMT-XML-SAME", "the XML answer holds no message")
    problem = _same_entries(as_json.body, as_xml.body)
    require(problem is None, "KT1-FMT-XML-SAME", f"the XML and JSON forms of the message differ: {problem}")


@when("the module claims its next new message for the patient as XML")
def _(kt1: Kt1World) -> None:
    kt1.claim_answer, kt1.claimed = kt1.module.claim(kt1.patient.url, fmt="xml")


@then("every message the server sent so far conforms to the KT1.3 profiles")
def _(kt_profile_check) -> None:
    """The live validation of this scenario's exchanges, judged now (KT1-PROFILE-EXCHANGE) by the run's policy."""
    kt_profile_check()


@then("the claim answer is XML")
def _(kt1: Kt1World) -> None:
    _require_xml(kt1, kt1.need(kt1.claim_answer, "a claim"), "KT1-FMT-XML-CLAIM", "the claim")


@when("the portal lists the ActivityDefinitions as XML")
def _(kt1: Kt1World) -> None:
    answer, entries = kt1.portal.activities(fmt="xml")
    kt1.answers = [answer]
    kt1.listed = entries


@then("the XML list holds the same ActivityDefinitions as the JSON list")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    _require_xml(kt1, answer, "KT1-FMT-XML", "Other/_search")
    _json_answer, json_entries = kt1.portal.activities()
    ids_xml = sorted(str(e.get("id")) for e in kt1.listed)
    ids_json = sorted(str(e.get("id")) for e in json_entries)
    require(ids_xml == ids_json, "KT1-FMT-XML", f"XML lists {ids_xml[:5]}..., JSON lists {ids_json[:5]}...")


# ---------------------------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------------------------
@given(parsers.re(rf"the target notifies the {ACTOR}'s webhook"))
def _(actor: str, kt1: Kt1World) -> None:
    role = ACTOR_ROLES[actor]
    if not kt1.options.webhook_receiver_url or kt1.options.webhook_role != role:
        pytest.skip(f"the target declares no webhook receiver for the {actor}: set "
                    f"{kt1.setting_key('webhook_receiver_url', 'webhook_role')} (= {role!r}), with the {actor}'s "
                    "webhook URL on the target pointing at that receiver (ktbench run wires one up for the "
                    "embedded server)")


def _notifications(kt1: Kt1World, identifier: str) -> list[dict]:
    url = kt1.options.webhook_receiver_url.rstrip("/") + "/received"
    response = kt1.http.request("GET", url, params={"identifier": identifier}, role="webhook-receiver")
    return response.json() if response.status_code == 200 else []


@then(parsers.re(rf"the {ACTOR}'s webhook is notified of the message with its event and the shared secret"))
def _(actor: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "a sent message")
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    notes: list[dict] = []
    while time.monotonic() < deadline:
        notes = _notifications(kt1, result.identifier)
        if notes:
            break
        time.sleep(0.05)
    require(notes, "KT1-HOOK-NOTIFY",
            f"the {actor}'s webhook was not called for message {result.identifier} within {WEBHOOK_WAIT_SECONDS:g} s")
    note = notes[0]
    require(note.get("method") == "POST", "KT1-HOOK-NOTIFY", f"the notification should be a POST, got {note.get('method')}")
    require(note.get("category") == result.event, "KT1-HOOK-NOTIFY",
            f"the Category header should name the event {result.event!r}, got {note.get('category')!r}")
    require(note.get("identifier") == result.identifier, "KT1-HOOK-NOTIFY",
            "the KoppeltaalMessageIdentifier header should carry the MessageHeader.identifier")
    require(note.get("secret_matches"), "KT1-HOOK-SECRET",
            f"the X-Koppeltaal-Secret header should carry the {actor}'s shared secret"
            + ("" if note.get("secret_present") else " (the header is missing)"))
    require(note.get("body_length") == 0, "KT1-HOOK-NOTIFY",
            f"a notification carries no data, only headers; got a body of {note.get('body_length')} bytes")


@then(parsers.re(rf"the {ACTOR} claims the announced message"))
def _(actor: str, kt1: Kt1World) -> None:
    result = kt1.need(kt1.last_send, "a sent message")
    answer, message = kt1.actor(actor).claim(kt1.patient.url, result.event)
    require(message is not None and message.identifier == result.identifier, "KT1-HOOK-NOTIFY",
            f"the announced message {result.identifier} should be waiting in the {actor}'s mailbox, got "
            f"{message.identifier if message else answer.brief()}")

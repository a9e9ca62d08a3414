"""KT1 server: JSON and DSTU1 XML on every endpoint, and CORS for browser clients (kt1-protocol §1, §2.3, §6, §9.1-2).

JSON answers are exactly `application/json; charset=utf-8` (the Python
connector refuses anything else, `application/fhir+json` included), errors
too.  XML is chosen by `Accept`, by `_format`, or — without a preference — by
the request body's `Content-Type`; bundles are Atom feeds.
"""

from __future__ import annotations

import pytest
from kt1_builders import Kt1World, ack_body, activity_definition
from kt1_support import (  # noqa: F401
    AUTHORIZE,
    JSON_CT,
    LAUNCH,
    MAILBOX,
    METADATA,
    MH,
    MH_SEARCH,
    MOBILE_LAUNCH,
    OTHER,
    OTHER_SEARCH,
    TEXT_WRONG_VERSION,
    TOKEN,
    kt1,
    self_link,
)
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

xmlcodec = pytest.importorskip("ktbench.fhir.dstu1.xmlcodec", reason="the DSTU1 XML codec is not available yet")
parse_xml, to_xml = xmlcodec.parse_xml, xmlcodec.to_xml

XML = {"Accept": "application/xml"}
XML_BODY = {"Content-Type": "application/xml", "Accept": "application/xml"}
ATOM_FEED = b'<feed xmlns="http://www.w3.org/2005/Atom"'


def _root(response) -> bytes:
    """The document's first element start (after the XML declaration)."""
    text = response.content.lstrip()
    if text.startswith(b"<?xml"):
        text = text[text.index(b"?>") + 2:].lstrip()
    return text


def _is_xml(response) -> None:
    assert response.headers["content-type"] == "application/xml; charset=utf-8", response.headers["content-type"]
    assert b"Traceback" not in response.content


# -- JSON content type everywhere -----------------------------------------------------------------
def _json_exchanges(kt1):
    """(name, response) for one request to every endpoint, successes and errors alike."""
    world = Kt1World(seed=90)
    careplan, patient, practitioner, related = world.careplan_set()
    out = []
    out.append(("metadata", kt1.request("GET", METADATA, None)))
    out.append(("Other search", kt1.request("GET", OTHER_SEARCH, params={"code": "ActivityDefinition"})))
    created = kt1.request("POST", OTHER, json=activity_definition("fmt-1"))
    out.append(("Other create (201)", created))
    out.append(("Other update", kt1.request("PUT", created.headers["content-location"],
                                            json=activity_definition("fmt-1", "Renamed"))))
    out.append(("Mailbox accept", kt1.post_message(world.careplan_message(careplan, patient, practitioner,
                                                                          related))))
    out.append(("Mailbox 409", kt1.post_message(world.careplan_message(careplan, patient, practitioner))))
    claim = kt1.claim("module")
    out.append(("claim", claim))
    entry = claim.json()["entry"][0]
    out.append(("claim empty", kt1.claim("module")))
    out.append(("summary", kt1.request("GET", MH_SEARCH, "module", params={"_summary": "true"})))
    out.append(("_id", kt1.request("GET", MH_SEARCH, "module", params={"_id": entry["id"]})))
    out.append(("ack", kt1.request("PUT", self_link(entry), "module", json=ack_body(entry["content"], "Success"))))
    out.append(("401", kt1.request("GET", MH_SEARCH, None)))
    out.append(("404 path", kt1.request("GET", "/FHIR/Koppeltaal/Nothing/here/at/all", "portal")))
    out.append(("404 elsewhere", kt1.request("GET", "/nowhere", None)))
    out.append(("405", kt1.request("DELETE", MAILBOX, "portal")))
    out.append(("mobile launch", kt1.request("GET", MOBILE_LAUNCH, "portal", params={
        "client_id": "ktbench-module", "patient": patient.url, "user": practitioner.url})))
    out.append(("authorize error", kt1.request("GET", AUTHORIZE, None, params={"response_type": "token"})))
    out.append(("token error", kt1.request("GET", TOKEN, None, params={"grant_type": "authorization_code",
                                                                        "code": "nope"})))
    return out


def test_every_json_answer_is_application_json_utf8(kt1):
    exchanges = _json_exchanges(kt1)
    statuses = {name: r.status_code for name, r in exchanges}
    assert statuses["Other create (201)"] == 201 and statuses["Mailbox 409"] == 409 and statuses["405"] == 405
    for name, response in exchanges:
        assert response.headers.get("content-type") == JSON_CT, name
        assert response.status_code < 500, name
        assert response.json() is not None, name


def test_a_fhir_json_accept_header_still_gets_json(kt1):
    response = kt1.request("GET", METADATA, None, headers={"Accept": "application/json+fhir"})
    assert response.headers["content-type"] == JSON_CT


# -- XML ------------------------------------------------------------------------------------------
def test_metadata_in_xml(kt1):
    response = kt1.request("GET", METADATA, None, headers=XML)
    _is_xml(response)
    assert _root(response).startswith(b'<Conformance xmlns="http://hl7.org/fhir"')
    as_json = parse_xml(response.content)
    assert as_json["name"] == "Koppeltaal" and as_json["fhirVersion"] == "0.0.82"
    assert as_json["rest"][0]["security"]["extension"] == kt1.request("GET", METADATA, None).json()[
        "rest"][0]["security"]["extension"]


@pytest.mark.parametrize("how", [{"headers": XML}, {"params": {"_format": "xml"}},
                                 {"headers": {"Accept": "application/xml+fhir, application/json;q=0.5"}}],
                         ids=["Accept", "_format", "Accept with both"])
def test_activity_list_as_an_atom_feed(kt1, how):
    params = {"code": "ActivityDefinition", **how.get("params", {})}
    response = kt1.request("GET", OTHER_SEARCH, params=params, headers=how.get("headers"))
    _is_xml(response)
    assert _root(response).startswith(ATOM_FEED)
    feed = parse_xml(response.content)
    plain = kt1.request("GET", OTHER_SEARCH, params={"code": "ActivityDefinition"}).json()
    assert [e["id"] for e in feed["entry"]] == [e["id"] for e in plain["entry"]]
    assert [e["content"] for e in feed["entry"]] == [e["content"] for e in plain["entry"]]


def test_empty_claim_in_xml_is_a_feed_without_entries(kt1):
    response = kt1.request("GET", MH_SEARCH, "module", params={"_query": "MessageHeader.GetNextNewAndClaim"},
                           headers=XML)
    _is_xml(response)
    assert _root(response).startswith(ATOM_FEED)
    assert parse_xml(response.content)["entry"] == []


def test_mailbox_post_in_xml_gets_an_xml_reply(kt1):
    world = Kt1World(seed=91)
    careplan, patient, practitioner, related = world.careplan_set()
    bundle = world.careplan_message(careplan, patient, practitioner, related)
    response = kt1.request("POST", MAILBOX, "portal", content=to_xml(bundle), headers=XML_BODY)
    assert response.status_code == 200, response.text
    _is_xml(response)
    reply = parse_xml(response.content)
    header = reply["entry"][0]["content"]
    assert header["response"] == {"identifier": bundle["entry"][0]["content"]["identifier"], "code": "ok"}
    assert [d["reference"].split("/_history/")[0] for d in header["data"]] == [
        careplan.url, patient.url, practitioner.url, related.url]


def test_xml_body_without_accept_preference_gets_xml(kt1):
    world = Kt1World(seed=92)
    bundle = world.patient_message(world.patient())
    response = kt1.request("POST", MAILBOX, "portal", content=to_xml(bundle),
                           headers={"Content-Type": "application/xml", "Accept": "*/*"})
    assert response.status_code == 200
    _is_xml(response)


def test_xml_body_with_json_accept_gets_json(kt1):
    world = Kt1World(seed=93)
    bundle = world.patient_message(world.patient())
    response = kt1.request("POST", MAILBOX, "portal", content=to_xml(bundle),
                           headers={"Content-Type": "application/xml", "Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CT
    assert response.json()["entry"][0]["content"]["response"]["code"] == "ok"


def test_xml_and_json_messages_are_stored_alike(kt1):
    world = Kt1World(seed=94)
    careplan, patient, practitioner, related = world.careplan_set()
    kt1.request("POST", MAILBOX, "portal", content=to_xml(world.careplan_message(
        careplan, patient, practitioner, related)), headers=XML_BODY)
    entry = kt1.summary("module")["entry"][0]
    delivered = kt1.request("GET", MH_SEARCH, "module", params={"_id": entry["id"]}).json()
    assert [e["content"] for e in delivered["entry"][1:]] == [careplan.content, patient.content,
                                                              practitioner.content, related.content]
    as_xml = kt1.request("GET", MH_SEARCH, "module", params={"_id": entry["id"]}, headers=XML)
    _is_xml(as_xml)
    assert parse_xml(as_xml.content)["entry"] == delivered["entry"]


def test_version_conflict_in_xml_is_an_operation_outcome(kt1):
    world = Kt1World(seed=95)
    patient = world.patient()
    patient.version = "2000-01-01T00:00:00:000.0000"
    response = kt1.request("POST", MAILBOX, "portal", content=to_xml(world.patient_message(patient)),
                           headers=XML_BODY)
    assert response.status_code == 409
    _is_xml(response)
    assert _root(response).startswith(b'<OperationOutcome xmlns="http://hl7.org/fhir"')
    assert [i["details"] for i in parse_xml(response.content)["issue"]] == [TEXT_WRONG_VERSION]


def test_ack_put_in_xml(kt1):
    world = Kt1World(seed=96)
    kt1.send(world.careplan_message(*world.careplan_set()))
    entry = kt1.claimed("module")["entry"][0]
    body = to_xml(ack_body(entry["content"], "Failed", "Could not parse"))
    response = kt1.request("PUT", self_link(entry), "module", content=body, headers=XML_BODY)
    assert response.status_code == 200, response.text
    _is_xml(response)
    from kt1_builders import processing_status
    state = processing_status(kt1.headers_of("module")[0])
    assert (state["status"], state["exception"]) == ("Failed", "Could not parse")


def test_activity_definition_create_in_xml(kt1):
    response = kt1.request("POST", OTHER, "portal", content=to_xml(activity_definition("xml-ad")), headers=XML_BODY)
    assert response.status_code == 201, response.text
    _is_xml(response)
    assert "/FHIR/Koppeltaal/Other/ActivityDefinition:" in response.headers["content-location"]
    assert _root(response).startswith(b'<Other xmlns="http://hl7.org/fhir"')


def test_auth_error_in_xml(kt1):
    response = kt1.request("GET", MH_SEARCH, None, headers=XML)
    assert response.status_code == 401
    _is_xml(response)
    assert parse_xml(response.content)["resourceType"] == "OperationOutcome"


# -- CORS -----------------------------------------------------------------------------------------
ORIGIN = "https://game.example.net"


@pytest.mark.parametrize("path, method", [(MAILBOX, "POST"), (MH_SEARCH, "GET"), (MH + "/1", "PUT"),
                                          (METADATA, "GET"), (TOKEN, "GET"), (AUTHORIZE, "GET"),
                                          (OTHER_SEARCH, "GET")])
def test_preflight_allows_the_authorization_header(kt1, path, method):
    response = kt1.request("OPTIONS", path, None, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert method in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_cors_headers_on_answers_and_errors(kt1):
    ok = kt1.request("GET", MH_SEARCH, "module", params={"_summary": "true"}, headers={"Origin": ORIGIN})
    refused = kt1.request("GET", MH_SEARCH, None, headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    for response in (ok, refused):
        assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)


def test_cors_exposes_content_location(kt1):
    response = kt1.request("POST", OTHER, json=activity_definition("cors-ad"), headers={"Origin": ORIGIN})
    assert response.status_code == 201
    assert "content-location" in response.headers["access-control-expose-headers"].lower()

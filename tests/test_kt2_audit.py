"""AuditEvents of every REST interaction, of token requests, and the trace headers (KT2-AUDIT-*, KT2-TRACE-*)."""

from __future__ import annotations

import base64
import re
import uuid

from kt2_support import (  # noqa: F401
    ALPHA,
    KT,
    client_audit_event,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    request_id,
    updated,
)

from ktbench.validation import validate_resource

UUID = re.compile(r"^[0-9a-f-]{36}$")


def _events(kt2, request_id: str) -> list[dict]:
    return kt2.audit_events(requestId=request_id)


def _one(kt2, request_id: str) -> dict:
    events = _events(kt2, request_id)
    assert len(events) == 1, events
    result = validate_resource(events[0], kt=2)
    assert result.ok, result.to_text()
    return events[0]


def _ext(event: dict, name: str) -> str | None:
    for ext in event.get("extension", []):
        if ext["url"] == KT + name:
            return ext.get("valueId") or ext.get("valueReference", {}).get("reference")
    return None


def test_create_event_has_the_reference_shape(kt2):
    rid = uuid.uuid4().hex
    created = kt2.post("alpha-portal", "Patient", patient(),
                       **{"X-Request-Id": rid, "X-Trace-Id": "trace-" + rid, "X-Correlation-Id": "corr-" + rid}).json()
    event = _one(kt2, rid)
    assert event["meta"]["profile"] == [KT + "KT2AuditEvent"]
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
                             "display": "RESTful Operation"}
    assert event["subtype"] == [{"system": "http://hl7.org/fhir/restful-interaction", "code": "create",
                                 "display": "create"}]
    assert event["action"] == "C" and event["outcome"] == "0"
    agent = event["agent"][0]
    assert agent["who"]["reference"] == "Device/alpha-portal" and agent["requestor"] is True
    assert agent["type"]["coding"][0] == {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153",
                                          "display": "Source Role ID"}
    assert event["source"]["site"] == "127.0.0.1"
    assert event["source"]["observer"]["reference"] == f"Device/ktbench-voorziening-{ALPHA}"
    assert _ext(event, "resource-origin") == "Device/alpha-portal"
    assert (_ext(event, "request-id"), _ext(event, "trace-id"), _ext(event, "correlation-id")) == \
        (rid, "trace-" + rid, "corr-" + rid)
    assert event["entity"][0]["what"]["reference"] == f"Patient/{created['id']}/_history/1"
    assert event["entity"][0]["type"]["code"] == "Patient"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", event["recorded"])


def test_every_interaction_is_logged_with_its_action(kt2):
    created = kt2.create("alpha-portal", patient())
    path = f"Patient/{created['id']}"
    calls = {
        "read": ("R", lambda h: kt2.get("alpha-portal", path, headers=h)),
        "vread": ("R", lambda h: kt2.get("alpha-portal", f"{path}/_history/1", headers=h)),
        "update": ("U", lambda h: kt2.put("alpha-portal", path, updated(created, active=False), version="1", **h)),
        "history-instance": ("R", lambda h: kt2.get("alpha-portal", f"{path}/_history", headers=h)),
        "history-type": ("R", lambda h: kt2.get("alpha-portal", "Patient/_history?_count=1", headers=h)),
        "search-type": ("E", lambda h: kt2.get("alpha-portal", f"Patient?_id={created['id']}", headers=h)),
        "delete": ("D", lambda h: kt2.delete("alpha-portal", path, **h)),
        "capabilities": ("R", lambda h: kt2.http.get(f"{kt2.base()}/metadata", headers=h)),
    }
    for interaction, (action, call) in calls.items():
        rid = uuid.uuid4().hex
        assert call({"X-Request-Id": rid}).status_code == 200, interaction
        event = _one(kt2, rid)
        assert event["subtype"][0]["code"] == interaction
        assert event["action"] == action, interaction
        assert event["outcome"] == "0"
        if interaction == "delete":
            assert "what" not in event["entity"][0]
        if interaction == "capabilities":
            assert "reference" not in event["agent"][0]["who"]


def test_search_event_has_the_query_and_every_hit(kt2):
    family = f"Q{uuid.uuid4().hex[:8]}"
    ids = {kt2.create("alpha-portal", patient(family=family))["id"] for _ in range(2)}
    rid = uuid.uuid4().hex
    kt2.get("alpha-portal", f"Patient?family={family}", headers={"X-Request-Id": rid})
    event = _one(kt2, rid)
    query = event["entity"][0]
    assert query["role"]["code"] == "24" and query["type"]["code"] == "Patient"
    assert base64.b64decode(query["query"]).decode() == f"/Patient?family={family}"
    assert {e["what"]["reference"].split("/")[1] for e in event["entity"][1:]} == ids


def test_refusals_are_logged_with_outcome_4_and_an_operation_outcome_entity(kt2):
    rid = uuid.uuid4().hex
    assert kt2.get("alpha-portal", "Patient/does-not-exist", headers={"X-Request-Id": rid}).status_code == 404
    event = _one(kt2, rid)
    assert event["outcome"] == "4" and "not known" in event["outcomeDesc"]
    assert any(e["type"]["code"] == "OperationOutcome" and "what" not in e for e in event["entity"])
    rid = uuid.uuid4().hex
    assert kt2.http.get(f"{kt2.base()}/Patient", headers={"X-Request-Id": rid}).status_code == 401
    unauthenticated = _one(kt2, rid)
    assert unauthenticated["outcome"] == "4" and "reference" not in unauthenticated["agent"][0]["who"]


def test_server_errors_are_logged_with_outcome_8(make_kt2):
    with make_kt2(faults=("validation-error-500",)) as k:
        rid = uuid.uuid4().hex
        body = patient()
        body.pop("identifier")
        assert k.post("alpha-portal", "Patient", body, **{"X-Request-Id": rid}).status_code == 500
        assert k.audit_events(requestId=rid)[0]["outcome"] == "8"


def test_token_requests_write_user_authentication_events(kt2):
    with request_id(kt2.http) as rid:
        assert kt2.request_token("alpha-epd").status_code == 200
    event = _one(kt2, rid)
    assert event["type"]["code"] == "110114" and event["subtype"][0]["code"] == "110122"
    assert event["outcome"] == "0" and event["outcomeDesc"].startswith("token: ")
    assert event["agent"][0]["who"]["reference"] == "Device/alpha-epd"
    with request_id(kt2.http) as rid:
        assert kt2.request_token("alpha-maintenance").status_code == 401
    failed = _one(kt2, rid)
    assert failed["outcome"] == "8" and "alpha-maintenance" in failed["outcomeDesc"]
    assert "eyJ" not in failed["outcomeDesc"]   # never the assertion itself


def test_applications_may_create_audit_events(kt2):
    answer = kt2.post("alpha-module", "AuditEvent", client_audit_event())
    assert answer.status_code == 201, answer.text
    assert _ext(answer.json(), "resource-origin") == "Device/alpha-module"


def test_trace_headers_on_every_answer(kt2):
    minted = kt2.http.get(f"{kt2.base()}/metadata")
    assert UUID.match(minted.headers["x-request-id"]) and UUID.match(minted.headers["x-trace-id"])
    assert "x-correlation-id" not in minted.headers
    echoed = kt2.http.get(f"{kt2.base()}/metadata", headers={"X-Request-Id": "req-1", "X-Trace-Id": "trace-1",
                                                              "X-Correlation-Id": "corr-1"})
    assert (echoed.headers["x-request-id"], echoed.headers["x-trace-id"], echoed.headers["x-correlation-id"]) == \
        ("req-1", "trace-1", "corr-1")
    unusable = kt2.http.get(f"{kt2.base()}/metadata", headers={"X-Request-Id": "has spaces and_underscores"})
    assert UUID.match(unusable.headers["x-request-id"])
    token = kt2.http.post(kt2.token_url(), data={"grant_type": "x"}, headers={"X-Request-Id": "req-2"})
    assert token.headers["x-request-id"] == "req-2" and token.headers["x-trace-id"]

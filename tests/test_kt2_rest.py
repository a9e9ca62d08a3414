"""KT2 REST basics over real sockets: create/read/vread/update/delete/_history, Prefer, Location, ETag, 410,
_cascade=delete, server-assigned ids and the OperationOutcome shape of errors (KT2-REST-*)."""

from __future__ import annotations

import re
import uuid

from kt2_support import (  # noqa: F401
    ALPHA,
    FHIR_JSON,
    activity_definition,
    careteam,
    endpoint,
    issues,
    jwks_host,
    kt2,
    no_unhandled_errors,
    patient,
    practitioner,
    task,
    updated,
)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_create_answers_201_with_location_etag_and_the_stored_resource(kt2):
    answer = kt2.post("alpha-portal", "Patient", patient())
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert UUID4.match(body["id"])
    assert answer.headers["location"] == f"{kt2.base()}/Patient/{body['id']}/_history/1"
    assert answer.headers["etag"] == 'W/"1"'
    assert "GMT" in answer.headers["last-modified"]
    assert answer.headers["content-type"] == "application/fhir+json; charset=utf-8"
    assert body["meta"]["versionId"] == "1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", body["meta"]["lastUpdated"])
    assert body["meta"]["profile"] == ["http://koppeltaal.nl/fhir/StructureDefinition/KT2Patient"]


def test_client_supplied_id_on_post_is_replaced(kt2):
    body = kt2.create("alpha-portal", {**patient(), "id": "my-own-id"})
    assert body["id"] != "my-own-id" and UUID4.match(body["id"])
    assert kt2.get("alpha-portal", "Patient/my-own-id").status_code == 404


def test_prefer_return_minimal_and_operation_outcome(kt2):
    minimal = kt2.post("alpha-portal", "Patient", patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["location"].endswith("/_history/1")
    outcome = kt2.post("alpha-portal", "Patient", patient(), Prefer="return=OperationOutcome")
    assert outcome.status_code == 201 and outcome.json()["resourceType"] == "OperationOutcome"
    full = kt2.post("alpha-portal", "Patient", patient(), Prefer="return=representation")
    assert full.json()["resourceType"] == "Patient"


def test_read_vread_and_update(kt2):
    created = kt2.create("alpha-portal", patient())
    path = f"Patient/{created['id']}"
    read = kt2.get("alpha-portal", path)
    assert read.status_code == 200 and read.json() == created and read.headers["etag"] == 'W/"1"'
    changed = updated(created, active=False)
    answer = kt2.put("alpha-portal", path, changed, version="1")
    assert answer.status_code == 200, answer.text
    assert answer.headers["etag"] == 'W/"2"' and answer.json()["meta"]["versionId"] == "2"
    assert answer.json()["active"] is False
    assert kt2.get("alpha-portal", f"{path}/_history/1").json()["active"] is True
    assert kt2.get("alpha-portal", f"{path}/_history/2").json()["active"] is False
    assert kt2.get("alpha-portal", f"{path}/_history/3").status_code == 404


def test_delete_gone_history_and_vread_after_delete(kt2):
    created = kt2.create("alpha-portal", patient())
    path = f"Patient/{created['id']}"
    answer = kt2.delete("alpha-portal", path)
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "OperationOutcome"
    gone = kt2.get("alpha-portal", path)
    assert gone.status_code == 410 and issues(gone)[0]["code"] == "deleted"
    assert kt2.get("alpha-portal", f"{path}/_history/1").status_code == 200
    assert kt2.get("alpha-portal", f"{path}/_history/2").status_code == 410
    history = kt2.get("alpha-portal", f"{path}/_history").json()
    assert history["type"] == "history" and history["total"] == 2
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    assert kt2.put("alpha-portal", path, created, version="1").status_code == 410
    again = kt2.delete("alpha-portal", path)
    assert again.status_code == 200 and "already deleted" in issues(again)[0]["diagnostics"]


def test_type_history_lists_versions_of_the_type(kt2):
    created = kt2.create("alpha-portal", careteam(kt2.create("alpha-portal", patient())["id"]))
    kt2.put("alpha-portal", f"CareTeam/{created['id']}", updated(created, status="inactive"), version="1")
    history = kt2.get("alpha-portal", "CareTeam/_history", params={"_count": "2"}).json()
    assert history["type"] == "history"
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"', 'W/"1"']
    assert history["total"] >= 2
    first = kt2.get("alpha-portal", "CareTeam/_history", params={"_count": "1"}).json()
    assert len(first["entry"]) == 1 and first["entry"][0]["response"]["etag"] == 'W/"2"'
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith(f"{kt2.base()}/CareTeam/_history?") and "_offset=1" in next_url
    second = kt2.http.get(next_url, headers=kt2.headers("alpha-portal")).json()
    assert second["entry"][0]["response"]["etag"] == 'W/"1"'
    assert second["entry"][0]["fullUrl"] == f"{kt2.base()}/CareTeam/{created['id']}"


def test_put_to_unknown_id_is_404_clients_cannot_choose_ids(kt2):
    body = {**patient(), "id": str(uuid.uuid4())}
    answer = kt2.put("alpha-portal", f"Patient/{body['id']}", body, version="1")
    assert answer.status_code == 404
    assert "cannot choose ids" in issues(answer)[0]["diagnostics"]


def test_put_with_id_mismatch_is_400(kt2):
    created = kt2.create("alpha-portal", patient())
    answer = kt2.put("alpha-portal", f"Patient/{created['id']}", updated(created, id="other"), version="1")
    assert answer.status_code == 400
    assert issues(answer)[0]["expression"] == ["Patient.id"]


def test_delete_referenced_is_409_naming_the_referrers_and_cascade_deletes(kt2):
    world = kt2.world()
    patient_path = f"Patient/{world['patient']['id']}"
    refused = kt2.delete("alpha-portal", patient_path)
    assert refused.status_code == 409
    assert f"Task/{world['task']['id']}" in issues(refused)[0]["diagnostics"]
    assert kt2.get("alpha-portal", patient_path).status_code == 200
    cascade = kt2.delete("alpha-portal", patient_path + "?_cascade=delete")
    assert cascade.status_code == 200, cascade.text
    assert kt2.get("alpha-portal", patient_path).status_code == 410
    assert kt2.get("alpha-portal", f"Task/{world['task']['id']}").status_code == 410
    assert kt2.get("alpha-portal", f"Practitioner/{world['practitioner']['id']}").status_code == 200


def test_cascade_needs_delete_permission_on_every_referrer(kt2):
    """The module may delete its own Tasks (Task CD:OWN), not the portal's: a cascade that would delete the
    portal's sub-task is a 403 and deletes nothing."""
    world = kt2.world()
    own = kt2.create("alpha-module", task(world["patient"]["id"], world["definition"]["id"]))
    sub = kt2.create("alpha-portal", task(world["patient"]["id"], world["definition"]["id"], view=True,
                                          part_of=own["id"]))
    assert kt2.delete("alpha-module", f"Task/{own['id']}").status_code == 409
    answer = kt2.delete("alpha-module", f"Task/{own['id']}?_cascade=delete")
    assert answer.status_code == 403, answer.text
    assert issues(answer)[0]["code"] == "forbidden"
    assert f"Task/{sub['id']}" in issues(answer)[0]["diagnostics"]
    assert kt2.get("alpha-module", f"Task/{own['id']}").status_code == 200    # nothing deleted at all
    assert kt2.get("alpha-module", f"Task/{sub['id']}").status_code == 200
    assert kt2.delete("alpha-portal", f"Task/{own['id']}?_cascade=delete").status_code == 200   # CRUD:ALL may
    assert kt2.get("alpha-portal", f"Task/{sub['id']}").status_code == 410


def test_bad_cascade_value_is_400(kt2):
    created = kt2.create("alpha-portal", patient())
    assert kt2.delete("alpha-portal", f"Patient/{created['id']}?_cascade=yes").status_code == 400


def test_unknown_type_404_wrong_method_405_bad_id_400(kt2):
    assert kt2.get("alpha-portal", "Observation").status_code == 404
    answer = kt2.http.patch(f"{kt2.base()}/Patient/x", headers=kt2.headers("alpha-portal"))
    assert answer.status_code == 405 and issues(answer)[0]["code"] == "not-supported"
    assert kt2.http.delete(f"{kt2.base()}/Patient", headers=kt2.headers("alpha-portal")).status_code == 405
    assert kt2.get("alpha-portal", "Patient/bad$id").status_code == 400
    assert kt2.get("alpha-portal", "Patient/x/_history/abc").status_code == 400
    assert kt2.http.post(kt2.base(), headers=kt2.headers("alpha-portal")).status_code == 405
    assert kt2.get("alpha-portal", "Patient/x/y/z/w").status_code == 404
    assert kt2.http.get(kt2.url + "/nothing/here").status_code == 404


def test_unknown_domain_is_404_operation_outcome(kt2):
    answer = kt2.http.get(f"{kt2.url}/api/v1/no-such-domain/fhir/r4/Patient")
    assert answer.status_code == 404
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_audit_events_cannot_be_changed_or_deleted_405(kt2):
    kt2.create("alpha-portal", patient())
    kt2.services.audit.flush()
    event = kt2.search("alpha-beheer", "AuditEvent?_count=1")["entry"][0]["resource"]
    put = kt2.put("alpha-beheer", f"AuditEvent/{event['id']}", event, version="1")
    assert put.status_code == 405 and put.json()["resourceType"] == "OperationOutcome"
    delete = kt2.delete("alpha-beheer", f"AuditEvent/{event['id']}")
    assert delete.status_code == 405


def test_devices_are_written_by_the_voorziening_only(kt2):
    device = {"resourceType": "Device", "identifier": [
        {"system": "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id", "value": "x"}], "status": "active",
        "deviceName": [{"name": "x", "type": "user-friendly-name"}]}
    assert kt2.post("alpha-beheer", "Device", device).status_code == 403
    own = kt2.get("alpha-portal", "Device/alpha-portal")
    assert own.status_code == 200
    assert kt2.put("alpha-beheer", "Device/alpha-portal", own.json(), version="1").status_code == 403
    assert kt2.delete("alpha-beheer", "Device/alpha-portal").status_code == 403


def test_voorziening_device_exists_for_every_domain(kt2):
    for client, domain in (("alpha-portal", ALPHA), ("beta-portal", "ktbench-beta")):
        device = kt2.get(client, f"Device/ktbench-voorziening-{domain}").json()
        assert device["identifier"][0]["system"] == "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
        assert device["identifier"][0]["value"] == f"ktbench-voorziening-{domain}"


def test_media_type_415_and_406(kt2):
    base = kt2.base()
    token = kt2.headers("alpha-portal")
    assert kt2.http.post(f"{base}/Patient", content=b"{}",
                         headers={**token, "Content-Type": "application/xml"}).status_code == 415
    assert kt2.http.post(f"{base}/Patient", content=b"{}", headers=token).status_code == 415
    assert kt2.http.post(f"{base}/Patient", content=b"{}", headers={
        **token, "Content-Type": "application/fhir+json; fhirVersion=3.0"}).status_code == 415
    assert kt2.http.post(f"{base}/Patient", content=b"{}", headers={
        **token, "Content-Type": "application/fhir+json; charset=latin-1"}).status_code == 415
    ok = kt2.http.post(f"{base}/Patient", json=patient(), headers={
        **token, "Content-Type": "application/fhir+json; fhirVersion=4.0; charset=utf-8"})
    assert ok.status_code == 201
    assert kt2.http.get(f"{base}/Patient", headers={**token, "Accept": "application/fhir+xml"}).status_code == 406
    assert kt2.http.get(f"{base}/Patient", headers={**token, "Accept": "text/html"}).status_code == 406
    assert kt2.http.get(f"{base}/Patient?_format=xml", headers=token).status_code == 406
    for accept in ("*/*", "application/*", "application/json", "application/fhir+json;q=0.9, text/html"):
        assert kt2.http.get(f"{base}/Patient", headers={**token, "Accept": accept}).status_code == 200, accept
    assert kt2.http.get(f"{base}/Patient?_format=json", headers={**token, "Accept": "text/html"}).status_code == 200
    assert kt2.http.get(f"{base}/Patient", headers={
        **token, "Accept": "application/fhir+json; fhirVersion=3.0"}).status_code == 406
    assert kt2.http.get(f"{base}/Patient", headers={
        **token, "Accept": "application/fhir+json; fhirVersion=4.0"}).status_code == 200
    assert kt2.http.get(f"{base}/Patient", headers={**token, "Accept": "application/json;q=0"}).status_code == 406


def test_malformed_json_is_400_with_operation_outcome(kt2):
    answer = kt2.http.post(f"{kt2.base()}/Patient", content=b'{"resourceType": "Patient",',
                           headers={**kt2.headers("alpha-portal"), "Content-Type": FHIR_JSON})
    assert answer.status_code == 400
    assert "Malformed JSON" in issues(answer)[0]["diagnostics"]


def test_resource_type_must_match_the_url(kt2):
    answer = kt2.post("alpha-portal", "Patient", practitioner())
    assert answer.status_code == 400 and issues(answer)[0]["expression"] == ["resourceType"]


def test_task_world_round_trip(kt2):
    world = kt2.world()
    read = kt2.get("alpha-module", f"Task/{world['task']['id']}").json()
    read["status"] = "in-progress"
    answer = kt2.put("alpha-module", f"Task/{read['id']}", read, version=read["meta"]["versionId"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "in-progress"


def test_head_like_get_and_options_not_allowed(kt2):
    created = kt2.create("alpha-portal", patient())
    head = kt2.http.head(f"{kt2.base()}/Patient/{created['id']}", headers=kt2.headers("alpha-portal"))
    assert head.status_code == 200 and head.headers["etag"] == 'W/"1"' and head.content == b""
    assert kt2.http.request("OPTIONS", f"{kt2.base()}/Patient/{created['id']}",
                            headers=kt2.headers("alpha-portal")).status_code == 405

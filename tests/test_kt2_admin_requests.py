"""KT2 domain admin: connection requests, from filing to the decision (seed 001 §4.6, §5.3-5.6; KT2-ADMIN-
REQUEST-PENDING, -REQUEST-NOTIFY, -ACCEPT, -DEVICE, -REJECT)."""

from __future__ import annotations

import re
import uuid

import pytest
from kt2_admin_support import (  # noqa: F401
    EMAILS,
    JWKS,
    AdminHarness,
    admin,
    error_of,
    no_unhandled_errors,
    test_data,
)

from ktbench.validation import validate_resource

CLIENT_ID_SYSTEM = "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
ROLES = ["Behandelaarsportaal", "Clientportaal", "Zorg ondersteuning (EPD)", "eHealth Module", "Beheerportaal"]


# -- filing ------------------------------------------------------------------------------------------------
def test_filing_answers_201_pending_with_location(admin: AdminHarness) -> None:
    response = admin.file(name="Module test", redirect_uris=["https://module.example.test/cb"],
                          launch_url="https://module.example.test/launch")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["status_label"] == "In behandeling"
    assert uuid.UUID(body["id"]).version == 4
    assert response.headers["location"] == body["url"] == f"{admin.url}/kt2/mgmt/api/connection-requests/{body['id']}"
    assert body | {"id": "", "filed_at": "", "url": "", "page": ""} == {
        "id": "", "status": "pending", "status_label": "In behandeling", "application": "ktbench-module",
        "application_name": "ktbench eHealth module", "domain": "ktbench-alpha", "name": "Module test",
        "jwks_uri": JWKS, "redirect_uris": ["https://module.example.test/cb"],
        "launch_url": "https://module.example.test/launch", "filed_by": "vendor-admin", "filed_at": "",
        "decided_by": None, "decided_at": None, "role": None, "client_id": None, "reason": None,
        "instance_url": None, "url": "", "page": ""}
    again = admin.api("GET", f"/connection-requests/{body['id']}", "vendor-admin").json()
    assert again == body


def test_the_name_defaults_to_the_applications(admin: AdminHarness) -> None:
    assert admin.filed()["name"] == "ktbench eHealth module"
    assert admin.filed(name="   ")["name"] == "ktbench eHealth module"


def test_a_pending_request_registers_nothing(admin: AdminHarness) -> None:
    before = [r.client_id for r in admin.admin.instances("ktbench-alpha")]
    devices = dict(admin.fhir.resources)
    admin.filed()
    assert [r.client_id for r in admin.admin.instances("ktbench-alpha")] == before
    assert admin.fhir.resources == devices


BAD_FILINGS = [
    # (fields, status, words in the detail)
    ({"application": "no-such-app"}, 422, "unknown application"),
    ({"application": "ktbench-portal"}, 403, "do not administer"),        # the module admin's view
    ({"domain": "no-such-domain"}, 422, "unknown domain"),
    ({"domain": ...}, 422, "domain"),
    ({"application": ...}, 422, "application"),
    ({"jwks_uri": ...}, 422, "jwks_uri"),
    ({"jwks_uri": ""}, 422, "jwks_uri"),
    ({"jwks_uri": "module.example.test/jwks"}, 422, "absolute"),
    ({"jwks_uri": "/jwks.json"}, 422, "absolute"),
    ({"jwks_uri": "http://module.example.test/jwks"}, 422, "https"),
    ({"jwks_uri": "ftp://module.example.test/jwks"}, 422, "absolute"),
    ({"jwks_uri": "https://"}, 422, "host"),
    ({"jwks_uri": "https://user:secret@module.example.test/jwks"}, 422, "credentials"),
    ({"jwks_uri": "https://module.example.test/jwks#keys"}, 422, "fragment"),
    ({"jwks_uri": "https://module.example.test/a b"}, 422, "spaces"),
    ({"jwks_uri": "https://module.example.test:99999/jwks"}, 422, "valid URL"),
    ({"jwks_uri": "https://[::1/jwks"}, 422, "valid URL"),
    ({"jwks_uri": "https://module.example.test/" + "a" * 2100}, 422, "longer"),
    ({"jwks_uri": 42}, 422, "jwks_uri"),
    ({"jwks_uri": ["https://module.example.test/jwks"]}, 422, "jwks_uri"),
    ({"redirect_uris": "https://module.example.test/cb"}, 422, "redirect_uris"),
    ({"redirect_uris": ["/cb"]}, 422, "redirect_uris[0]"),
    ({"redirect_uris": ["https://module.example.test/cb", "module.example.test/cb"]}, 422, "redirect_uris[1]"),
    ({"redirect_uris": ["https://module.example.test/cb#x"]}, 422, "fragment"),
    ({"redirect_uris": [7]}, 422, "redirect_uris"),
    ({"redirect_uris": [f"https://module.example.test/{i}" for i in range(21)]}, 422, "more than 20"),
    ({"launch_url": "http://module.example.test/launch"}, 422, "https"),
    ({"launch_url": "launch"}, 422, "launch_url"),
    ({"launch_url": 1}, 422, "launch_url"),
    ({"name": 12}, 422, "name"),
    ({"name": "a" * 201}, 422, "longer than 200"),
    ({"name": "evil\u0000name"}, 422, "control characters"),
    ({"unknown_field": "x"}, 422, "unknown_field"),
    ({"jwks_url": JWKS}, 422, "jwks_url"),
]


@pytest.mark.parametrize("fields, status, words", BAD_FILINGS, ids=[str(i) for i in range(len(BAD_FILINGS))])
def test_filing_refusals(admin: AdminHarness, fields: dict, status: int, words: str) -> None:
    before = admin.snapshot()
    body = error_of(admin.file("module-admin", **fields), status)
    assert words in body["detail"], body
    assert admin.snapshot() == before


def test_http_jwks_and_launch_on_loopback_follow_the_switch(admin: AdminHarness) -> None:
    local = {"jwks_uri": "http://127.0.0.1:8080/jwks", "launch_url": "http://localhost:8080/launch"}
    assert admin.file(**local).status_code == 201                       # allow_loopback_http_jwks defaults on
    assert admin.file(jwks_uri="http://[::1]:8080/jwks").status_code == 201
    error_of(admin.file(jwks_uri="http://10.0.0.1/jwks"), 422)          # not loopback
    admin.use(test_data(allow_loopback_http_jwks=False))
    assert "https" in error_of(admin.file(jwks_uri=local["jwks_uri"]), 422)["detail"]
    assert "launch_url" in error_of(admin.file(launch_url=local["launch_url"]), 422)["detail"]
    assert admin.file(jwks_uri="https://127.0.0.1:8443/jwks").status_code == 201


def test_redirect_uris_may_be_http_and_are_deduplicated(admin: AdminHarness) -> None:
    body = admin.filed(redirect_uris=["http://localhost/cb", "https://a.example.test/cb", "http://localhost/cb"])
    assert body["redirect_uris"] == ["http://localhost/cb", "https://a.example.test/cb"]


# -- the e-mail to the domain's admins ---------------------------------------------------------------------
def test_filing_mails_exactly_the_domains_admins(admin: AdminHarness) -> None:
    filed = admin.filed(name="Module in alpha")
    mails = admin.admin.outbox.all()
    assert len(mails) == 1
    mail = mails[0]
    assert mail.subject == "Nieuwe connectieaanvraag voor domein ktbench-alpha op ktbench"
    assert set(mail.to) == {EMAILS["alpha-admin"], EMAILS["alpha-admin-2"]}
    for needle in (filed["id"], "Module in alpha", JWKS, "ktbench eHealth module", filed["page"]):
        assert needle in mail.body
    assert "Beste domeinbeheerder" in mail.body
    # both alpha admins read it over the API; nobody else gets it
    for who in ("alpha-admin", "alpha-admin-2"):
        got = admin.mails_to(who)
        assert [m["subject"] for m in got] == [mail.subject] and got[0]["to"] == sorted(mail.to)
        assert got[0]["body"] == mail.body and got[0]["sent_at"].endswith("Z")
    for who in ("beta-admin", "vendor-admin", "module-admin"):
        assert admin.mails_to(who) == []


def test_the_subject_names_the_domains_environment(admin: AdminHarness) -> None:
    raw_data = test_data()
    domains = tuple(d.model_copy(update={"environment": "acc21"}) if d.name == "ktbench-beta" else d
                    for d in raw_data.domains)
    admin.use(raw_data.model_copy(update={"domains": domains}))
    admin.filed(domain="ktbench-beta")
    subjects = [m.subject for m in admin.admin.outbox.all()]
    assert subjects == ["Nieuwe connectieaanvraag voor domein ktbench-beta op acc21"]
    assert [m.to for m in admin.admin.outbox.all()] == [(EMAILS["beta-admin"],)]


def test_outbox_limit_and_order(admin: AdminHarness) -> None:
    first, second = admin.filed(name="Eerste"), admin.filed(name="Tweede")
    mails = admin.mails_to("alpha-admin")
    assert [first["id"] in mails[1]["body"], second["id"] in mails[0]["body"]] == [True, True]  # newest first
    limited = admin.api("GET", "/outbox", "alpha-admin", params={"limit": "1"}).json()
    assert limited["total"] == 2 and len(limited["mails"]) == 1 and limited["address"] == EMAILS["alpha-admin"]
    for bad in ("0", "-1", "abc", "1001", "²"):
        error_of(admin.api("GET", "/outbox", "alpha-admin", params={"limit": bad}), 422)


# -- acceptance --------------------------------------------------------------------------------------------
def test_accepting_issues_a_client_id_and_an_active_instance(admin: AdminHarness) -> None:
    filed = admin.filed(redirect_uris=["https://module.example.test/cb"], launch_url="https://module.example.test/l")
    response = admin.accept(filed["id"], role="eHealth Module")
    assert response.status_code == 200, response.text
    body = response.json()
    client_id = body["client_id"]
    assert uuid.UUID(client_id).version == 4
    assert body["status"] == "accepted" and body["status_label"] == "Geaccepteerd"
    assert body["role"] == "eHealth Module" and body["decided_by"] == "alpha-admin" and body["decided_at"]
    instance = body["instance"]
    assert instance["client_id"] == client_id and instance["status"] == "active"
    assert instance["status_label"] == "Actief" and instance["role"] == "eHealth Module"
    record = admin.admin.instance("ktbench-alpha", client_id)
    assert record is not None
    assert (record.status, record.role, record.application, record.jwks_url, record.redirect_uris,
            record.launch_url) == ("active", "eHealth Module", "ktbench-module", JWKS,
                                   ("https://module.example.test/cb",), "https://module.example.test/l")
    assert admin.admin.instance("ktbench-beta", client_id) is None
    shown = admin.api("GET", f"/connection-requests/{filed['id']}", "vendor-admin").json()
    assert shown["status"] == "accepted" and shown["client_id"] == client_id
    detail = admin.api("GET", f"/instances/{client_id}", "alpha-admin").json()
    assert detail["connection_request"] == filed["id"] and detail["origin"] == "connection-request"
    assert detail["history"][0]["to"] == "active" and detail["history"][0]["by"] == "alpha-admin"


def test_acceptance_creates_a_valid_kt2_device(admin: AdminHarness) -> None:
    client_id = admin.accepted(name="Module Device")["client_id"]
    device = admin.fhir.device("ktbench-alpha", client_id)
    assert device is not None and device["id"] == client_id
    assert device["identifier"] == [{"system": CLIENT_ID_SYSTEM, "value": client_id}]
    assert device["status"] == "active"
    assert device["deviceName"] == [{"name": "Module Device", "type": "user-friendly-name"}]
    result = validate_resource(device, kt=2)
    assert result.ok and result.profiles == ["KT2Device"], result.to_text()
    assert [f for f in result.findings] == [], result.to_text()
    assert admin.fhir.device("ktbench-beta", client_id) is None


@pytest.mark.parametrize("role", ROLES)
def test_every_role_of_the_data_file_can_be_assigned(admin: AdminHarness, role: str) -> None:
    filed = admin.filed()
    body = admin.accept(filed["id"], role=role).json()
    assert admin.admin.instance("ktbench-alpha", body["client_id"]).role == role


@pytest.mark.parametrize("role", ["", "Admin", "ehealth module", "eHealth Module ", 5, None, ["eHealth Module"],
                                  {"name": "eHealth Module"}])
def test_accepting_needs_exactly_one_known_role(admin: AdminHarness, role) -> None:
    filed = admin.filed()
    before = admin.snapshot()
    error_of(admin.api("POST", f"/connection-requests/{filed['id']}/accept", "alpha-admin", json={"role": role}), 422)
    error_of(admin.api("POST", f"/connection-requests/{filed['id']}/accept", "alpha-admin", json={}), 422)
    assert admin.snapshot() == before


def test_acceptance_mails_the_applications_admins_with_the_client_id(admin: AdminHarness) -> None:
    client_id = admin.accepted()["client_id"]
    mails = [m for m in admin.admin.outbox.all() if m.subject == "Connectieaanvraag geaccepteerd"]
    assert len(mails) == 1
    assert set(mails[0].to) == {EMAILS["vendor-admin"], EMAILS["module-admin"]}
    assert client_id in mails[0].body and "eHealth Module" in mails[0].body
    assert f"{admin.url}/api/v1/ktbench-alpha/fhir/r4" in mails[0].body
    assert [m["subject"] for m in admin.mails_to("module-admin")] == ["Connectieaanvraag geaccepteerd"]
    assert "Connectieaanvraag geaccepteerd" not in [m["subject"] for m in admin.mails_to("alpha-admin")]


def test_acceptance_is_all_or_nothing(admin: AdminHarness) -> None:
    filed = admin.filed()
    before = admin.snapshot()
    admin.fhir.refuse = True
    body = error_of(admin.accept(filed["id"]), 502)
    assert body["error"] == "device_failed"
    assert admin.snapshot() == before
    assert admin.api("GET", f"/connection-requests/{filed['id']}", "alpha-admin").json()["status"] == "pending"
    assert [r.client_id for r in admin.admin.instances("ktbench-alpha")] == ["alpha-portal", "alpha-epd-maint"]
    admin.fhir.refuse = False
    assert admin.accept(filed["id"]).status_code == 200


def test_acceptance_without_a_fhir_store_stores_nothing(admin: AdminHarness) -> None:
    filed = admin.filed()
    before = admin.snapshot()
    admin.ctx.fhir = None
    assert error_of(admin.accept(filed["id"]), 503)["error"] == "fhir_unavailable"
    assert admin.snapshot() == before


def test_client_ids_are_unique(admin: AdminHarness) -> None:
    issued = {admin.accepted()["client_id"] for _ in range(5)}
    assert len(issued) == 5


# -- rejection ---------------------------------------------------------------------------------------------
def test_rejecting_mails_the_applications_admins_and_creates_nothing(admin: AdminHarness) -> None:
    filed = admin.filed()
    instances, devices = admin.admin.instances("ktbench-alpha"), dict(admin.fhir.resources)
    response = admin.api("POST", f"/connection-requests/{filed['id']}/reject", "alpha-admin",
                         json={"reason": "Onbekende leverancier"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "rejected" and body["status_label"] == "Geweigerd"
    assert body["reason"] == "Onbekende leverancier" and body["client_id"] is None and body["role"] is None
    assert admin.admin.instances("ktbench-alpha") == instances and admin.fhir.resources == devices
    mails = [m for m in admin.admin.outbox.all() if m.subject == "Connectieaanvraag geweigerd"]
    assert len(mails) == 1 and set(mails[0].to) == {EMAILS["vendor-admin"], EMAILS["module-admin"]}
    assert "Onbekende leverancier" in mails[0].body
    assert admin.api("GET", f"/connection-requests/{filed['id']}", "module-admin").json()["status"] == "rejected"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": 3},
                                  {"reason": "x" * 2001}, {"reason": "ok", "extra": 1}])
def test_rejecting_needs_a_reason(admin: AdminHarness, body: dict) -> None:
    filed = admin.filed()
    before = admin.snapshot()
    error_of(admin.api("POST", f"/connection-requests/{filed['id']}/reject", "alpha-admin", json=body), 422)
    assert admin.snapshot() == before


# -- once decided, decided ---------------------------------------------------------------------------------
@pytest.mark.parametrize("first, second", [("accept", "accept"), ("accept", "reject"), ("reject", "accept"),
                                           ("reject", "reject")])
def test_a_request_is_decided_once(admin: AdminHarness, first: str, second: str) -> None:
    filed = admin.filed()
    bodies = {"accept": {"role": "eHealth Module"}, "reject": {"reason": "nee"}}
    path = f"/connection-requests/{filed['id']}/"
    assert admin.api("POST", path + first, "alpha-admin", json=bodies[first]).status_code == 200
    before = admin.snapshot()
    body = error_of(admin.api("POST", path + second, "alpha-admin-2", json=bodies[second]), 409)
    assert body["error"] == "conflict" and "decided once" in body["detail"]
    assert admin.snapshot() == before


def test_pending_filter_and_status_query(admin: AdminHarness) -> None:
    accepted = admin.accepted()
    pending = admin.filed()
    listed = admin.api("GET", "/connection-requests", "alpha-admin", params={"status": "pending"}).json()
    assert [r["id"] for r in listed["connection_requests"]] == [pending["id"]]
    listed = admin.api("GET", "/connection-requests", "alpha-admin", params={"status": "accepted"}).json()
    assert [r["id"] for r in listed["connection_requests"]] == [accepted["id"]]
    error_of(admin.api("GET", "/connection-requests", "alpha-admin", params={"status": "open"}), 422)


def test_roles_are_listed(admin: AdminHarness) -> None:
    assert [r["name"] for r in admin.api("GET", "/roles", "alpha-admin").json()["roles"]] == ROLES


def test_mails_carry_no_secret(admin: AdminHarness) -> None:
    token = admin.session("alpha-admin")
    admin.accepted()
    text = " ".join(m.subject + m.body for m in admin.admin.outbox.all())
    assert token not in text
    assert not re.search(r"password", text, re.IGNORECASE)

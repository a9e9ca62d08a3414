"""KT2 domain admin: application instances, their statuses and Devices, the Registry the token endpoint asks,
and persistence across restarts (seed 001 §4.3-4.5; KT2-ADMIN-STATUS-*, KT2-ADMIN-DEVICE)."""

from __future__ import annotations

import json

import pytest
from kt2_admin_support import (  # noqa: F401  # noqa: F401
    PRE_REGISTERED,
    AdminHarness,
    FakeFhir,
    admin,
    build_admin,
    error_of,
    file_db,
    no_unhandled_errors,
    test_data,
)

from ktbench.validation import validate_resource
from simulators.kt2.data import Instance

ALLOWED = [("active", "maintenance"), ("maintenance", "active"), ("active", "closed"), ("maintenance", "closed")]
REFUSED = [("active", "active"), ("maintenance", "maintenance"), ("closed", "active"), ("closed", "maintenance"),
           ("closed", "closed")]
DEVICE_STATUS = {"active": "active", "maintenance": "inactive", "closed": "inactive"}


def bring_to(admin: AdminHarness, status: str) -> str:
    """A fresh accepted instance in alpha, brought to `status`; its client id."""
    client_id = admin.accepted()["client_id"]
    if status != "active":
        assert admin.set_status(client_id, status, reason="voorbereiding").status_code == 200
    return client_id


@pytest.mark.parametrize("start, target", ALLOWED)
def test_allowed_transitions(admin: AdminHarness, start: str, target: str) -> None:
    client_id = bring_to(admin, start)
    response = admin.set_status(client_id, target, reason="Gepland onderhoud")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == target
    assert body["status_label"] == {"active": "Actief", "maintenance": "In onderhoud", "closed": "Afgesloten"}[target]
    last = body["history"][-1]
    assert (last["from"], last["to"], last["by"], last["reason"]) == (start, target, "alpha-admin", "Gepland onderhoud")
    assert last["at"].endswith("Z")


@pytest.mark.parametrize("start, target", REFUSED)
def test_refused_transitions_are_409(admin: AdminHarness, start: str, target: str) -> None:
    client_id = bring_to(admin, start)
    before = admin.snapshot()
    body = error_of(admin.set_status(client_id, target), 409)
    assert body["error"] == "conflict"
    if start == "closed":
        assert "final" in body["detail"]
    assert admin.snapshot() == before
    assert admin.registry_status(client_id) == start


@pytest.mark.parametrize("reason", [..., None, "", "   ", "\n\t", 42, ["reden"], "x" * 2001])
def test_a_reason_is_mandatory(admin: AdminHarness, reason) -> None:
    before = admin.snapshot()
    body = error_of(admin.set_status("alpha-portal", "maintenance", reason=reason), 422)
    assert "reason" in body["detail"]
    assert admin.snapshot() == before
    assert admin.registry_status("alpha-portal") == "active"


@pytest.mark.parametrize("status", ["paused", "Actief", "ACTIVE", "", None, 1, "pending"])
def test_unknown_statuses_are_422(admin: AdminHarness, status) -> None:
    before = admin.snapshot()
    error_of(admin.set_status("alpha-portal", status), 422)
    assert admin.snapshot() == before


def test_the_device_follows_the_status(admin: AdminHarness) -> None:
    client_id = bring_to(admin, "active")
    for target in ("maintenance", "active", "maintenance", "closed"):
        assert admin.set_status(client_id, target).status_code == 200
        device = admin.fhir.device("ktbench-alpha", client_id)
        assert device["status"] == DEVICE_STATUS[target], target
        assert validate_resource(device, kt=2).ok
    # maintenance -> closed leaves the Device inactive: no write
    assert [w[0] for w in admin.fhir.writes if w[2] == f"Device/{client_id}"] == ["create"] + ["update"] * 3


def test_the_registry_reflects_each_change_immediately(admin: AdminHarness) -> None:
    client_id = admin.accepted()["client_id"]
    assert admin.registry_status(client_id) == "active"
    admin.set_status(client_id, "maintenance")
    assert admin.registry_status(client_id) == "maintenance"
    assert {r.client_id: r.status for r in admin.admin.instances("ktbench-alpha")}[client_id] == "maintenance"
    admin.set_status(client_id, "active")
    assert admin.registry_status(client_id) == "active"
    admin.set_status(client_id, "closed")
    assert admin.registry_status(client_id) == "closed"


def test_the_registry_is_cached(admin: AdminHarness) -> None:
    admin.admin.instances("ktbench-alpha")
    reads = []
    store = admin.ctx.store
    original = store.all

    def counting(sql, params=()):
        reads.append(sql)
        return original(sql, params)

    store.all = counting  # type: ignore[method-assign]
    try:
        for _ in range(50):
            assert admin.admin.instance("ktbench-alpha", "alpha-portal") is not None
            admin.admin.instances("ktbench-beta")
    finally:
        store.all = original  # type: ignore[method-assign]
    assert [sql for sql in reads if "admin_instances" in sql] == []


def test_a_failed_device_update_undoes_the_status_change(admin: AdminHarness) -> None:
    before = admin.snapshot()
    admin.fhir.refuse = True
    assert error_of(admin.set_status("alpha-portal", "maintenance"), 502)["error"] == "device_failed"
    assert admin.snapshot() == before
    assert admin.registry_status("alpha-portal") == "active"


def test_the_registry_protocol(admin: AdminHarness) -> None:
    record = admin.admin.instance("ktbench-alpha", "alpha-portal")
    assert record is not None
    assert (record.client_id, record.application, record.domain, record.role, record.status, record.name,
            record.jwks_url, record.jwks, record.redirect_uris, record.launch_url) == (
        "alpha-portal", "ktbench-portal", "ktbench-alpha", "Behandelaarsportaal", "active",
        "ktbench Behandelaarsportaal", "https://alpha-portal.example.test/jwks", None, (), None)
    assert record.device == "Device/alpha-portal"
    assert admin.admin.instance("ktbench-beta", "alpha-portal") is None       # another domain's
    assert admin.admin.instance("ktbench-alpha", "nope") is None
    assert {r.client_id for r in admin.admin.instances("ktbench-alpha")} == {"alpha-portal", "alpha-epd-maint"}
    assert admin.admin.instances("no-such-domain") == []


def test_start_creates_the_devices_of_pre_registered_instances(admin: AdminHarness) -> None:
    for client_id, (domain, _app, _role, status) in PRE_REGISTERED.items():
        device = admin.fhir.device(domain, client_id)
        assert device is not None, client_id
        assert device["status"] == DEVICE_STATUS[status]
        assert validate_resource(device, kt=2).ok


def test_start_needs_the_fhir_store(admin: AdminHarness) -> None:
    ctx_admin, _app = build_admin(start=False)
    ctx_admin.ctx.fhir = None
    with pytest.raises(RuntimeError, match="ctx.fhir"):
        ctx_admin.start()
    ctx_admin.ctx.store.close()


def test_start_repairs_a_missing_or_stale_device(admin: AdminHarness) -> None:
    fhir = admin.fhir
    del fhir.resources[("ktbench-alpha", "Device/alpha-portal")]
    fhir.resources[("ktbench-alpha", "Device/alpha-epd-maint")]["status"] = "active"
    admin.admin.start()
    assert fhir.device("ktbench-alpha", "alpha-portal")["status"] == "active"
    assert fhir.device("ktbench-alpha", "alpha-epd-maint")["status"] == "inactive"
    writes = len(fhir.writes)
    admin.admin.start()                       # nothing to do: no writes
    assert len(fhir.writes) == writes


def test_state_survives_a_restart_without_duplicates(admin: AdminHarness, tmp_path) -> None:
    db = file_db(tmp_path)
    fhir = FakeFhir()
    admin.use(db=db, fhir=fhir)
    client_id = admin.accepted()["client_id"]
    admin.set_status("alpha-portal", "maintenance", reason="voor de herstart")
    pending = admin.filed(name="Nog in behandeling")
    mails = len(admin.admin.outbox.all())
    admin.use(db=db, fhir=fhir)                               # restart on the same file (and FHIR store)
    assert admin.registry_status(client_id) == "active"
    assert admin.registry_status("alpha-portal") == "maintenance"  # the data file does not overwrite state
    counts = {t: admin.ctx.store.one(f"SELECT count(*) FROM {t}")[0]
              for t in ("admin_instances", "admin_connection_requests", "admin_outbox", "admin_accounts")}
    assert counts == {"admin_instances": len(PRE_REGISTERED) + 1, "admin_connection_requests": 2,
                      "admin_outbox": mails, "admin_accounts": len(admin.ctx.data.admins)}
    history = admin.api("GET", "/instances/alpha-portal", "alpha-admin").json()["history"]
    assert [(h["from"], h["to"]) for h in history] == [(None, "active"), ("active", "maintenance")]
    assert admin.api("GET", f"/connection-requests/{pending['id']}", "alpha-admin").json()["status"] == "pending"
    assert admin.accept(pending["id"]).status_code == 200


def test_a_new_data_file_instance_is_registered_on_restart(admin: AdminHarness, tmp_path) -> None:
    db = file_db(tmp_path)
    admin.use(db=db)
    data = test_data()
    extra = Instance(domain="ktbench-beta", client_id="beta-cp", role="Clientportaal", jwks={"keys": []})
    apps = tuple(a.model_copy(update={"instances": (extra,)}) if a.id == "ktbench-client-portal" else a
                 for a in data.applications)
    admin.use(data.model_copy(update={"applications": apps}), db=db)
    record = admin.admin.instance("ktbench-beta", "beta-cp")
    assert record is not None and record.jwks == {"keys": []} and record.jwks_url is None
    detail = admin.api("GET", "/instances/beta-cp", "beta-admin").json()
    assert detail["inline_jwks"] is True and detail["origin"] == "data-file"


def test_instance_detail_shape(admin: AdminHarness) -> None:
    body = admin.api("GET", "/instances/alpha-epd-maint", "alpha-admin").json()
    assert body["status"] == "maintenance" and body["status_label"] == "In onderhoud"
    assert body["allowed_status_changes"] == ["active", "closed"]
    assert body["device"] == "Device/alpha-epd-maint"
    assert body["device_url"] == f"{admin.url}/api/v1/ktbench-alpha/fhir/r4/Device/alpha-epd-maint"
    assert body["page"] == f"{admin.url}/kt2/mgmt/instances/alpha-epd-maint"
    assert body["history"][0]["by"] == "data file"


def test_minted_urls_follow_the_public_base(admin: AdminHarness) -> None:
    base = "https://kt2.example.test/prefix"
    admin.use(public_base=base)
    filed = admin.file()
    assert filed.headers["location"].startswith(f"{base}/kt2/mgmt/api/connection-requests/")
    body = admin.accept(filed.json()["id"]).json()
    assert body["url"].startswith(base) and body["instance"]["device_url"].startswith(f"{base}/api/v1/ktbench-alpha/")
    domains = admin.api("GET", "/domains", "alpha-admin").json()["domains"]
    assert all(json.dumps(d).count(admin.url) == 0 for d in domains)
    mail = admin.admin.outbox.all()[0]
    assert f"{base}/kt2/mgmt/connection-requests/" in mail.body and admin.url not in mail.body
    redirect = admin.http.get("/kt2/mgmt/")
    assert redirect.status_code == 303 and redirect.headers["location"] == f"{base}/kt2/mgmt/login"

"""The app as a whole: in-process (ASGI, shipped data), with a registry of the test's own (status changes,
GRANTED scopes resolved through the registry), over https, and the seams between the packages."""

from __future__ import annotations

import asyncio
import json
import ssl
import time

import httpx
from kt2_support import (  # noqa: F401
    ALPHA,
    APPS,
    TestApp,
    jwks_host,
    make_kt2,
    no_unhandled_errors,
    patient,
    task,
)

from simulators.common.host import ServerTls
from simulators.common.tls import TestCertificateAuthority
from simulators.kt2 import urls
from simulators.kt2.app import create_app
from simulators.kt2.fhir.audit import audit_index_rows
from simulators.kt2.fhir.searchparams import index_rows
from simulators.kt2.registry import DataFileRegistry


def test_in_process_on_the_shipped_data():
    app = create_app()

    async def run() -> dict:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kt2.test") as client:
            metadata = await client.get(f"/api/v1/{ALPHA}/fhir/r4/metadata")
            config = await client.get(f"/api/v1/{ALPHA}/fhir/r4/.well-known/smart-configuration")
            unauthenticated = await client.get(f"/api/v1/{ALPHA}/fhir/r4/Device/ktbench-voorziening-{ALPHA}")
            unknown = await client.get("/api/v1/elsewhere/oauth2/jwks")
            return {"metadata": metadata.status_code, "issuer": config.json()["issuer"],
                    "device": unauthenticated.status_code, "unknown": unknown.status_code,
                    "trace": metadata.headers.get("x-trace-id")}

    try:
        result = asyncio.run(run())
        device = app.state.kt2.ctx.fhir.read(ALPHA, f"Device/ktbench-voorziening-{ALPHA}")
    finally:
        app.state.kt2.close()
    assert result == {"metadata": 200, "issuer": f"http://kt2.test/api/v1/{ALPHA}/oauth2", "device": 401,
                      "unknown": 404, "trace": result["trace"]} and result["trace"]
    assert device["identifier"][0]["value"] == f"ktbench-voorziening-{ALPHA}"


def test_status_changes_of_the_registry_decide_about_tokens(make_kt2):
    with make_kt2(registry=DataFileRegistry) as k:
        assert isinstance(k.services.registry, DataFileRegistry)
        assert k.request_token("alpha-epd").status_code == 200
        k.services.registry.set_status(ALPHA, "alpha-epd", "maintenance")
        refused = k.request_token("alpha-epd")
        assert refused.status_code == 401 and "maintenance" in refused.json()["error_description"]
        k.services.registry.set_status(ALPHA, "alpha-epd", "closed")
        assert k.request_token("alpha-epd").status_code == 401
        k.services.registry.set_status(ALPHA, "alpha-epd", "active")
        assert k.request_token("alpha-epd").status_code == 200
        assert k.get("alpha-epd", "Device/alpha-epd").status_code == 200   # the registry made the Devices


def test_granted_scope_resolves_through_the_registry(make_kt2):
    viewer = TestApp("alpha-viewer", ALPHA, "Viewer", "ktbench-viewer")
    role = {"name": "Viewer", "permissions": {"Task": "R:GRANTED(ktbench-module)", "Patient": "R:ALL"}}
    with make_kt2(extra_apps=[viewer], extra_roles=[role]) as k:
        k.jwks.published[viewer.client_id] = [viewer.jwk()]
        form = {"grant_type": "client_credentials", "client_assertion_type": "urn:ietf:params:oauth:client-"
                "assertion-type:jwt-bearer", "client_assertion": viewer.assertion(k.token_url())}
        answer = k.http.post(k.token_url(), data=form)
        assert answer.status_code == 200, answer.text
        scope = answer.json()["scope"]
        assert "system/Task.rs?resource-origin=Device/alpha-maintenance,Device/alpha-module" in scope.split()
        world = k.world()
        own = k.create("alpha-module", task(world["patient"]["id"], world["definition"]["id"]))
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        found = k.http.get(f"{k.base()}/Task", params={"_id": f"{own['id']},{world['task']['id']}"},
                           headers=headers).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [own["id"]]


def test_over_https(make_kt2, tmp_path):
    ca = TestCertificateAuthority(tmp_path / "ca")
    cert = ca.server_certificate()
    with make_kt2(tls=ServerTls(cert.cert_file, cert.key_file)) as k:
        assert k.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca.ca_file)), timeout=10) as client:
            config = client.get(f"{k.base()}/.well-known/smart-configuration").json()
            assert config["token_endpoint"].startswith("https://")
            app = APPS["alpha-epd"]
            token = client.post(config["token_endpoint"], data={
                "grant_type": "client_credentials", "client_assertion_type":
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": app.assertion(config["token_endpoint"])}).json()["access_token"]
            answer = client.post(f"{k.base()}/Patient", content=json.dumps(patient()), headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
            assert answer.status_code == 201 and answer.headers["location"].startswith("https://")


def test_admin_routes_are_mounted(make_kt2):
    with make_kt2() as k:
        from simulators.kt2.admin import DomainAdmin
        assert isinstance(k.services.registry, DomainAdmin)
        answer = k.http.get(urls.management_url(k.url))
        assert answer.status_code in (200, 303), answer.text     # the start screen or the way to the log-in
        login = k.http.get(urls.management_url(k.url) + "login")
        assert login.status_code == 200 and "Aanmelden" in login.text
        api = k.http.get(urls.management_api(k.url) + "/me")
        assert api.status_code == 401 and api.json()["error"] == "unauthorized"


def test_audit_index_rows_equal_the_generic_extraction(make_kt2):
    with make_kt2() as k:
        created = k.create("alpha-portal", patient())
        k.get("alpha-portal", f"Patient/{created['id']}", headers={"X-Correlation-Id": "corr-1"})
        k.http.get(f"{k.base()}/metadata")
        events = k.audit_events(_count="50")
        assert len(events) >= 3
        for event in events:
            assert sorted(audit_index_rows(event), key=repr) == sorted(index_rows("AuditEvent", event), key=repr)


def test_audit_events_written_by_the_background_writer_are_searchable(make_kt2, tmp_path):
    with make_kt2(db=str(tmp_path / "kt2.sqlite3")) as k:
        for _ in range(40):
            k.get("alpha-portal", "Patient?_count=1", headers={"X-Trace-Id": "bulk-trace"})
        started = time.monotonic()
        found = k.search("alpha-beheer", "AuditEvent?traceId=bulk-trace&_count=100")
        assert found["total"] == 40 and time.monotonic() - started < 5


def test_a_reference_to_an_audit_event_does_not_wait_for_itself(make_kt2, tmp_path):
    with make_kt2(db=str(tmp_path / "kt2.sqlite3")) as k:
        k.get("alpha-portal", "Patient?_count=1", headers={"X-Request-Id": "named-event"})
        event = k.audit_events(requestId="named-event")[0]
        body = patient()
        body["managingOrganization"] = {"reference": f"AuditEvent/{event['id']}"}
        started = time.monotonic()
        answer = k.post("alpha-portal", "Patient", body)
        assert time.monotonic() - started < 5
        assert answer.status_code == 422   # managingOrganization must be an Organization

"""KT2 domain admin inside the whole voorziening (`simulators.kt2.app.create_app`): what the admin decides is what
the authorisation server and the FHIR store do.

A vendor's application files a connection request with the JWKS URI of a real JWKS endpoint on 127.0.0.1; a
domain admin accepts it; the instance then gets an access token from the domain's token endpoint
(client_credentials + private_key_jwt, signed with its own key) and reads its own `Device/<client_id>` over
FHIR.  Maintenance and closing take the token away at once; a pending or rejected request never gets one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from kt2_admin_support import MGMT, PASSWORDS, no_unhandled_errors, test_data  # noqa: F401
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ktbench.validation import validate_resource
from simulators.common.host import running_asgi
from simulators.kt2 import urls

app_module = pytest.importorskip("simulators.kt2.app", reason="the voorziening's app.py is not there yet")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALPHA = "ktbench-alpha"
KEY = RSAKey.generate_key(2048)
KID = KEY.thumbprint()


class Vendor:
    """The vendor's side: its JWKS endpoint and the assertions it signs with the client id it was given."""

    def __init__(self) -> None:
        async def jwks(request: Request) -> JSONResponse:
            return JSONResponse({"keys": [{**KEY.as_dict(private=False), "kid": KID, "use": "sig", "alg": "RS512"}]})
        self.app = Starlette(routes=[Route("/jwks.json", jwks)])

    @staticmethod
    def assertion(client_id: str, token_url: str) -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 120,
                  "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "RS512", "kid": KID, "typ": "JWT"}, claims, KEY, algorithms=["RS512"])


class Voorziening:
    def __init__(self, url: str, jwks_url: str, app: Any) -> None:
        self.url = url
        self.jwks_url = jwks_url
        self.app = app
        self.http = httpx.Client(base_url=url, timeout=15)
        self.sessions: dict[str, str] = {}

    def api(self, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
        if who not in self.sessions:
            answer = self.http.post(f"{MGMT}/api/login", json={"username": who, "password": PASSWORDS[who]})
            assert answer.status_code == 200, answer.text
            self.sessions[who] = answer.json()["session"]
        return self.http.request(method, f"{MGMT}/api{path}", headers={"Authorization": f"Bearer {self.sessions[who]}"},
                                 **kw)

    def file(self) -> dict:
        response = self.api("POST", "/connection-requests", "vendor-admin",
                            json={"application": "ktbench-module", "domain": ALPHA, "jwks_uri": self.jwks_url,
                                  "name": "Module via de voorziening"})
        assert response.status_code == 201, response.text
        return response.json()

    def token(self, client_id: str) -> httpx.Response:
        token_url = urls.token_url(self.url, ALPHA)
        return self.http.post(token_url, data={"grant_type": "client_credentials",
                                               "client_assertion_type": JWT_BEARER,
                                               "client_assertion": Vendor.assertion(client_id, token_url)})

    def status(self, client_id: str, status: str) -> None:
        response = self.api("POST", f"/instances/{client_id}/status", "alpha-admin",
                            json={"status": status, "reason": f"test: {status}"})
        assert response.status_code == 200, response.text


def _refused(answer: httpx.Response, words: str) -> None:
    """A token request of a client that is not (or no longer) an active instance: 401 invalid_client."""
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client" and words in answer.json()["error_description"], answer.text


@pytest.fixture
def kt2() -> Iterator[Voorziening]:
    with running_asgi(Vendor().app, name="vendor-jwks") as jwks:
        app = app_module.create_app(test_data())
        try:
            with running_asgi(app, name="kt2-with-admin") as server:
                world = Voorziening(server.url, f"{jwks.url}/jwks.json", app)
                yield world
                world.http.close()
        finally:
            app.state.kt2.close()


def test_the_voorziening_wires_the_domain_admin(kt2: Voorziening) -> None:
    from simulators.kt2.admin import DomainAdmin

    services = kt2.app.state.kt2
    assert isinstance(services.registry, DomainAdmin)
    assert services.ctx.registry is services.registry and services.ctx.outbox is services.registry.outbox
    page = kt2.http.get(f"{MGMT}/login")
    assert page.status_code == 200 and "Aanmelden" in page.text


def test_an_accepted_instance_gets_a_token_and_reads_its_device(kt2: Voorziening) -> None:
    filed = kt2.file()
    _refused(kt2.token("not-yet-a-client"), "is not registered")
    accepted = kt2.api("POST", f"/connection-requests/{filed['id']}/accept", "alpha-admin",
                       json={"role": "eHealth Module"})
    assert accepted.status_code == 200, accepted.text
    client_id = accepted.json()["client_id"]

    answer = kt2.token(client_id)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert "system/Device.rs" in answer.json()["scope"]
    device = kt2.http.get(f"{urls.fhir_base(kt2.url, ALPHA)}/Device/{client_id}",
                          headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})
    assert device.status_code == 200, device.text
    resource = device.json()
    assert resource["id"] == client_id and resource["status"] == "active"
    assert resource["identifier"] == [{"system": "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id",
                                       "value": client_id}]
    assert validate_resource(resource, kt=2).ok, validate_resource(resource, kt=2).to_text()

    # maintenance: refused at once, and the Device says so; active again: tokens again; closed: never again
    kt2.status(client_id, "maintenance")
    _refused(kt2.token(client_id), "has status 'maintenance'")
    reread = kt2.http.get(f"{urls.fhir_base(kt2.url, ALPHA)}/Device/{client_id}",
                          headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})
    assert reread.status_code == 200 and reread.json()["status"] == "inactive"
    kt2.status(client_id, "active")
    assert kt2.token(client_id).status_code == 200
    kt2.status(client_id, "closed")
    _refused(kt2.token(client_id), "has status 'closed'")


def test_a_rejected_request_gets_no_token_and_no_device(kt2: Voorziening) -> None:
    filed = kt2.file()
    rejected = kt2.api("POST", f"/connection-requests/{filed['id']}/reject", "alpha-admin", json={"reason": "nee"})
    assert rejected.status_code == 200, rejected.text
    other = kt2.file()
    client_id = kt2.api("POST", f"/connection-requests/{other['id']}/accept", "alpha-admin",
                        json={"role": "eHealth Module"}).json()["client_id"]
    token = kt2.token(client_id).json()["access_token"]
    devices = kt2.http.get(f"{urls.fhir_base(kt2.url, ALPHA)}/Device",
                           headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"})
    assert devices.status_code == 200, devices.text
    names = [e["resource"]["deviceName"][0]["name"] for e in devices.json().get("entry", [])]
    assert names.count("Module via de voorziening") == 1          # only the accepted one


def test_mails_are_in_the_voorzienings_outbox(kt2: Voorziening) -> None:
    kt2.file()
    mails = kt2.api("GET", "/outbox", "alpha-admin").json()["mails"]
    assert [m["subject"] for m in mails] == ["Nieuwe connectieaanvraag voor domein ktbench-alpha op ktbench"]

"""Test harness for the KT2 voorziening: real servers on 127.0.0.1, real keys, real signed JWTs.

- `JwksHost`: a tiny Starlette app that publishes each test client's JWKS (what a vendor hosts); tests can
  rotate keys and set Cache-Control.
- `build_data`: a data file (ServerData) with two domains, every role, active/maintenance/closed instances,
  a module with a redirect URI, an instance with an inline JWKS and one that signs ES384.
- `Kt2`: a running voorziening with helpers (tokens cached per client, FHIR clients, resource builders).
- `Receiver`: a webhook endpoint that records notifications and answers with a chosen status.

Keys are generated once per test process (RSA generation is slow) and looked up by client name.
Fixtures: `jwks_host` (session), `kt2` (module: one server shared by a module's tests, which therefore
use fresh identifiers), `make_kt2` (factory for tests that need their own server, faults or settings),
`no_unhandled_errors` (autouse in modules that import it: a logged server error fails the test).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from kt2_builders import (  # noqa: F401
    activity_definition,
    careteam,
    client_audit_event,
    endpoint,
    organization,
    patient,
    practitioner,
    related_person,
    subscription,
    task,
    updated,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.common.host import RunningServer, running_asgi
from simulators.kt2 import urls
from simulators.kt2.data import ServerData, load_data, parse_data
from simulators.kt2.embedded import running_kt2_server

ALPHA, BETA = "ktbench-alpha", "ktbench-beta"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
ORIGIN = KT + "resource-origin"
FHIR_JSON = "application/fhir+json"
MODULE_REDIRECT = "https://module.ktbench.test/launch/callback"
PATIENT_USER = ("jan.jansen", "jan.jansen@ktbench.test")     # a user of the shipped IdP alpha-clients
_KEYS: dict[str, Any] = {}


def key_for(name: str, kind: str = "RSA") -> RSAKey | ECKey:
    if name not in _KEYS:
        _KEYS[name] = RSAKey.generate_key(2048) if kind == "RSA" else ECKey.generate_key("P-384")
    return _KEYS[name]


@dataclass
class TestApp:
    """An application instance of the test data file, with its own key."""

    __test__ = False
    client_id: str
    domain: str
    role: str
    application: str
    status: str = "active"
    alg: str = "RS512"
    inline: bool = False
    redirect_uris: tuple[str, ...] = ()
    publish_alg: bool = True           # False: the JWK names no alg, so any RSA algorithm may use it

    @property
    def key(self) -> RSAKey | ECKey:
        return key_for(self.client_id, "EC" if self.alg.startswith("ES") else "RSA")

    @property
    def kid(self) -> str:
        return self.key.thumbprint()

    @property
    def device(self) -> str:
        return f"Device/{self.client_id}"

    def jwk(self) -> dict:
        jwk = {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig"}
        if self.publish_alg:
            jwk["alg"] = self.alg
        return jwk

    def sign(self, claims: dict, header: dict | None = None, key=None, alg: str | None = None) -> str:
        alg = alg or self.alg
        return jwt.encode({"alg": alg, "kid": self.kid, "typ": "JWT", **(header or {})}, claims, key or self.key,
                          algorithms=[alg])

    def assertion(self, aud: str, *, lifetime: int = 240, drop: tuple[str, ...] = (), **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": aud, "iat": now, "exp": now + lifetime,
                "jti": str(uuid.uuid4()), **claims}
        for name in drop:
            body.pop(name, None)
        return self.sign(body)

    def hti(self, module: TestApp, sub: str, task: str, *, lifetime: int = 240, drop: tuple[str, ...] = (),
            **claims: Any) -> str:
        """An HTI launch token this (portal) instance signs for `module`."""
        now = int(time.time())
        body = {"iss": self.client_id, "aud": module.device, "sub": sub, "resource": task, "iat": now,
                "exp": now + lifetime, "jti": str(uuid.uuid4()), **claims}
        for name in drop:
            body.pop(name, None)
        return self.sign(body)


APPS: dict[str, TestApp] = {a.client_id: a for a in [
    TestApp("alpha-portal", ALPHA, "Behandelaarsportaal", "ktbench-portal"),
    TestApp("alpha-client-portal", ALPHA, "Clientportaal", "ktbench-client-portal"),
    TestApp("alpha-module", ALPHA, "eHealth Module", "ktbench-module", redirect_uris=(MODULE_REDIRECT,)),
    TestApp("alpha-module-2", ALPHA, "eHealth Module", "ktbench-module-2",
            redirect_uris=("https://module2.ktbench.test/cb",)),
    TestApp("alpha-epd", ALPHA, "Zorg ondersteuning (EPD)", "ktbench-epd"),
    TestApp("alpha-beheer", ALPHA, "Beheerportaal", "ktbench-beheer"),
    TestApp("alpha-maintenance", ALPHA, "eHealth Module", "ktbench-module", status="maintenance",
            redirect_uris=(MODULE_REDIRECT,)),
    TestApp("alpha-closed", ALPHA, "Behandelaarsportaal", "ktbench-portal", status="closed"),
    TestApp("alpha-inline", ALPHA, "Zorg ondersteuning (EPD)", "ktbench-epd", inline=True),
    TestApp("alpha-es", ALPHA, "Behandelaarsportaal", "ktbench-portal", alg="ES384"),
    TestApp("alpha-any-alg", ALPHA, "Behandelaarsportaal", "ktbench-portal", publish_alg=False),
    TestApp("beta-portal", BETA, "Behandelaarsportaal", "ktbench-portal"),
    TestApp("beta-module", BETA, "eHealth Module", "ktbench-module", redirect_uris=(MODULE_REDIRECT,)),
]}


class JwksHost:
    """Publishes `/jwks/<client_id>`; `published` may be changed by a test (key rotation)."""

    def __init__(self) -> None:
        self.published: dict[str, list[dict]] = {a.client_id: [a.jwk()] for a in APPS.values() if not a.inline}
        self.cache_control: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.app = Starlette(routes=[Route("/jwks/{client_id}", self._serve)])

    async def _serve(self, request: Request) -> Response:
        client_id = request.path_params["client_id"]
        self.hits[client_id] = self.hits.get(client_id, 0) + 1
        if client_id not in self.published:
            return JSONResponse({"error": "unknown"}, status_code=404)
        headers = {"Cache-Control": self.cache_control.get(client_id, "public, max-age=60")}
        return JSONResponse({"keys": self.published[client_id]}, headers=headers)


def build_data(jwks_base: str, *, settings: dict | None = None, extra_apps: list[TestApp] = (),
               extra_roles: list[dict] = ()) -> ServerData:
    """The test data file: the shipped roles, domains, IdPs and users plus the instances of APPS."""
    default = load_data()
    raw = {
        "server": {"allow_loopback_http_subscriptions": True, "notification_attempts": 2,
                   "notification_backoff_seconds": 0.05, "notification_timeout_seconds": 2.0,
                   **(settings or {})},
        "domains": [d.model_dump() for d in default.domains],
        "roles": [{"name": r.name, "description": r.description,
                   "permissions": {t: [_perm_text(p) for p in perms] for t, perms in r.permissions.items()}}
                  for r in default.roles] + list(extra_roles),
        "identity_providers": [i.model_dump() for i in default.identity_providers],
        "users": [u.model_dump() for u in default.users],
        "applications": [],
    }
    apps: dict[str, dict] = {}
    for app in [*APPS.values(), *extra_apps]:
        entry = apps.setdefault(app.application, {"id": app.application, "name": app.application, "instances": []})
        instance = {"domain": app.domain, "client_id": app.client_id, "role": app.role, "status": app.status,
                    "redirect_uris": list(app.redirect_uris)}
        if app.inline:
            instance["jwks"] = {"keys": [app.jwk()]}
        else:
            instance["jwks_url"] = f"{jwks_base}/jwks/{app.client_id}"
        entry["instances"].append(instance)
    raw["applications"] = list(apps.values())
    return parse_data(raw, "test data")


def _perm_text(perm) -> str:
    ops = "".join(o for o in "CRUD" if o in perm.operations)
    if perm.scope == "GRANTED":
        return f"{ops}:GRANTED({','.join(perm.granted)})"
    return f"{ops}:{perm.scope}"


@contextmanager
def request_id(client: httpx.Client) -> Iterator[str]:
    """Every request of `client` inside the block carries one fresh X-Request-Id (yielded)."""
    rid = uuid.uuid4().hex
    client.headers["X-Request-Id"] = rid
    try:
        yield rid
    finally:
        del client.headers["X-Request-Id"]


class Kt2:
    """A running voorziening and what tests do with it."""

    def __init__(self, server: RunningServer, jwks: JwksHost, public_base: str | None = None) -> None:
        self.server = server
        self.url = server.url
        self.root = public_base or server.url      # what minted URLs (and so assertion audiences) start with
        self.app = server.app
        self.services = server.app.state.kt2
        self.ctx = self.services.ctx
        self.jwks = jwks
        self._tokens: dict[str, str] = {}
        self.http = httpx.Client(timeout=15, headers={"Accept": FHIR_JSON})

    def base(self, domain: str = ALPHA) -> str:
        return urls.fhir_base(self.url, domain)

    def token_url(self, domain: str = ALPHA) -> str:
        return urls.token_url(self.url, domain)

    def request_token(self, name: str, assertion: str | None = None, **form: str) -> httpx.Response:
        app = APPS[name]
        data = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion or app.assertion(urls.token_url(self.root, app.domain)), **form}
        return self.http.post(self.token_url(app.domain), data=data)

    def token(self, name: str) -> str:
        if name not in self._tokens:
            answer = self.request_token(name)
            assert answer.status_code == 200, answer.text
            self._tokens[name] = answer.json()["access_token"]
        return self._tokens[name]

    def headers(self, name: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}", "Accept": FHIR_JSON, **extra}

    def get(self, name: str, path: str, domain: str | None = None, **kwargs) -> httpx.Response:
        domain = domain or APPS[name].domain
        return self.http.get(f"{self.base(domain)}/{path}", headers=self.headers(name, **kwargs.pop("headers", {})),
                             **kwargs)

    def post(self, name: str, path: str, body: Any, domain: str | None = None, **headers: str) -> httpx.Response:
        domain = domain or APPS[name].domain
        return self.http.post(f"{self.base(domain)}/{path}", content=json.dumps(body),
                              headers=self.headers(name, **{"Content-Type": FHIR_JSON, **headers}))

    def put(self, name: str, path: str, body: Any, version: str | None = None, **headers: str) -> httpx.Response:
        extra = {"Content-Type": FHIR_JSON, **headers}
        if version is not None:
            extra["If-Match"] = f'W/"{version}"'
        return self.http.put(f"{self.base(APPS[name].domain)}/{path}", content=json.dumps(body),
                             headers=self.headers(name, **extra))

    def delete(self, name: str, path: str, **headers: str) -> httpx.Response:
        return self.http.delete(f"{self.base(APPS[name].domain)}/{path}", headers=self.headers(name, **headers))

    def create(self, name: str, resource: dict) -> dict:
        answer = self.post(name, resource["resourceType"], resource)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def search(self, name: str, query: str, domain: str | None = None) -> dict:
        answer = self.get(name, query, domain)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def audit_events(self, **params: str) -> list[dict]:
        """AuditEvents of ALPHA matching `params` (read as the voorziening: no narrowing)."""
        self.services.audit.flush()
        from simulators.kt2.fhir import search
        query = search.parse_query("AuditEvent", list(params.items()), default_count=200, max_count=200)
        rows = search.matches(self.ctx.store, params.pop("_domain", ALPHA), query, None)
        return [json.loads(body) for _, _, body in rows]

    # -- a small world of resources ---------------------------------------------------------------------
    def world(self, portal: str = "alpha-portal", module: str = "alpha-module") -> dict[str, dict]:
        """Patient, Practitioner, Endpoint + ActivityDefinition (by the module), Task (by the portal)."""
        person = self.create(portal, patient())
        professional = self.create(portal, practitioner())
        endpoint_ = self.create(module, endpoint())
        definition = self.create(module, activity_definition(endpoint_["id"]))
        task_ = self.create(portal, task(person["id"], definition["id"]))
        return {"patient": person, "practitioner": professional, "endpoint": endpoint_,
                "definition": definition, "task": task_}


def _verifier() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Launch:
    """One launch of alpha-module by alpha-portal for a user."""

    def __init__(self, kt2, sub: str, task_id: str, **hti_claims) -> None:
        self.kt2 = kt2
        self.module = APPS["alpha-module"]
        self.hti = APPS["alpha-portal"].hti(self.module, sub, f"Task/{task_id}", **hti_claims)
        self.state = secrets.token_urlsafe(12)
        self.verifier, self.challenge = _verifier()

    def params(self, **changes) -> dict:
        params = {"response_type": "code", "client_id": self.module.client_id, "redirect_uri": MODULE_REDIRECT,
                  "launch": self.hti, "scope": "launch openid fhirUser", "state": self.state,
                  "aud": self.kt2.base(), "code_challenge": self.challenge, "code_challenge_method": "S256"}
        params.update(changes)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **changes):
        return self.kt2.http.get(urls.authorize_url(self.kt2.url, ALPHA), params=self.params(**changes))

    def login(self, username: str, **changes) -> str:
        """authorize -> IdP page -> login -> callback; returns the final redirect Location."""
        answer = self.authorize(**changes)
        assert answer.status_code == 302, answer.text
        idp_page = self.idp_page = answer.headers["location"]
        page = self.kt2.http.get(idp_page)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert username in page.text
        request_id = parse_qs(urlsplit(idp_page).query)["request"][0]
        login = self.kt2.http.get(idp_page.replace("/authorize?", "/login?"),
                                  params={"request": request_id, "username": username})
        assert login.status_code == 302, login.text
        return login.headers["location"]

    def code(self, username: str, **changes) -> str:
        callback = self.kt2.http.get(self.login(username, **changes))
        assert callback.status_code == 302, callback.text
        location = callback.headers["location"]
        assert location.startswith(MODULE_REDIRECT + "?")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [self.state]
        return query["code"][0]

    def exchange(self, code: str, *, client: str = "alpha-module", **changes):
        app = APPS[client]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": MODULE_REDIRECT,
                "code_verifier": self.verifier, "client_assertion_type": JWT_BEARER,
                "client_assertion": app.assertion(self.kt2.token_url())}
        form.update(changes)
        return self.kt2.http.post(self.kt2.token_url(), data={k: v for k, v in form.items() if v is not None})


# -- webhook receiver ------------------------------------------------------------------------------------
@dataclass
class Notification:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)   # answers to give, in order (then 200)
    received: list[Notification] = field(default_factory=list)
    delay: float = 0.0                                   # seconds before answering

    def asgi(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append(Notification({k.lower(): v for k, v in request.headers.items()},
                                              await request.body(), request.url.path))
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else 200
            return Response(b"", status_code=status)
        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Notification]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def jwks_host() -> Iterator[tuple[JwksHost, str]]:
    host = JwksHost()
    with running_asgi(host.app, name="jwks") as server:
        yield host, server.url


@contextmanager
def kt2_running(jwks: tuple[JwksHost, str], *, faults=(), settings: dict | None = None, db: str = ":memory:",
                public_base: str | None = None, extra_apps: list[TestApp] = (), extra_roles: list[dict] = (),
                registry=None, tls=None) -> Iterator[Kt2]:
    host, url = jwks
    data = build_data(url, settings=settings, extra_apps=extra_apps, extra_roles=extra_roles)
    with running_kt2_server(data, db=db, faults=faults, public_base=public_base, registry=registry,
                            tls=tls) as server:
        harness = Kt2(server, host, public_base)
        try:
            yield harness
        finally:
            harness.http.close()


@pytest.fixture(scope="module")
def kt2(jwks_host) -> Iterator[Kt2]:
    with kt2_running(jwks_host) as harness:
        yield harness


@pytest.fixture
def make_kt2(jwks_host):
    """`with make_kt2(faults=("x",)) as k: ...`"""
    def make(**kwargs):
        return kt2_running(jwks_host, **kwargs)
    return make


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_unhandled_errors() -> Iterator[None]:
    collector = _ErrorCollector()
    logger = logging.getLogger("ktbench.kt2")
    logger.addHandler(collector)
    try:
        yield
    finally:
        logger.removeHandler(collector)
    assert not collector.records, [r.getMessage() for r in collector.records]


def issues(answer: httpx.Response) -> list[dict]:
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"]


def expressions(answer: httpx.Response) -> list[str]:
    return [e for i in issues(answer) for e in i.get("expression", [])]

"""Test harness for the KT2 domain admin (simulators/kt2/admin): real HTTP, real SQLite, fresh state per test.

Until `simulators/kt2/app.py` wires the whole voorziening, the admin runs in a small Starlette app of its own
(a Mount at `/kt2/mgmt` behind the trace middleware) over a real `Store`, with `FakeFhir` standing in for the
FHIR store: an in-memory `SystemFhir` that keeps Devices per domain and can be told to refuse writes.

One uvicorn server per test process on 127.0.0.1 (port 0) serves a switch; each test plugs in a freshly built
admin (`:memory:` store unless a file is asked for), so tests share a socket but never state.

Import the fixtures with `from kt2_admin_support import admin, no_unhandled_errors  # noqa: F401`.
"""

from __future__ import annotations

import atexit
import copy
import logging
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from simulators.common.host import running_asgi
from simulators.kt2 import urls
from simulators.kt2.admin import DomainAdmin
from simulators.kt2.context import Kt2Context
from simulators.kt2.data import ServerData, default_data_path, parse_data
from simulators.kt2.errors import FhirError
from simulators.kt2.store import Store
from simulators.kt2.trace import TraceMiddleware

MGMT = urls.MANAGEMENT
API = MGMT + "/api"
PASSWORDS = {"alpha-admin": "alpha-admin-password", "alpha-admin-2": "second-alpha-password",
             "beta-admin": "beta-admin-password", "vendor-admin": "vendor-admin-password",
             "module-admin": "module-admin-password"}
EMAILS = {"alpha-admin": "beheer@alpha.ktbench.test", "alpha-admin-2": "tweede@alpha.ktbench.test",
          "beta-admin": "beheer@beta.ktbench.test", "vendor-admin": "apps@vendor.ktbench.test",
          "module-admin": "module@vendor.ktbench.test"}
JWKS = "https://module.example.test/.well-known/jwks.json"
# instances the test data file registers: client id -> (domain, application, role, status)
PRE_REGISTERED = {
    "alpha-portal": ("ktbench-alpha", "ktbench-portal", "Behandelaarsportaal", "active"),
    "alpha-epd-maint": ("ktbench-alpha", "ktbench-epd", "Zorg ondersteuning (EPD)", "maintenance"),
    "beta-module": ("ktbench-beta", "ktbench-module", "eHealth Module", "active"),
}


def test_data(**settings: Any) -> ServerData:
    """The shipped default data plus a second alpha domain admin, an admin of only the module application,
    pre-registered instances (PRE_REGISTERED) and `settings` for [server]."""
    raw = tomllib.loads(default_data_path().read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw.setdefault("server", {}).update(settings)
    raw["admins"] += [
        {"username": "alpha-admin-2", "password": PASSWORDS["alpha-admin-2"], "kind": "domain-admin",
         "email": EMAILS["alpha-admin-2"], "name": "Tweede beheerder Alpha", "domains": ["ktbench-alpha"]},
        {"username": "module-admin", "password": PASSWORDS["module-admin"], "kind": "application-admin",
         "email": EMAILS["module-admin"], "name": "Beheerder module", "applications": ["ktbench-module"]},
    ]
    apps = {a["id"]: a for a in raw["applications"]}
    for client_id, (domain, app, role, status) in PRE_REGISTERED.items():
        apps[app].setdefault("instances", []).append(
            {"domain": domain, "client_id": client_id, "role": role, "status": status,
             "jwks_url": f"https://{client_id}.example.test/jwks"})
    return parse_data(raw, "test data")


test_data.__test__ = False  # type: ignore[attr-defined]  (a helper, not a test)


class FakeFhir:
    """An in-memory `SystemFhir`: resources per domain and reference; `refuse = True` makes writes fail."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.refuse = False
        self.writes: list[tuple[str, str, str]] = []   # (operation, domain, reference)

    def _check(self) -> None:
        if self.refuse:
            raise FhirError.one(422, "Device refused by the test's FHIR store", "invalid")

    def create(self, domain: str, resource: dict[str, Any], *, resource_id: str | None = None) -> dict[str, Any]:
        self._check()
        rid = resource_id or resource.get("id") or "generated"
        ref = f"{resource['resourceType']}/{rid}"
        if (domain, ref) in self.resources:
            raise FhirError.one(409, f"{ref} exists", "duplicate")
        stored = {**copy.deepcopy(resource), "id": rid,
                  "meta": {**resource.get("meta", {}), "versionId": "1"}}
        self.resources[(domain, ref)] = stored
        self.writes.append(("create", domain, ref))
        return copy.deepcopy(stored)

    def read(self, domain: str, reference: str) -> dict[str, Any] | None:
        found = self.resources.get((domain, reference))
        return copy.deepcopy(found) if found else None

    def update(self, domain: str, resource: dict[str, Any]) -> dict[str, Any]:
        self._check()
        ref = f"{resource['resourceType']}/{resource['id']}"
        old = self.resources.get((domain, ref))
        version = str(int(old["meta"]["versionId"]) + 1) if old else "1"
        stored = {**copy.deepcopy(resource), "meta": {**resource.get("meta", {}), "versionId": version}}
        self.resources[(domain, ref)] = stored
        self.writes.append(("update", domain, ref))
        return copy.deepcopy(stored)

    def device(self, domain: str, client_id: str) -> dict[str, Any] | None:
        return self.read(domain, f"Device/{client_id}")


def build_admin(data: ServerData | None = None, *, db: str = ":memory:", faults: tuple[str, ...] = (),
                public_base: str | None = None, fhir: FakeFhir | None = None,
                start: bool = True) -> tuple[DomainAdmin, Starlette]:
    ctx = Kt2Context(data or test_data(), Store(db), frozenset(faults), public_base)
    ctx.fhir = fhir or FakeFhir()
    admin = DomainAdmin(ctx)
    ctx.registry = admin
    ctx.outbox = admin.outbox
    if start:
        admin.start()
    app = Starlette(routes=[Mount(MGMT, routes=admin.routes())])
    return admin, TraceMiddleware(app)


class _Switch:
    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_lock = threading.Lock()
_shared: dict[str, Any] = {}


def _shared_server() -> tuple[_Switch, str]:
    with _lock:
        if not _shared:
            switch = _Switch()
            manager = running_asgi(switch, name="kt2-admin-test")
            server = manager.__enter__()
            atexit.register(lambda: manager.__exit__(None, None, None))
            _shared.update(switch=switch, url=server.url)
        return _shared["switch"], _shared["url"]


class AdminHarness:
    """The admin under test, its FakeFhir and an HTTP client; `use()` plugs in a differently built admin."""

    def __init__(self, switch: _Switch, url: str) -> None:
        self._switch = switch
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10.0, follow_redirects=False)
        self.stores: list[Store] = []
        self.admin: DomainAdmin
        self.fhir: FakeFhir

    def use(self, data: ServerData | None = None, **kwargs: Any) -> AdminHarness:
        fhir = kwargs.pop("fhir", None) or FakeFhir()
        self.admin, app = build_admin(data, fhir=fhir, **kwargs)
        self.fhir = fhir
        self.stores.append(self.admin.ctx.store)
        self._sessions: dict[str, str] = {}
        self._switch.app = app
        return self

    @property
    def ctx(self) -> Kt2Context:
        return self.admin.ctx

    def close(self) -> None:
        self.http.close()
        for store in self.stores:
            store.close()

    # -- requests ----------------------------------------------------------------------------------------
    def login(self, username: str, password: str | None = None) -> str:
        response = self.http.post(f"{API}/login", json={"username": username,
                                                        "password": password or PASSWORDS[username]})
        assert response.status_code == 200, response.text
        return response.json()["session"]

    def api(self, method: str, path: str, who: str | None = None, *, token: str | None = None,
            **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if who is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.session(who or '')}"
        return self.http.request(method, API + path, headers=headers, **kwargs)

    def session(self, who: str) -> str:
        """A logged-in session of `who` (one per admin built: `use()` forgets them)."""
        if who not in self._sessions:
            self._sessions[who] = self.login(who)
        return self._sessions[who]

    def file(self, who: str = "vendor-admin", **fields: Any) -> httpx.Response:
        body = {"application": "ktbench-module", "domain": "ktbench-alpha", "jwks_uri": JWKS, **fields}
        body = {k: v for k, v in body.items() if v is not ...}
        return self.api("POST", "/connection-requests", who, json=body)

    def filed(self, who: str = "vendor-admin", **fields: Any) -> dict[str, Any]:
        response = self.file(who, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    def accept(self, request_id: str, role: str = "eHealth Module", who: str = "alpha-admin") -> httpx.Response:
        return self.api("POST", f"/connection-requests/{request_id}/accept", who, json={"role": role})

    def accepted(self, **fields: Any) -> dict[str, Any]:
        """File a request for the module in alpha and accept it; the accept answer."""
        filed = self.filed(**fields)
        response = self.accept(filed["id"])
        assert response.status_code == 200, response.text
        return response.json()

    def set_status(self, client_id: str, status: str, reason: Any = "test", who: str = "alpha-admin",
                   **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {"status": status, **extra}
        if reason is not ...:
            body["reason"] = reason
        return self.api("POST", f"/instances/{client_id}/status", who, json=body)

    def registry_status(self, client_id: str) -> str | None:
        """The status the Registry (what the token endpoint asks) gives the instance now."""
        for domain in self.ctx.data.domains:
            record = self.admin.instance(domain.name, client_id)
            if record is not None:
                return record.status
        return None

    def mails_to(self, who: str) -> list[dict[str, Any]]:
        response = self.api("GET", "/outbox", who)
        assert response.status_code == 200, response.text
        return response.json()["mails"]

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every admin row plus the FakeFhir's resources: equal snapshots mean nothing was stored."""
        store = self.ctx.store
        tables = [r[0] for r in store.all("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name LIKE 'admin_%' AND name != 'admin_sessions'")]
        rows = {t: [tuple(r) for r in store.all(f"SELECT * FROM {t} ORDER BY 1")] for t in sorted(tables)}
        rows["fhir"] = sorted((k, str(v)) for k, v in self.fhir.resources.items())
        return rows


@pytest.fixture
def admin() -> Iterator[AdminHarness]:
    switch, url = _shared_server()
    harness = AdminHarness(switch, url).use()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(autouse=True)
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Autouse where imported: the admin logs every unhandled exception (answered as a 500); none may happen."""
    caplog.set_level(logging.ERROR, logger="ktbench.kt2.admin")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert [r.getMessage() for r in records if r.name.startswith("ktbench.kt2.admin")
            and r.levelno >= logging.ERROR] == []


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert a JSON error answer with `status` and the `{"error", "detail"}` shape; return it."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text
    return body


def file_db(tmp_path: Path, name: str = "kt2.sqlite3") -> str:
    return str(tmp_path / name)

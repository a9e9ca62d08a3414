"""Test harness for the KT1 reference server: real HTTP, fresh state per test, fast.

Why a switchboard: starting and stopping uvicorn costs ~0.2 s, too much per
test.  Each test process runs ONE uvicorn server on 127.0.0.1 (port 0) whose
ASGI app is a switch; every test plugs in a freshly built KT1 app (new
`:memory:` store, new context), so tests share a socket but never state.
Tests that need a restart or a different data file build their own app
(`kt1.use(...)`) or run `running_kt1_server` themselves.

Import the fixtures into a test module with `from kt1_support import kt1, no_unhandled_errors`
(the latter is autouse: any unhandled server error logged during a test fails it).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.kt1.app import create_app
from simulators.kt1.embedded import running_kt1_server

FHIR = "/FHIR/Koppeltaal"
METADATA = FHIR + "/metadata"
MAILBOX = FHIR + "/Mailbox"
MH = FHIR + "/MessageHeader"
MH_SEARCH = FHIR + "/MessageHeader/_search"
OTHER = FHIR + "/Other"
OTHER_SEARCH = FHIR + "/Other/_search"
LAUNCH = "/OAuth2/Koppeltaal/Launch"
MOBILE_LAUNCH = "/OAuth2/Koppeltaal/MobileLaunch"
AUTHORIZE = "/OAuth2/Koppeltaal/Authorize"
TOKEN = "/OAuth2/Koppeltaal/Token"
CLAIM = "MessageHeader.GetNextNewAndClaim"
JSON_CT = "application/json; charset=utf-8"

TEXT_NO_FOCAL_VERSION = "No version specified for the focal resource, message is rejected."
TEXT_WRONG_VERSION = "The specified resource version is not correct"

# Application instances of simulators/kt1/default_data.toml: short name -> (username, password)
CREDS = {
    "portal": ("ktbench-portal", "portal-secret"),
    "module": ("ktbench-module", "module-secret"),
    "observer": ("ktbench-observer", "observer-secret"),
    "beta-portal": ("ktbench-beta-portal", "beta-portal-secret"),
    "beta-module": ("ktbench-beta-module", "beta-module-secret"),
}
# Mutation check of this suite: with KTBENCH_KT1_TEST_FAULT=<fault name> every harness app runs with that
# catalogued defect, and the suite must then fail (see simulators/kt1/faults.py).
MUTATION_FAULT = os.environ.get("KTBENCH_KT1_TEST_FAULT") or None
STATE_TABLES = ("meta", "resources", "messages", "activities", "launches", "codes", "tokens")


class _Switch:
    """ASGI app that forwards to whichever KT1 app the current test plugged in."""

    def __init__(self) -> None:
        self.app: Any = None

    @property
    def state(self) -> Any:  # running_kt1_server closes `app.state.ctx.store` on exit
        return self.app.state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_lock = threading.Lock()
_shared: dict[str, Any] = {}


def _shared_server() -> tuple[_Switch, str, httpx.Client]:
    with _lock:
        if not _shared:
            switch = _Switch()
            switch.app = create_app()
            ctx_manager = running_kt1_server(app=switch)  # type: ignore[arg-type]
            server = ctx_manager.__enter__()
            client = httpx.Client(base_url=server.url, timeout=10.0, follow_redirects=False)

            def stop() -> None:
                client.close()
                ctx_manager.__exit__(None, None, None)

            atexit.register(stop)
            _shared.update(switch=switch, url=server.url, client=client)
        return _shared["switch"], _shared["url"], _shared["client"]


class Kt1:
    """The server under test plus small conveniences; `http` is the one client of this process."""

    def __init__(self, switch: _Switch, url: str, http: httpx.Client) -> None:
        self._switch = switch
        self.url = url
        self.http = http
        self._apps: list[Any] = []

    # -- server --------------------------------------------------------------------------------
    def use(self, data: str | Path | None = None, **kwargs: Any) -> "Kt1":
        """Plug in a new app (data file, db, faults, public_base, claim_timeout) for this test."""
        if MUTATION_FAULT and "faults" not in kwargs:
            kwargs["faults"] = (MUTATION_FAULT,)
        return self.plug(create_app(data, **kwargs))

    def plug(self, app: Any) -> "Kt1":
        """Serve an app built elsewhere (e.g. by the CLI) for the rest of this test."""
        self._apps.append(app)
        self._switch.app = app
        return self

    @property
    def app(self) -> Any:
        return self._switch.app

    @property
    def ctx(self) -> Any:
        return self._switch.app.state.ctx

    def close(self) -> None:
        for app in self._apps:
            app.state.ctx.store.close()

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every state table: equal snapshots mean a request stored nothing."""
        store = self.ctx.store
        return {t: [tuple(r) for r in store.all(f"SELECT * FROM {t} ORDER BY 1")] for t in STATE_TABLES}

    # -- requests ------------------------------------------------------------------------------
    def request(self, method: str, path: str, who: str | None = "portal", **kw: Any) -> httpx.Response:
        if who is not None and "auth" not in kw:
            kw["auth"] = CREDS[who]
        return self.http.request(method, path, **kw)

    def post_message(self, bundle: dict[str, Any], who: str | None = "portal", **kw: Any) -> httpx.Response:
        return self.request("POST", MAILBOX, who, json=bundle, **kw)

    def send(self, bundle: dict[str, Any], who: str = "portal") -> dict[str, Any]:
        """POST a message that must be accepted; returns the reply bundle."""
        response = self.post_message(bundle, who)
        assert response.status_code == 200, response.text
        return response.json()

    def claim(self, who: str = "module", **params: str) -> httpx.Response:
        return self.request("GET", MH_SEARCH, who, params={"_query": CLAIM, **params})

    def claimed(self, who: str = "module", **params: str) -> dict[str, Any]:
        response = self.claim(who, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def summary(self, who: str = "module", **params: str) -> dict[str, Any]:
        response = self.request("GET", MH_SEARCH, who, params={"_summary": "true", "_count": "100", **params})
        assert response.status_code == 200, response.text
        return response.json()

    def headers_of(self, who: str = "module", **params: str) -> list[dict[str, Any]]:
        return [e["content"] for e in self.summary(who, **params)["entry"]]


@pytest.fixture
def kt1() -> Iterator[Kt1]:
    switch, url, client = _shared_server()
    harness = Kt1(switch, url, client)
    harness.use()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(autouse=True)
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Import into a module to make it autouse there: the server logs every unhandled exception
    (which it answers with a 500); none may happen during the test."""
    caplog.set_level(logging.ERROR, logger="ktbench.kt1")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert [r.getMessage() for r in records if r.name.startswith("ktbench.kt1")] == []


# -- assertion helpers ----------------------------------------------------------------------------
def outcome(response: httpx.Response, status: int | tuple[int, ...] | None = None) -> dict[str, Any]:
    """Assert `response` is a JSON OperationOutcome error (4xx unless told) and return it."""
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    elif isinstance(status, tuple):
        assert response.status_code in status, (response.status_code, response.text)
    else:
        assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == JSON_CT
    assert "Traceback" not in response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] == "error" for i in body["issue"])
    return body


def details(response: httpx.Response, status: int | None = None) -> list[str]:
    return [issue["details"] for issue in outcome(response, status)["issue"]]


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in bundle.get("link", [])}


def self_link(entry: dict[str, Any]) -> str:
    return next(link["href"] for link in entry["link"] if link["rel"] == "self")


def write_data(tmp_path: Path, *, server: dict[str, Any] | None = None,
               apps: dict[str, dict[str, Any]] | None = None, name: str = "kt1.toml") -> Path:
    """The default data file with [server] settings and per-application keys overridden."""
    import tomllib

    from simulators.kt1.data import default_data_path

    raw = tomllib.loads(default_data_path().read_text(encoding="utf-8"))
    raw.setdefault("server", {}).update(server or {})
    for app in raw["applications"]:
        app.update((apps or {}).get(app["id"], {}))
    path = tmp_path / name
    path.write_text(dump_toml(raw), encoding="utf-8")
    return path


def dump_toml(raw: dict[str, Any]) -> str:
    """Enough TOML for data files: tables, arrays of tables, strings, numbers, booleans, string lists."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines: list[str] = []
    for key, item in raw.items():
        if isinstance(item, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {value(v)}" for k, v in item.items()]
        elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            for table in item:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{key} = {value(item)}")
        lines.append("")
    return "\n".join(lines)

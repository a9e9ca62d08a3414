"""Defects found in review, each with the test that shows it fixed: search values that stall the event loop,
Subscriptions that can be stored but never delivered (non-ASCII headers, impossible ports) or that put
credentials into AuditEvents, references and ids with a trailing newline, JWKS URLs that made the token
endpoint answer 500, JWKS documents and webhook answers that drip in past every timeout, clients that hang up
mid-body, auth requests without an AuditEvent, introspection of id_tokens, autocommit writes that bypassed the
write gate of a file database, a closed AuditLog that still touched its database, and transmit events of the
voorziening's own changes with an anonymous trigger.  Every resource the voorziening writes itself is valid KT2
(KT2-REST-OUTCOME, KT2-SEARCH-PARAMS, KT2-SUB-*, KT2-RI-WRITE, KT2-TOKEN-KID, KT2-AUDIT-AUTH, KT2-INTRO-*)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kt2_support import (  # noqa: F401
    ALPHA,
    APPS,
    FHIR_JSON,
    JWT_BEARER,
    MODULE_REDIRECT,
    PATIENT_USER,
    Launch,
    Receiver,
    client_audit_event,
    expressions,
    issues,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    subscription,
    task,
    updated,
)
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ktbench.validation import validate_resource
from simulators.common.host import running_asgi
from simulators.kt2 import urls
from simulators.kt2.app import create_app
from simulators.kt2.data import DataFileError, load_data, parse_data
from simulators.kt2.fhir.audit import transmit_event, without_credentials
from simulators.kt2.registry import DataFileRegistry
from simulators.kt2.store import Store
from simulators.kt2.trace import TraceIds


def _user_auth_events(k, request_id: str) -> list[dict]:
    return [e for e in k.audit_events(requestId=request_id) if e["type"]["code"] == "110114"]


# -- search: the number of values is bounded ------------------------------------------------------------
def test_a_search_with_thousands_of_values_is_refused_at_once(kt2):
    many = "&".join(["name=" + ",".join(["a"] * 100)] * 20)            # 2,000 values: seconds of SQLite planning
    started = time.monotonic()
    answer = kt2.get("alpha-beheer", "Patient?" + many)
    assert answer.status_code == 400
    assert "Too many search values (2000; at most 1000" in issues(answer)[0]["diagnostics"]
    assert time.monotonic() - started < 2
    posted = kt2.http.post(f"{kt2.base()}/Patient/_search", content=many,
                           headers={**kt2.headers("alpha-beheer"), "Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 400 and "Too many search values" in issues(posted)[0]["diagnostics"]
    allowed = kt2.get("alpha-beheer", "Patient?" + "&".join(["name=" + ",".join(["a"] * 100)] * 10))
    assert allowed.status_code == 200 and allowed.json()["resourceType"] == "Bundle"


def test_a_subscription_criteria_with_too_many_values_is_422(kt2):
    criteria = "Patient?_id=" + ",".join(f"p{i}" for i in range(100)) + "&" + \
        "&".join("name=" + ",".join(["a"] * 100) for _ in range(10))
    answer = kt2.post("alpha-portal", "Subscription", subscription(criteria, "https://hooks.ktbench.test/x"))
    assert answer.status_code == 422
    assert "Subscription.criteria" in expressions(answer)


# -- Subscriptions: only what can be delivered, never credentials in AuditEvents ------------------------
@pytest.mark.parametrize("endpoint, headers, where, words", [
    ("https://hooks.ktbench.test/x", ("X-Name: caf\u00e9",), "Subscription.channel.header[0]", "Name: value"),
    ("https://hooks.ktbench.test/x", ("X-Snow: \u2603",), "Subscription.channel.header[0]", "Name: value"),
    ("https://hooks.ktbench.test/x", ("X-A: b\n",), "Subscription.channel.header[0]", "Name: value"),
    ("https://hooks.ktbench.test/x", ("X-A: ok", "X-B: b\r\nX-Injected: 1"), "Subscription.channel.header[1]",
     "Name: value"),
    ("https://hooks.ktbench.test:99999/x", (), "Subscription.channel.endpoint", "valid port"),
    ("https://user:secret@hooks.ktbench.test/x", (), "Subscription.channel.endpoint", "credentials"),
    ("https://hooks.ktbench.test/caf\u00e9", (), "Subscription.channel.endpoint", "ASCII"),
])
def test_undeliverable_or_leaky_subscriptions_are_422(kt2, endpoint, headers, where, words):
    before = kt2.search("alpha-portal", "Subscription?_summary=count")["total"]
    answer = kt2.post("alpha-portal", "Subscription", subscription("Patient?active=true", endpoint, headers))
    assert answer.status_code == 422, answer.text
    found = [i for i in issues(answer) if where in i.get("expression", [])]
    assert found and words in found[0]["diagnostics"], issues(answer)
    assert "secret" not in answer.text
    assert kt2.search("alpha-portal", "Subscription?_summary=count")["total"] == before


def test_ascii_headers_and_https_endpoints_are_still_taken(kt2):
    answer = kt2.post("alpha-portal", "Subscription", subscription(
        "Patient?active=true", "https://hooks.ktbench.test:8443/x?a=b", ("Authorization: Bearer abc.def",
                                                                       "X-Tab: a\tb")))
    assert answer.status_code == 201, answer.text
    assert answer.json()["channel"]["header"] == ["Authorization: Bearer abc.def", "X-Tab: a\tb"]


def test_a_stored_subscription_httpx_cannot_send_is_a_recorded_failed_delivery(kt2):
    """A Subscription stored before the rules above (an older database) fails like any unreachable endpoint:
    a transmit AuditEvent with outcome 4 per attempt and status `error`, no unhandled exception."""
    family = f"H{uuid.uuid4().hex[:8]}"
    stored = kt2.ctx.fhir.create(ALPHA, {**subscription(f"Patient?family={family}", "https://hooks.ktbench.test/x",
                                                        ("X-Name: caf\u00e9",)), "status": "active"})
    kt2.services.notifier.owner_changed(ALPHA, stored["id"], "alpha-portal", "system/Patient.crus")
    created = kt2.create("alpha-portal", patient(family=family))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        current = kt2.get("alpha-portal", f"Subscription/{stored['id']}").json()
        if current["status"] == "error":
            break
        time.sleep(0.05)
    assert current["status"] == "error" and "could not be sent" in current["error"], current
    events = [e for e in kt2.audit_events(entity=f"Subscription/{stored['id']}") if e["type"]["code"] == "transmit"]
    assert len(events) == kt2.ctx.settings.notification_attempts
    assert {e["outcome"] for e in events} == {"4"}
    assert all(e["entity"][0]["what"]["reference"] == f"Patient/{created['id']}/_history/1" for e in events)


def test_transmit_events_never_carry_endpoint_credentials():
    assert without_credentials("https://user:pw@hooks.example.org:8443/a?b=c#d") == \
        "https://hooks.example.org:8443/a?b=c#d"
    assert without_credentials("https://hooks.example.org/x") == "https://hooks.example.org/x"
    event = transmit_event(trigger_device="Device/a", subscriber="Device/b", endpoint="https://u:secret@h.test/x",
                           resource_ref="Patient/1/_history/1", rtype="Patient", subscription_id="s",
                           criteria="Patient?", success=True, description=None, site="h", observer="Device/o",
                           trace=TraceIds("r", "t"), recorded="2026-01-01T00:00:00.000Z")
    assert event["agent"][1]["network"]["address"] == "https://h.test/x"
    assert "secret" not in json.dumps(event)


# -- references, ids and launch claims with a trailing newline ------------------------------------------
def test_a_reference_with_a_trailing_newline_is_422_and_nothing_is_stored(kt2):
    world = kt2.world()
    body = task(world["patient"]["id"] + "\n", world["definition"]["id"])
    before = kt2.search("alpha-portal", "Task?_summary=count")["total"]
    answer = kt2.post("alpha-portal", "Task", body)
    assert answer.status_code == 422, answer.text
    assert {"Task.for.reference", "Task.owner.reference"} <= set(expressions(answer))
    assert kt2.search("alpha-portal", "Task?_summary=count")["total"] == before


def test_ids_with_a_trailing_newline_are_no_ids(kt2):
    created = kt2.create("alpha-portal", patient())
    answer = kt2.get("alpha-portal", "Patient", params={"_id": created["id"] + "\n"})
    assert answer.status_code == 400 and "is not a FHIR id" in issues(answer)[0]["diagnostics"]
    same = kt2.get("alpha-portal", "Patient", params={"_id": created["id"]}).json()
    assert same["total"] == 1


def test_a_launch_token_whose_sub_ends_in_a_newline_is_refused(kt2):
    person = kt2.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
    world = kt2.world()
    launch = Launch(kt2, f"Patient/{person['id']}\n", world["task"]["id"])
    answer = launch.authorize()
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.headers["location"].startswith(MODULE_REDIRECT + "?")
    assert query["error"] == ["invalid_request"] and "sub must be" in query["error_description"][0]


# -- JWKS URLs that cannot be fetched, JWKS documents that cannot be parsed -----------------------------
def _registry_with(client_id: str, jwks_url: str):
    def factory(ctx):
        registry = DataFileRegistry(ctx)
        key = (ALPHA, client_id)
        registry._instances[key] = replace(registry._instances[key], jwks_url=jwks_url, jwks=None)
        return registry
    return factory


def test_a_jwks_url_httpx_cannot_even_try_is_401_not_500(make_kt2):
    with make_kt2(registry=_registry_with("alpha-portal", "http://127.0.0.1:99999/jwks")) as k:
        answer = k.request_token("alpha-portal")
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "invalid_client"
        assert "cannot be fetched" in answer.json()["error_description"]


def test_a_jwks_nested_too_deeply_is_401_not_500(make_kt2):
    deep = b'{"keys":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    async def jwks(request):
        return Response(deep, media_type="application/json")

    with running_asgi(Starlette(routes=[Route("/jwks", jwks)]), name="deep-jwks") as host, \
            make_kt2(registry=_registry_with("alpha-portal", f"{host.url}/jwks")) as k:
        answer = k.request_token("alpha-portal")
        assert answer.status_code == 401, answer.text
        assert "is not JSON" in answer.json()["error_description"]


def _dripping(body: bytes, pause: float) -> Starlette:
    """An endpoint that answers 200 at once and then sends its body one byte every `pause` seconds: each read
    is quick, the whole answer is not."""
    async def drip(request):
        async def chunks():
            for byte in body:
                await asyncio.sleep(pause)
                yield bytes([byte])
        return StreamingResponse(chunks(), media_type="application/json")
    return Starlette(routes=[Route("/{path:path}", drip, methods=["GET", "POST"])])


def test_a_jwks_that_drips_in_is_cut_off_at_the_fetch_timeout(make_kt2):
    jwk = APPS["alpha-portal"].jwk()
    body = json.dumps({"keys": [jwk]}).encode()
    with running_asgi(_dripping(body, 3.0 / len(body)), name="drip-jwks") as host, \
            make_kt2(settings={"jwks_fetch_timeout_seconds": 0.5},
                     registry=_registry_with("alpha-portal", f"{host.url}/jwks")) as k:   # about 3 s in all
        started = time.monotonic()
        answer = k.request_token("alpha-portal")
        took = time.monotonic() - started
    assert answer.status_code == 401, answer.text        # was 200 after 3 s: httpx's timeout holds per read only
    assert "did not arrive within 0.5 s" in answer.json()["error_description"]
    assert took < 2.0


def test_a_webhook_that_drips_its_answer_is_a_failed_delivery_after_the_timeout(make_kt2):
    with running_asgi(_dripping(b"x" * 30, 0.1), name="drip-hook") as hook, \
            make_kt2(settings={"notification_timeout_seconds": 0.5, "notification_attempts": 1}) as k:
        family = f"D{uuid.uuid4().hex[:8]}"                     # the answer drips for about 3 s in all
        sub = k.create("alpha-portal", subscription(f"Patient?family={family}", f"{hook.url}/hook"))
        k.create("alpha-portal", patient(family=family))
        deadline = time.monotonic() + 2.0                       # before the drip could have ended
        current = {}
        while time.monotonic() < deadline:
            current = k.get("alpha-portal", f"Subscription/{sub['id']}").json()
            if current["status"] == "error":
                break
            time.sleep(0.05)
        assert current["status"] == "error", current
        assert "no complete answer within 0.5 s" in current["error"]


def test_the_data_file_refuses_jwks_urls_that_cannot_be_fetched():
    raw = {"domains": [{"name": "d"}], "roles": [{"name": "r", "permissions": {"*": "CRUD:ALL"}}],
           "applications": [{"id": "a", "name": "A", "instances": [{"domain": "d", "client_id": "c", "role": "r",
                                                                     "jwks_url": ""}]}]}
    for url, words in (("https://jwks.example.org:99999/k", "not a valid URL"), ("ftp://jwks.example.org/k", "http(s)"),
                       ("https://u:p@jwks.example.org/k", "credentials"), ("https://jwks.example.org/a b", "spaces")):
        raw["applications"][0]["instances"][0]["jwks_url"] = url
        with pytest.raises(DataFileError, match=r"jwks_url") as refused:
            parse_data(raw, "test")
        assert words in str(refused.value)
    raw["applications"][0]["instances"][0]["jwks_url"] = "https://jwks.example.org:8443/k"
    assert parse_data(raw, "test").applications[0].instances[0].jwks_url.endswith(":8443/k")
    assert load_data().applications    # the shipped data file still loads


# -- a client that hangs up in the middle of its body ---------------------------------------------------
def _hang_up(port: int, request: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(request)
    time.sleep(0.3)   # the server reads, finds the client gone and must not call it a server error


@pytest.mark.parametrize("path, content_type", [
    (f"/api/v1/{ALPHA}/fhir/r4/Patient", FHIR_JSON),
    (f"/api/v1/{ALPHA}/fhir/r4/Patient/_search", "application/x-www-form-urlencoded"),
    (f"/api/v1/{ALPHA}/oauth2/token", "application/x-www-form-urlencoded"),
    (f"/api/v1/{ALPHA}/idp/alpha-clients/login", "application/x-www-form-urlencoded"),
    ("/kt2/mgmt/api/login", "application/json"),
])
def test_a_client_that_hangs_up_mid_body_is_no_server_error(kt2, path, content_type):
    rid = uuid.uuid4().hex
    _hang_up(kt2.server.port, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{kt2.server.port}\r\nAuthorization: Bearer "
                              f"{kt2.token('alpha-portal')}\r\nContent-Type: {content_type}\r\nX-Request-Id: {rid}\r\n"
                              "Content-Length: 5000\r\n\r\n{\"resourceType\": \"Pat".encode())
    if "/fhir/" in path:   # the refusal is still an interaction with its AuditEvent
        events = kt2.audit_events(requestId=rid)
        assert len(events) == 1 and events[0]["outcome"] == "4"
        assert "disconnected" in events[0]["outcomeDesc"]
    assert kt2.get("alpha-portal", "Patient?_count=1").status_code == 200   # and the server goes on


# -- every token, introspection, authorize and IdP-callback request has its AuditEvent --------------------
def test_refused_auth_requests_before_any_assertion_check_are_logged(kt2):
    calls = {
        "token: unsupported_grant_type": lambda: kt2.http.post(kt2.token_url(), data={"grant_type": "password"}),
        "token: invalid_request": lambda: kt2.http.post(kt2.token_url(), data={"grant_type": "client_credentials"}),
        "token: invalid_request: the body": lambda: kt2.http.post(kt2.token_url(), json={"grant_type": "x"}),
        "introspect: invalid_request": lambda: kt2.http.post(urls.introspection_url(kt2.url, ALPHA), data={}),
        "authorize: invalid_client": lambda: kt2.http.get(urls.authorize_url(kt2.url, ALPHA),
                                                          params={"client_id": "nobody"}),
        "authorize: invalid_request: redirect_uri": lambda: kt2.http.get(
            urls.authorize_url(kt2.url, ALPHA), params={"client_id": "alpha-module", "redirect_uri": "https://evil"}),
        "idp login: invalid_request": lambda: kt2.http.get(f"{urls.oauth_base(kt2.url, ALPHA)}/idp-callback",
                                                           params={"request": "nope", "code": "x"}),
    }
    for prefix, call in calls.items():
        rid = uuid.uuid4().hex
        kt2.http.headers["X-Request-Id"] = rid
        try:
            answer = call()
        finally:
            del kt2.http.headers["X-Request-Id"]
        assert 400 <= answer.status_code < 500 and answer.json()["error"], prefix
        events = _user_auth_events(kt2, rid)
        assert len(events) == 1, (prefix, events)
        event = events[0]
        assert event["outcome"] == "8" and event["outcomeDesc"].startswith(prefix), (prefix, event["outcomeDesc"])
        assert validate_resource(event, kt=2).ok, validate_resource(event, kt=2).to_text()
        who = event["agent"][0]["who"]
        if prefix.startswith("authorize: invalid_request"):
            assert who["reference"] == "Device/alpha-module"   # a client of the domain: named
        else:
            assert "reference" not in who                     # anybody else: not in the log


def test_a_refused_code_exchange_has_exactly_one_event(kt2):
    person = kt2.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
    world = kt2.world()
    launch = Launch(kt2, f"Patient/{person['id']}", world["task"]["id"])
    code = launch.code(PATIENT_USER[0])
    rid = uuid.uuid4().hex
    kt2.http.headers["X-Request-Id"] = rid
    try:
        answer = launch.exchange(code, code_verifier="x" * 43)
    finally:
        del kt2.http.headers["X-Request-Id"]
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    events = _user_auth_events(kt2, rid)
    assert len(events) == 1 and "code_verifier" in events[0]["outcomeDesc"]


# -- introspection of the domain's own tokens -----------------------------------------------------------
def _introspect(k, token: str, rid: str):
    return k.http.post(urls.introspection_url(k.url, ALPHA), headers={"X-Request-Id": rid}, data={
        "token": token, "client_assertion_type": JWT_BEARER,
        "client_assertion": APPS["alpha-module"].assertion(urls.introspection_url(k.url, ALPHA))})


def test_an_access_token_is_active_and_its_introspection_is_logged(kt2):
    rid = uuid.uuid4().hex
    answer = _introspect(kt2, kt2.token("alpha-epd"), rid)
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True and body["azp"] == "alpha-epd" and body["type"] == "access"
    events = _user_auth_events(kt2, rid)
    assert len(events) == 1 and events[0]["outcome"] == "0"
    assert events[0]["outcomeDesc"] == "introspect: access token is active"
    assert events[0]["agent"][0]["who"]["reference"] == "Device/alpha-module"


def test_an_id_token_is_no_active_access_token(kt2):
    person = kt2.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
    world = kt2.world()
    launch = Launch(kt2, f"Patient/{person['id']}", world["task"]["id"])
    id_token = launch.exchange(launch.code(PATIENT_USER[0])).json()["id_token"]
    rid = uuid.uuid4().hex
    answer = _introspect(kt2, id_token, rid)
    assert answer.status_code == 200 and answer.json() == {"active": False}
    events = _user_auth_events(kt2, rid)
    assert len(events) == 1 and events[0]["outcome"] == "8"
    assert "no access token" in events[0]["outcomeDesc"]


def test_an_expired_access_token_is_inactive(make_kt2):
    with make_kt2(settings={"access_token_seconds": 1, "clock_skew_seconds": 0}) as k:
        token = k.token("alpha-epd")
        k.ctx.clock.offset = 5
        try:
            answer = _introspect(k, token, uuid.uuid4().hex)
        finally:
            k.ctx.clock.offset = 0
        assert answer.json() == {"active": False}


# -- file databases: every write takes the write gate; the AuditLog after close --------------------------
def test_autocommit_writes_wait_for_the_other_connection_at_the_gate(tmp_path: Path):
    """The AuditEvent writer's connection holds a write transaction; a write of the request connection outside
    a transaction (sessions, jtis, subscription owners are written so) must queue at the gate, not run into
    SQLite's busy handler (here set to 50 ms: `database is locked` without the gate)."""
    gate = threading.Lock()
    path = str(tmp_path / "gate.sqlite3")
    main, writer = Store(path, gate), Store(path, gate)
    main.ensure_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    main.execute("PRAGMA busy_timeout=50")
    holding = threading.Event()

    def hold() -> None:
        with writer.transaction():
            writer.execute("INSERT INTO t (v) VALUES (1)")
            holding.set()
            time.sleep(0.4)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    started = time.monotonic()
    main.execute("INSERT INTO t (v) VALUES (2)")              # raised sqlite3.OperationalError before the fix
    main.executemany("INSERT INTO t (v) VALUES (?)", [(3,), (4,)])
    waited = time.monotonic() - started
    thread.join()
    assert waited >= 0.2                                        # it did wait for the other transaction
    assert [r[0] for r in main.all("SELECT v FROM t ORDER BY v")] == [1, 2, 3, 4]
    assert main.one("SELECT 1") is not None and not gate.locked()
    main.close()
    writer.close()


def test_a_file_database_under_concurrent_reads_tokens_and_launch_steps(make_kt2, tmp_path: Path):
    """Reads (each queues an AuditEvent for the writer thread), token requests (jti writes) and launch steps
    (session writes, autocommit) from several threads: no error, every AuditEvent stored."""
    with make_kt2(db=str(tmp_path / "kt2.sqlite3")) as k:
        person = k.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
        world = k.world()
        path = f"Patient/{person['id']}"
        marker = uuid.uuid4().hex[:12]
        failures: list[str] = []

        def reads(n: int) -> None:
            with httpx.Client(timeout=15) as client:
                for _ in range(40):
                    answer = client.get(f"{k.base()}/{path}", headers={**k.headers("alpha-portal"),
                                                                       "X-Trace-Id": f"{marker}-{n}"})
                    if answer.status_code != 200:
                        failures.append(f"read {answer.status_code}")

        def tokens() -> None:
            for _ in range(10):
                answer = k.request_token("alpha-epd")
                if answer.status_code != 200:
                    failures.append(f"token {answer.status_code} {answer.text[:100]}")

        def launches() -> None:
            for _ in range(3):
                launch = Launch(k, f"Patient/{person['id']}", world["task"]["id"])
                if launch.exchange(launch.code(PATIENT_USER[0])).status_code != 200:
                    failures.append("launch")

        def guarded(work, *args) -> None:
            try:
                work(*args)
            except Exception as exc:  # noqa: BLE001  reported through `failures`
                failures.append(f"{work.__name__}: {exc!r}")

        threads = [threading.Thread(target=guarded, args=(reads, n)) for n in range(3)]
        threads += [threading.Thread(target=guarded, args=(tokens,)), threading.Thread(target=guarded,
                                                                                      args=(launches,))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        for n in range(3):
            stored = k.audit_events(traceId=f"{marker}-{n}")
            assert len(stored) == 40 and {e["subtype"][0]["code"] for e in stored} == {"read"}


def test_a_closed_audit_log_leaves_its_database_alone():
    app = create_app()
    services = app.state.kt2
    services.close()
    services.audit.record(ALPHA, {"resourceType": "AuditEvent"})   # raised ProgrammingError (closed db) before
    services.audit.flush()
    services.audit.close()                                          # twice is fine


# -- everything the voorziening writes itself is valid KT2 ------------------------------------------------
def test_every_resource_the_voorziening_writes_is_valid_kt2(make_kt2):
    with make_kt2(settings={"notification_attempts": 1}) as k:
        person = k.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
        world = k.world()
        dead = k.create("alpha-portal", subscription(f"Patient?_id={person['id']}", "http://127.0.0.1:9/dead"))
        k.put("alpha-portal", f"Patient/{person['id']}", updated(person, active=False), version="1")
        launch = Launch(k, f"Patient/{person['id']}", world["task"]["id"])
        assert launch.exchange(launch.code(PATIENT_USER[0])).status_code == 200
        stranger = Launch(k, f"Patient/{world['patient']['id']}", world["task"]["id"])
        assert k.http.get(stranger.login(PATIENT_USER[0])).status_code == 403
        assert Launch(k, f"Patient/{person['id']}", world["task"]["id"]).authorize(scope="x").status_code == 302
        _introspect(k, APPS["alpha-portal"].hti(APPS["alpha-module"], f"Patient/{person['id']}",
                                                f"Task/{world['task']['id']}"), uuid.uuid4().hex)
        _introspect(k, "garbage", uuid.uuid4().hex)
        k.http.get(f"{k.base()}/Patient")                                   # anonymous: 401
        k.http.get(f"{k.base()}/metadata")
        k.delete("alpha-portal", "AuditEvent/x")                            # 405
        k.get("alpha-portal", "Patient?unknown=1")                          # 400
        k.http.post(k.token_url(), data={"grant_type": "password"})
        deadline = time.monotonic() + 5
        while k.get("alpha-portal", f"Subscription/{dead['id']}").json()["status"] != "error":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        k.services.audit.flush()
        rows = k.ctx.store.all("SELECT v.rtype, v.body FROM fhir_versions v JOIN fhir_current c ON "
                               "c.domain=v.domain AND c.rtype=v.rtype AND c.id=v.id AND c.version=v.version "
                               "WHERE c.deleted=0")
        kinds: set[tuple[str, str]] = set()
        for rtype, body in rows:
            resource = json.loads(body)
            result = validate_resource(resource, kt=2)
            assert result.ok, (rtype, result.to_text(), resource)
            if rtype == "AuditEvent":
                kinds.add((resource["type"]["code"], resource["outcome"]))
            elif rtype in ("Device", "Subscription"):
                kinds.add((rtype, resource["status"]))
        assert {("rest", "0"), ("rest", "4"), ("transmit", "4"), ("110114", "0"), ("110114", "8"),
                ("Device", "active"), ("Device", "inactive"), ("Subscription", "error")} <= kinds, kinds


def test_a_change_the_voorziening_makes_itself_names_its_own_device_as_trigger():
    """Devices the domain admin writes notify Subscriptions like any change; the transmit AuditEvent's first
    agent is then the voorziening's Device, not an anonymous caller."""
    app = create_app()
    services = app.state.kt2
    try:
        triggers = []
        services.notifier.changed = triggers.append
        device = services.ctx.fhir.read(ALPHA, f"Device/ktbench-voorziening-{ALPHA}")
        services.ctx.fhir.update(ALPHA, {**device, "status": "inactive"})
        assert [(t.rtype, t.device) for t in triggers] == [("Device", f"Device/ktbench-voorziening-{ALPHA}")]
        event = transmit_event(trigger_device=triggers[0].device, subscriber="Device/b", endpoint="https://h/x",
                               resource_ref="Device/x/_history/2", rtype="Device", subscription_id="s",
                               criteria="Device?", success=True, description=None, site="h",
                               observer=f"Device/ktbench-voorziening-{ALPHA}", trace=TraceIds("r", "t"),
                               recorded="2026-01-01T00:00:00.000Z")
        assert event["agent"][0]["who"] == {"reference": f"Device/ktbench-voorziening-{ALPHA}", "type": "Device"}
        assert validate_resource(event, kt=2).ok
    finally:
        services.close()


# -- subscription narrowing stays with the subscriber -----------------------------------------------------
@pytest.fixture
def receiver():
    hook = Receiver()
    with running_asgi(hook.asgi(), name="hook") as server:
        hook.url = server.url
        yield hook


def test_a_beheerportaal_editing_a_subscription_does_not_widen_what_its_subscriber_hears(kt2, receiver):
    """The module reads only its own AuditEvents (R:OWN).  When the Beheerportaal (CRUD:ALL on Subscription,
    R:ALL on AuditEvent) updates the module's Subscription, notifications must still be narrowed by the
    module's scope, and the transmit event still names the module as subscriber (KT2-SUB-NARROWING)."""
    marker = uuid.uuid4().hex
    criteria = f"AuditEvent?subtype=urn:ktbench:{marker}|start"
    sub = kt2.create("alpha-module", subscription(criteria, f"{receiver.url}/{marker}"))
    edited = kt2.put("alpha-beheer", f"Subscription/{sub['id']}", updated(sub, reason="edited by beheer"),
                     version="1")
    assert edited.status_code == 200, edited.text

    def event(device: str) -> dict:
        body = client_audit_event(device)
        body["subtype"] = [{"system": f"urn:ktbench:{marker}", "code": "start"}]
        return body

    assert kt2.post("alpha-portal", "AuditEvent", event("Device/alpha-portal")).status_code == 201
    time.sleep(0.3)
    assert receiver.received == []                     # the portal's AuditEvent is not the module's to know of
    own = kt2.post("alpha-module", "AuditEvent", event("Device/alpha-module"))
    assert own.status_code == 201
    assert len(receiver.wait(1)) == 1
    # the transmit AuditEvent is recorded once the delivery has been answered: a moment after the receiver got it
    deadline = time.monotonic() + 3
    while True:
        transmit = [e for e in kt2.audit_events(entity=f"Subscription/{sub['id']}")
                    if e["type"]["code"] == "transmit"]
        if transmit or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [e["agent"][1]["who"]["reference"] for e in transmit] == ["Device/alpha-module"]

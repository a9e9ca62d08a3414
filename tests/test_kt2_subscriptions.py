"""Subscriptions and notifications: matching criteria, headers and trace ids, transmit AuditEvents, retries and
the error status, narrowing, no cross-domain and no delete notifications, https with a trusted CA
(KT2-SUB-*, KT2-AUDIT-TRANSMIT, KT2-TRACE-CORRELATION)."""

from __future__ import annotations

import base64
import time
import uuid

import pytest
from kt2_support import (  # noqa: F401
    KT,
    Receiver,
    client_audit_event,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    subscription,
    updated,
)

from ktbench.validation import validate_resource
from simulators.common.host import ServerTls, running_asgi
from simulators.common.tls import TestCertificateAuthority
from simulators.kt2.fhir.subscriptions import NOTIFY_CONTENT_TYPE


@pytest.fixture
def receiver():
    hook = Receiver()
    with running_asgi(hook.asgi(), name="hook") as server:
        hook.url = server.url
        yield hook


def _subscribe(kt2, client: str, criteria: str, url: str, *headers: str) -> dict:
    return kt2.create(client, subscription(criteria, url, headers))


def _read(kt2, client: str, path: str) -> dict:
    return kt2.get(client, path).json()


def test_matching_update_is_notified_with_headers(kt2, receiver):
    world = kt2.world()
    marker = uuid.uuid4().hex
    sub = _subscribe(kt2, "alpha-portal", f"Task?status=completed&_id={world['task']['id']}",
                     f"{receiver.url}/hook/{marker}", "X-KTSubscription: TaskCompleted")
    task = world["task"]
    kt2.put("alpha-module", f"Task/{task['id']}", updated(task, status="in-progress"), version="1")
    time.sleep(0.2)
    assert receiver.received == []
    rid = uuid.uuid4().hex
    answer = kt2.put("alpha-module", f"Task/{task['id']}", updated(task, status="completed"), version="2",
                     **{"X-Request-Id": rid, "X-Trace-Id": "trace-" + rid})
    assert answer.status_code == 200
    got = receiver.wait(1)
    assert len(got) == 1
    note = got[0]
    assert note.body == b"" and note.path == f"/hook/{marker}"
    assert note.headers["content-type"] == NOTIFY_CONTENT_TYPE
    assert note.headers["x-ktsubscription"] == "TaskCompleted"
    assert note.headers["x-correlation-id"] == rid
    assert note.headers["x-trace-id"] == "trace-" + rid
    assert note.headers["x-request-id"] not in (rid, "trace-" + rid)
    kt2.services.audit.flush()
    time.sleep(0.05)
    events = kt2.audit_events(requestId=note.headers["x-request-id"])
    assert len(events) == 1
    event = events[0]
    assert validate_resource(event, kt=2).ok
    assert event["type"]["code"] == "transmit" and event["outcome"] == "0" and event["action"] == "E"
    assert event["agent"][0]["who"]["reference"] == "Device/alpha-module"
    assert event["agent"][1]["who"]["reference"] == "Device/alpha-portal"
    assert event["agent"][1]["network"] == {"address": f"{receiver.url}/hook/{marker}", "type": "5"}
    assert event["entity"][0]["what"]["reference"] == f"Task/{task['id']}/_history/3"
    assert event["entity"][1]["what"]["reference"] == f"Subscription/{sub['id']}"
    assert base64.b64decode(event["entity"][1]["query"]).decode() == sub["criteria"]
    correlation = next(e["valueId"] for e in event["extension"] if e["url"] == KT + "correlation-id")
    assert correlation == rid


def test_create_is_notified_and_delete_is_not(kt2, receiver):
    family = f"S{uuid.uuid4().hex[:8]}"
    _subscribe(kt2, "alpha-epd", f"Patient?family={family}", receiver.url + "/p")
    created = kt2.create("alpha-portal", patient(family=family))
    assert len(receiver.wait(1)) == 1
    kt2.delete("alpha-portal", f"Patient/{created['id']}")
    time.sleep(0.3)
    assert len(receiver.received) == 1


def test_no_notification_across_domains(kt2, receiver):
    family = f"D{uuid.uuid4().hex[:8]}"
    _subscribe(kt2, "alpha-portal", f"Patient?family={family}", receiver.url + "/x")
    kt2.create("beta-portal", patient(family=family))
    time.sleep(0.3)
    assert receiver.received == []


def test_notifications_respect_the_subscribers_read_scope(kt2, receiver):
    marker = uuid.uuid4().hex
    _subscribe(kt2, "alpha-module", "AuditEvent?entity=Device/alpha-module&action=E", receiver.url + "/" + marker)
    event = client_audit_event()
    assert kt2.post("alpha-portal", "AuditEvent", event).status_code == 201   # origin portal: module may not read
    time.sleep(0.3)
    assert receiver.received == []
    assert kt2.post("alpha-module", "AuditEvent", event).status_code == 201
    assert len(receiver.wait(1)) == 1


def test_failed_deliveries_are_retried_audited_and_set_status_error(kt2, receiver):
    family = f"F{uuid.uuid4().hex[:8]}"
    receiver.statuses = [500, 503]
    sub = _subscribe(kt2, "alpha-epd", f"Patient?family={family}", receiver.url + "/fail")
    created = kt2.create("alpha-portal", patient(family=family))
    got = receiver.wait(2)
    assert len(got) == 2 and got[0].headers["x-request-id"] != got[1].headers["x-request-id"]
    deadline = time.monotonic() + 5
    while _read(kt2, "alpha-epd", f"Subscription/{sub['id']}")["status"] != "error" and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = _read(kt2, "alpha-epd", f"Subscription/{sub['id']}")
    assert failed["status"] == "error" and "HTTP 503" in failed["error"]
    for note in got:
        event = kt2.audit_events(requestId=note.headers["x-request-id"])[0]
        assert event["outcome"] == "4" and "Failed to deliver" in event["outcomeDesc"]
    kt2.put("alpha-portal", f"Patient/{created['id']}", updated(created, active=False), version="1")
    receiver.wait(3)
    deadline = time.monotonic() + 5
    while _read(kt2, "alpha-epd", f"Subscription/{sub['id']}")["status"] != "active" and time.monotonic() < deadline:
        time.sleep(0.05)
    recovered = _read(kt2, "alpha-epd", f"Subscription/{sub['id']}")
    assert recovered["status"] == "active" and "error" not in recovered


def test_unreachable_endpoint_does_not_fail_the_request(kt2):
    family = f"U{uuid.uuid4().hex[:8]}"
    _subscribe(kt2, "alpha-epd", f"Patient?family={family}", "http://127.0.0.1:9/nothing")
    started = time.monotonic()
    assert kt2.post("alpha-portal", "Patient", patient(family=family)).status_code == 201
    assert time.monotonic() - started < 1.0


def test_slow_receivers_do_not_block_the_trigger(kt2, receiver):
    family = f"L{uuid.uuid4().hex[:8]}"
    receiver.delay = 1.0
    _subscribe(kt2, "alpha-epd", f"Patient?family={family}", receiver.url + "/slow")
    started = time.monotonic()
    assert kt2.post("alpha-portal", "Patient", patient(family=family)).status_code == 201
    assert time.monotonic() - started < 0.8
    assert len(receiver.wait(1)) == 1


def test_switched_off_subscription_is_not_notified(kt2, receiver):
    family = f"O{uuid.uuid4().hex[:8]}"
    sub = _subscribe(kt2, "alpha-epd", f"Patient?family={family}", receiver.url + "/off")
    off = kt2.put("alpha-epd", f"Subscription/{sub['id']}", updated(sub, status="off"), version="1")
    assert off.status_code == 200 and off.json()["status"] == "off"
    kt2.create("alpha-portal", patient(family=family))
    time.sleep(0.3)
    assert receiver.received == []


def test_https_endpoint_with_a_trusted_ca(make_kt2, tmp_path):
    ca = TestCertificateAuthority(tmp_path / "ca")
    cert = ca.server_certificate()
    hook = Receiver()
    with running_asgi(hook.asgi(), tls=ServerTls(cert.cert_file, cert.key_file), name="tls-hook") as server:
        with make_kt2(settings={"trusted_ca_file": str(ca.ca_file),
                                "allow_loopback_http_subscriptions": False}) as k:
            family = f"T{uuid.uuid4().hex[:8]}"
            sub = k.create("alpha-epd", subscription(f"Patient?family={family}", server.url + "/secure"))
            k.create("alpha-portal", patient(family=family))
            assert len(hook.wait(1)) == 1
            assert k.get("alpha-epd", f"Subscription/{sub['id']}").json()["status"] == "active"
        with make_kt2(settings={"allow_loopback_http_subscriptions": False}) as untrusting:
            family = f"V{uuid.uuid4().hex[:8]}"
            sub = untrusting.create("alpha-epd", subscription(f"Patient?family={family}", server.url + "/secure"))
            untrusting.create("alpha-portal", patient(family=family))
            deadline = time.monotonic() + 5
            status = None
            while time.monotonic() < deadline:
                status = untrusting.get("alpha-epd", f"Subscription/{sub['id']}").json()
                if status["status"] == "error":
                    break
                time.sleep(0.05)
            assert status["status"] == "error" and ("SSL" in status["error"] or "certificate" in status["error"])
            assert len(hook.received) == 1

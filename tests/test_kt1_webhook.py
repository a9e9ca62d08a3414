"""KT1 server: webhook notifications when a message is queued for an application (kt1-protocol §7 "notifications").

An empty POST to the application's configured URL with the headers
`Category`, `KoppeltaalMessageIdentifier` and `X-Koppeltaal-Secret`; retried
on failure, at most five attempts.  A small receiver on 127.0.0.1 plays the
application and fails as often as a test tells it to.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kt1_builders import Kt1World
from kt1_support import kt1, write_data  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

SECRET = "hook-secret-for-tests"


class Receiver:
    """Records every webhook call; answers 500 to the first `fail_first` calls per path, then 204."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    receiver.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    failing = sum(c["path"] == self.path for c in receiver.calls) <= receiver.fail_first
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.calls) < n:
            time.sleep(0.01)
        return list(self.calls)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[Receiver] = []

    def make(fail_first: int = 0) -> Receiver:
        made.append(Receiver(fail_first))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _serve_with_hooks(kt1, tmp_path, hooks: dict[str, str], **server) -> None:
    apps = {app_id: {"webhook_url": url, "webhook_secret": SECRET} for app_id, url in hooks.items()}
    kt1.use(write_data(tmp_path, server={"webhook_retry_delay_seconds": 0.02, **server}, apps=apps))


def _send_careplan(kt1, seed=80) -> str:
    world = Kt1World(seed=seed)
    bundle = world.careplan_message(*world.careplan_set())
    kt1.send(bundle)
    return bundle["entry"][0]["content"]["identifier"]


def test_webhook_is_an_empty_post_with_the_koppeltaal_headers(kt1, tmp_path, receiver_factory):
    receiver = receiver_factory()
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": receiver.url + "/module"})
    identifier = _send_careplan(kt1)
    calls = receiver.wait_for(1)
    assert len(calls) == 1
    call = calls[0]
    assert call["path"] == "/module"
    assert call["headers"]["Category"] == "CreateOrUpdateCarePlan"
    assert call["headers"]["KoppeltaalMessageIdentifier"] == identifier
    assert call["headers"]["X-Koppeltaal-Secret"] == SECRET
    assert call["body"] == b""


def test_webhook_only_for_applications_the_message_is_queued_for(kt1, tmp_path, receiver_factory):
    receiver = receiver_factory()
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": receiver.url + "/module",
                                      "ktbench-observer": receiver.url + "/observer",
                                      "ktbench-beta-module": receiver.url + "/beta"})
    _send_careplan(kt1)  # observer is not subscribed to CarePlans, beta is another domain
    time.sleep(0.3)
    assert [c["path"] for c in receiver.wait_for(1)] == ["/module"]


def test_no_webhook_for_a_refused_message(kt1, tmp_path, receiver_factory):
    receiver = receiver_factory()
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": receiver.url + "/module"})
    world = Kt1World(seed=81)
    patient = world.patient()
    patient.version = "2000-01-01T00:00:00:000.0000"  # invented version: 409
    assert kt1.post_message(world.patient_message(patient)).status_code == 409
    time.sleep(0.3)
    assert receiver.calls == []


@pytest.mark.parametrize("failures, attempts", [(0, 1), (2, 3), (4, 5), (99, 5)])
def test_webhook_retries_failures_at_most_five_attempts(kt1, tmp_path, receiver_factory, failures, attempts):
    receiver = receiver_factory(fail_first=failures)
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": receiver.url + "/module"})
    _send_careplan(kt1)
    receiver.wait_for(attempts)
    time.sleep(0.35)  # longer than the remaining back-off: no further attempt may come
    assert len(receiver.calls) == attempts
    record = kt1.app.state.notifier.deliveries[0]
    assert record.attempts == attempts
    assert record.delivered == (failures < 5)


def test_webhook_attempt_limit_comes_from_the_data_file(kt1, tmp_path, receiver_factory):
    receiver = receiver_factory(fail_first=99)
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": receiver.url + "/module"}, webhook_attempts=2)
    _send_careplan(kt1)
    receiver.wait_for(2)
    time.sleep(0.2)
    assert len(receiver.calls) == 2


def test_unreachable_webhook_gives_up_after_five_attempts(kt1, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"  # closed again before use: connection refused
    _serve_with_hooks(kt1, tmp_path, {"ktbench-module": dead})
    _send_careplan(kt1)
    deadline = time.monotonic() + 5
    notifier = kt1.app.state.notifier
    while time.monotonic() < deadline and not (notifier.deliveries and len(notifier.deliveries[0].statuses) == 5):
        time.sleep(0.02)
    record = notifier.deliveries[0]
    assert record.attempts == 5 and not record.delivered
    assert all(isinstance(s, str) for s in record.statuses)  # transport errors, not HTTP statuses

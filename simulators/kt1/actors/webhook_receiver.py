"""A webhook receiver for KT1.3 notifications, run by the bench on 127.0.0.1.

A KT1 server tells an application that a message waits by POSTing an empty
body to the application's webhook URL with the headers `Category` (the
event), `KoppeltaalMessageIdentifier` (MessageHeader.identifier) and
`X-Koppeltaal-Secret` (a secret shared with that application).  The receiver
records each call - never the secret itself, only whether it matched - and
answers queries so scenarios in any process (pytest-xdist workers) can ask
"was the module notified of message X?":

    POST <url>/hook/<app id>            a notification (what the server calls)
    GET  <url>/received[?identifier=X]  JSON list of recorded notifications
"""

from __future__ import annotations

import hmac
import json
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Notification:
    app: str
    method: str
    category: str | None
    identifier: str | None
    secret_present: bool
    secret_matches: bool
    body_length: int
    content_type: str | None


class WebhookReceiver:
    """Thread-backed HTTP receiver; use as a context manager or call start()/stop()."""

    def __init__(self, secrets: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self._secrets = dict(secrets or {})     # app id -> expected X-Koppeltaal-Secret
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<WebhookReceiver {self.url} received={len(self._received)}>"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def hook_url(self, app_id: str) -> str:
        return f"{self.url}/hook/{app_id}"

    def expect_secret(self, app_id: str, secret: str) -> None:
        self._secrets[app_id] = secret

    def received(self, identifier: str | None = None) -> list[Notification]:
        with self._lock:
            return [n for n in self._received if identifier is None or n.identifier == identifier]

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name=f"webhook-receiver-{self.url}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ------------------------------------------------------------------------------------------
    def _record(self, note: Notification) -> None:
        with self._lock:
            self._received.append(note)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return  # quiet: the scenario reports what matters

            def _reply(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                if len(segments) != 2 or segments[0] != "hook":
                    self._reply(404, {"error": "POST /hook/<app id>"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                app = segments[1]
                given = self.headers.get("X-Koppeltaal-Secret")
                expected = receiver._secrets.get(app)
                matches = (given is not None and expected is not None
                           and hmac.compare_digest(given.encode(), expected.encode()))
                receiver._record(Notification(
                    app=app, method="POST", category=self.headers.get("Category"),
                    identifier=self.headers.get("KoppeltaalMessageIdentifier"),
                    secret_present=given is not None, secret_matches=matches, body_length=len(body),
                    content_type=self.headers.get("Content-Type")))
                self._reply(200, {"received": True})

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                parts = urlsplit(self.path)
                if parts.path.rstrip("/") != "/received":
                    self._reply(404, {"error": "GET /received[?identifier=X]"})
                    return
                query = parse_qs(parts.query)
                identifier = query.get("identifier", [None])[0]
                self._reply(200, [asdict(n) for n in receiver.received(identifier)])

        return Handler

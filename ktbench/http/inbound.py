"""Inbound recording: the bench as the server, the application under test as the client.

When an application is the target, the verdict comes from what it sends to the bench's reference servers.
`RecordingMiddleware` wraps a server's ASGI app and keeps every request with its answer in an `InboundLog`;
a step that has asked the application to act waits for the exchange it expects (`InboundLog.wait_for`, with a
timeout: the bench waits for the application, nobody presses "resume") and then publishes what arrived
(`publish`) on the scenario's event stream, from the step's own thread, so the exchanges land on that step in
the report and live validation judges them with the sender-keyed rule: the application's requests are the
target's messages, the bench server's answers its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktbench.core.errors import BenchError
from ktbench.core.events import EventStream, HttpExchange
from ktbench.core.redact import Redactor

ASGIApp = Callable[..., Any]


class NoTraffic(BenchError):
    """The application did not send what the scenario waited for: broken (it was not tested), not failed."""


@dataclass(frozen=True)
class InboundExchange:
    seq: int
    method: str
    path: str
    query: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    received: float = field(default_factory=time.time)

    @property
    def url(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def header(self, name: str, *, response: bool = False) -> str | None:
        lname = name.lower()
        headers = self.response_headers if response else self.request_headers
        return next((v for k, v in headers if k.lower() == lname), None)


class InboundLog:
    """Every exchange a recorded server handled, in order; thread-safe (servers run in their own threads)."""

    def __init__(self) -> None:
        self._items: list[InboundExchange] = []
        self._cond = threading.Condition()

    def record(self, **fields: Any) -> InboundExchange:
        with self._cond:
            item = InboundExchange(seq=len(self._items), **fields)
            self._items.append(item)
            self._cond.notify_all()
            return item

    def mark(self) -> int:
        """A position: `since(mark)` and `wait_for(..., after=mark)` see only what arrives from here on."""
        with self._cond:
            return len(self._items)

    def since(self, mark: int = 0) -> list[InboundExchange]:
        with self._cond:
            return list(self._items[mark:])

    def wait_for(self, predicate: Callable[[InboundExchange], bool], *, timeout: float, what: str,
                 after: int = 0) -> InboundExchange:
        """The first exchange from `after` on that matches; NoTraffic naming `what` when none came in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self._items[after:]:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoTraffic(f"no traffic within {timeout:g} s: the application did not {what}")
                self._cond.wait(left)


class RecordingMiddleware:
    """ASGI middleware: each HTTP request and its answer into `log` (bodies whole; redaction comes later)."""

    def __init__(self, app: ASGIApp, log: InboundLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        answer: dict[str, Any] = {"status": 0, "headers": (), "body": bytearray()}

        async def receiving() -> dict[str, Any]:
            message = await receive()
            if message.get("type") == "http.request":
                body.extend(message.get("body", b""))
            return message

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = tuple((k.decode("latin-1"), v.decode("latin-1"))
                                          for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body":
                answer["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            self.log.record(
                method=scope.get("method", ""), path=scope.get("path", ""),
                query=(scope.get("query_string") or b"").decode("latin-1"),
                request_headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())),
                request_body=bytes(body), status=answer["status"], response_headers=answer["headers"],
                response_body=bytes(answer["body"]))


def publish(items: list[InboundExchange], events: EventStream, redactor: Redactor, *, base: str = "",
            role: str | None = None) -> None:
    """Emit recorded exchanges as HttpExchange events (redacted), on the caller's thread.

    Live validation, subscribed to the stream, then judges the application's requests as the target's
    messages (see ktbench.runner.verdict).
    """
    for item in items:
        request_body = redactor.body(item.request_body, item.header("content-type"))
        response_body = redactor.body(item.response_body, item.header("content-type", response=True))
        events.emit(HttpExchange(
            method=item.method, url=redactor.text(base + item.url), status=item.status or None,
            request_headers=redactor.headers(item.request_headers), request_body=request_body,
            response_headers=redactor.headers(item.response_headers), response_body=response_body,
            role=role))

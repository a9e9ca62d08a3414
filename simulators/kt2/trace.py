"""Trace headers (kt2-protocol.md §4.6): X-Request-Id, X-Correlation-Id and X-Trace-Id on every exchange.

A pure ASGI middleware in front of every route: it takes the client's X-Request-Id (or mints a UUID when
absent or unusable), keeps its X-Trace-Id (or mints one: the chain starts here) and its X-Correlation-Id,
puts them in `scope["state"]["trace"]` for the handlers (AuditEvents and notifications carry them), and
answers with X-Request-Id and X-Trace-Id (plus X-Correlation-Id when the client sent one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulators.kt2.ids import new_uuid

# A FHIR `id` (the AuditEvent trace extensions are valueId): no spaces, no header tricks.  A client value that
# is no FHIR id is replaced as if it were absent, so every AuditEvent the voorziening writes stays valid.
_USABLE = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


@dataclass(frozen=True)
class TraceIds:
    request_id: str
    trace_id: str
    correlation_id: str | None = None

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-request-id", self.request_id.encode()), (b"x-trace-id", self.trace_id.encode())]
        if self.correlation_id:
            headers.append((b"x-correlation-id", self.correlation_id.encode()))
        return headers

    def child(self) -> TraceIds:
        """The ids of a request this one causes (a notification): new request id, same trace, correlated."""
        return TraceIds(request_id=new_uuid(), trace_id=self.trace_id, correlation_id=self.request_id)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            try:
                text = value.decode("ascii").strip()
            except UnicodeDecodeError:
                return None
            return text if _USABLE.match(text) else None
    return None


def trace_of(scope_or_request: Any) -> TraceIds:
    """The trace ids of a request (Starlette Request or ASGI scope)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    trace = scope.get("state", {}).get("trace")
    if trace is None:  # not behind the middleware (unit tests of one handler)
        trace = TraceIds(new_uuid(), new_uuid())
    return trace


class TraceMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        trace = TraceIds(
            request_id=_header(headers, b"x-request-id") or new_uuid(),
            trace_id=_header(headers, b"x-trace-id") or new_uuid(),
            correlation_id=_header(headers, b"x-correlation-id"),
        )
        scope.setdefault("state", {})["trace"] = trace

        async def send_with_ids(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in trace.response_headers() if h[0] not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_ids)

"""Record the session as evidence: a mitmproxy flow file and/or a HAR file.

A finding is only as good as the exchange it points at, so every flow that
crossed the proxy is kept, under the same flow id the findings file uses.  The
recording is a *redacted copy*: Authorization/Cookie headers keep only their
scheme, OAuth codes and tokens in query strings, form bodies, JSON bodies and
Location headers are blanked (see `ktbench.core.redact`).  The live flow is never
modified - only its serialised state is read on the event loop, right after
the response has been sent on; rebuilding, redacting and writing happen in a
background thread, so recording does not delay responses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from pathlib import Path
from typing import IO

from mitmproxy import http, io
from mitmproxy.addons.savehar import SaveHar

from ktbench.proxy.fhir_filter import is_fhir
from ktbench.core.redact import SENSITIVE_FIELDS, SENSITIVE_HEADERS, Redactor

log = logging.getLogger(__name__)

REDACTED_KEY = "ktbench.redacted"
_URL_HEADERS = frozenset({"location", "content-location", "referer"})  # may carry codes/tokens
_QUERYISH = tuple(f"{name}=".encode() for name in SENSITIVE_FIELDS)
_JSONISH = tuple(f'"{name}"'.encode() for name in SENSITIVE_FIELDS)
_STOP = object()


def _redact_headers(headers: http.Headers, redactor: Redactor) -> None:
    for name in {n.lower() for n in headers.keys()}:
        if name in SENSITIVE_HEADERS or name in _URL_HEADERS:
            values = headers.get_all(name)
            headers.set_all(name, [redactor.header_value(name, v) for v in values])


def _redact_body(message: http.Message, redactor: Redactor) -> None:
    raw = message.raw_content
    if not raw:
        return
    content_type = message.headers.get("content-type", "").lower()
    try:
        content = message.get_content(strict=False) or b""
    except ValueError:
        return
    if "x-www-form-urlencoded" in content_type:
        if not any(marker in content for marker in _QUERYISH):
            return
        text = content.decode("utf-8", "replace")
        redacted = redactor.query(text)
        if redacted != text:
            message.content = redacted.encode("utf-8")
    elif "json" in content_type:
        if not any(marker in content for marker in _JSONISH):
            return
        try:
            data = json.loads(content)
        except ValueError:
            return
        redacted_data = redactor.json(data)
        if redacted_data != data:
            message.content = json.dumps(redacted_data, ensure_ascii=False).encode("utf-8")


def redact_flow(flow: http.HTTPFlow, redactor: Redactor) -> http.HTTPFlow:
    """Redact secrets in `flow` in place (call it on a copy!) and return it."""
    request = flow.request
    _redact_headers(request.headers, redactor)
    if "?" in request.path or "@" in request.path:
        redacted_path = redactor.url(request.path)
        if redacted_path != request.path:
            request.path = redacted_path
    _redact_body(request, redactor)
    if flow.response is not None:
        _redact_headers(flow.response.headers, redactor)
        _redact_body(flow.response, redactor)
    flow.metadata[REDACTED_KEY] = True
    return flow


class FlowRecorder:
    """Writes redacted copies of finished flows to a flow file (streamed) and/or a HAR file (at shutdown)."""

    def __init__(self, flows_path: str | Path | None = None, har_path: str | Path | None = None,
                 *, only_fhir: bool = False, redactor: Redactor | None = None) -> None:
        self.flows_path = Path(flows_path) if flows_path else None
        self.har_path = Path(har_path) if har_path else None
        self.only_fhir = only_fhir
        self.redactor = redactor or Redactor()
        self.recorded = 0
        self._har_flows: list[http.HTTPFlow] = []
        self._later: list[http.HTTPFlow] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._fh: IO[bytes] | None = None
        self._writer: io.FlowWriter | None = None

    @property
    def enabled(self) -> bool:
        return self.flows_path is not None or self.har_path is not None

    def _start(self) -> None:
        if self._thread is not None or not self.enabled:
            return
        if self.flows_path is not None:
            self.flows_path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.flows_path.open("wb")
            self._writer = io.FlowWriter(self._fh)
        self._thread = threading.Thread(target=self._run, name="ktbench-recorder", daemon=True)
        self._thread.start()

    def running(self) -> None:
        self._start()

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None:  # flows with a response were recorded in `response`
            self._record(flow)

    def _record(self, flow: http.HTTPFlow) -> None:
        if not self.enabled or (self.only_fhir and not is_fhir(flow)):
            return
        self._start()
        self._later.append(flow)
        if len(self._later) == 1:
            # Snapshot right after mitmproxy has sent the response on, not while the client waits.
            asyncio.get_running_loop().call_soon(self._snapshot)

    def _snapshot(self) -> None:
        later, self._later = self._later, []
        for flow in later:
            self._queue.put(flow.get_state())  # a snapshot; the live flow is not touched

    def _run(self) -> None:
        while True:
            state = self._queue.get()
            if state is _STOP:
                return
            try:
                copy = redact_flow(http.HTTPFlow.from_state(state), self.redactor)
                if self._writer is not None:
                    self._writer.add(copy)
                    assert self._fh is not None
                    self._fh.flush()
                if self.har_path is not None:
                    self._har_flows.append(copy)
                self.recorded += 1
            except Exception:  # recording must never take the proxy down
                log.exception("ktbench: could not record a flow")

    def done(self) -> None:
        self._snapshot()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=60)
            self._thread = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.har_path is not None:
            self.har_path.parent.mkdir(parents=True, exist_ok=True)
            har = SaveHar().make_har(self._har_flows)
            self.har_path.write_text(json.dumps(har, indent=1), encoding="utf-8")

"""The HTTP client layer: every request the bench sends becomes a redacted `HttpExchange` event.

One `RecordingClient` (wrapping one `httpx.Client`, which costs ~30 ms to
create and keeps connections alive) serves a whole pytest session.  Steps and
simulated actors call it like httpx; the client:

* redacts the exchange (ktbench.core.redact) and emits it on the event stream, where
  the Allure writer attaches it to the running step;
* optionally hands each JSON/XML request and response body of a FHIR endpoint
  to the validator and emits each verdict as `ValidationReported` (live
  validation of all traffic; `direction` says which side), after the run's
  policy (`finding_policy`, see ktbench.validation_policy) had its say;
* turns transport errors (connection refused, DNS, timeouts) into
  `TargetUnreachable`, a `BenchError`, so the scenario is reported BROKEN - we
  could not test, the target did not fail a check;
* remembers origins that refused connections and fails further requests to them
  at once (unless `keep_going`), so a dead target gives a complete report of
  broken scenarios in seconds instead of one timeout per request.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from ktbench.core.errors import BenchError
from ktbench.core.events import EventStream, Finding, HttpExchange, ValidationReported
from ktbench.core.redact import Redactor
from ktbench.http.auth import BearerAuth
from ktbench.targets.model import BasicCredential

__all__ = ["BearerAuth", "BenchError", "RecordingClient", "TargetUnreachable", "json_dict", "origin_of"]

MAX_BODY_CHARS = 256_000
_VALIDATED_TYPES = ("json", "xml")

# A validator takes the raw body and its content type and returns an object with `.ok` and `.findings`
# (ktbench.validation.validate_bytes has this shape).
Validator = Callable[[bytes, str | None], Any]
# A finding policy maps each finding to the one the run reports (another severity), or None to leave it out.
FindingPolicy = Callable[[Finding], Finding | None]


class TargetUnreachable(BenchError):
    """The target could not be reached (connection refused, DNS failure, timeout)."""


def is_fhir_url(url: str) -> bool:
    """Live validation applies to FHIR endpoints only (not OAuth token or launch responses, nor the SMART
    discovery document a FHIR base serves under .well-known)."""
    path = urlsplit(url).path.lower() + "/"
    return "/fhir/" in path and "/.well-known/" not in path


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class _RedactingLogFilter(logging.Filter):
    """httpx/httpcore log full URLs at INFO/DEBUG; redact them before any handler (or report) sees them."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - malformed log call
            return True
        record.msg = self.redactor.text(message)
        record.args = ()
        return True


class RecordingClient:
    """An httpx client whose every exchange is redacted and emitted as an event."""

    def __init__(
        self,
        events: EventStream,
        *,
        redactor: Redactor | None = None,
        timeout: float = 10.0,
        verify: bool | str | ssl.SSLContext = True,
        cert: tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        validator: Validator | None = None,
        validate_url: Callable[[str], bool] | None = None,
        keep_going: bool = False,
        max_body_chars: int = MAX_BODY_CHARS,
        finding_policy: FindingPolicy | None = None,
        target_origins: tuple[str, ...] = (),
    ) -> None:
        self.events = events
        # responses from these origins are the target's messages; everything else answering the bench is
        # one of the bench's own simulators (verdicts key on who sent a message, ktbench.runner.verdict)
        self.target_origins = frozenset(origin_of(o) for o in target_origins)
        self.redactor = redactor or Redactor()
        self.validator = validator
        self.finding_policy = finding_policy
        self.validate_url = validate_url or is_fhir_url
        self.keep_going = keep_going
        self.max_body_chars = max_body_chars
        self.exchanges = 0
        self.validation_errors = 0
        self._unreachable: dict[str, str] = {}
        self._http = httpx.Client(timeout=timeout, verify=verify, cert=cert, transport=transport,
                                  follow_redirects=False)
        self._log_filter = _RedactingLogFilter(self.redactor)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._log_filter)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._log_filter)

    def __enter__(self) -> RecordingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RecordingClient exchanges={self.exchanges}>"

    # -- reachability ----------------------------------------------------------------------------
    def probe(self, url: str, timeout: float = 5.0) -> str | None:
        """Check that `url` answers at all (any HTTP status).  Returns None, or why it is unreachable.

        A failed probe marks the origin unreachable (see class docstring).  No event is emitted: the
        probe belongs to no scenario.
        """
        try:
            self._http.get(url, timeout=timeout)
        except httpx.TransportError as exc:
            reason = self._describe(exc)
            self.mark_unreachable(url, reason)
            return reason
        return None

    def mark_unreachable(self, url: str, reason: str) -> None:
        self._unreachable[origin_of(url)] = reason

    def unreachable_reason(self, url: str) -> str | None:
        return self._unreachable.get(origin_of(url))

    @staticmethod
    def _describe(exc: httpx.TransportError) -> str:
        detail = str(exc) or exc.__class__.__name__
        return f"{exc.__class__.__name__}: {detail}"

    # -- requests --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        auth: BasicCredential | httpx.Auth | tuple[str, str] | None = None,
        role: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        validate: bool = True,
    ) -> httpx.Response:
        """Send one request; returns the httpx.Response.  Raises TargetUnreachable on transport errors."""
        method = method.upper()
        if isinstance(auth, BasicCredential):
            role = role or auth.role
            self.redactor.learn(auth.password.reveal())
            self.redactor.learn(auth.client_secret.reveal())
            auth = httpx.BasicAuth(*auth.basic_auth())
        safe_url = self.redactor.url(str(httpx.URL(url, params=params) if params else url))
        if not self.keep_going:
            earlier = self.unreachable_reason(url)
            if earlier is not None:
                raise TargetUnreachable(
                    f"{method} {safe_url}: not attempted, {origin_of(url)} was unreachable earlier in this run "
                    f"({earlier}); use --keep-going to retry every request"
                )
        kwargs: dict[str, Any] = {"headers": headers, "params": params, "json": json, "content": content,
                                  "data": data}
        if auth is not None:
            kwargs["auth"] = auth
        if timeout is not None:
            kwargs["timeout"] = timeout
        started = time.perf_counter()
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            elapsed = time.perf_counter() - started
            reason = self._describe(exc)
            try:
                request: httpx.Request | None = exc.request
            except RuntimeError:
                request = None
            self._emit_exchange(method, safe_url, None, request, None, elapsed, role, reason)
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                self.mark_unreachable(url, reason)
            raise TargetUnreachable(f"{method} {safe_url}: {self.redactor.text(reason)}") from None
        elapsed = time.perf_counter() - started
        self._emit_exchange(method, safe_url, response.status_code, response.request, response, elapsed, role, None)
        if validate and self.validator is not None:
            self._validate(method, safe_url, response)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    # -- events ----------------------------------------------------------------------------------
    def _clip(self, text: str) -> str:
        if len(text) <= self.max_body_chars:
            return text
        return text[: self.max_body_chars] + f"\n... [truncated: {len(text)} characters in total]"

    def _emit_exchange(self, method: str, safe_url: str, status: int | None, request: httpx.Request | None,
                       response: httpx.Response | None, elapsed: float, role: str | None,
                       error: str | None) -> None:
        r = self.redactor
        req_headers: tuple[tuple[str, str], ...] = ()
        req_body = ""
        if request is not None:
            req_headers = r.headers(request.headers.multi_items())
            try:
                req_body = r.body(request.content, request.headers.get("content-type"))
            except httpx.RequestNotRead:  # streamed request bodies are not recorded
                req_body = "<streamed body not recorded>"
        resp_headers: tuple[tuple[str, str], ...] = ()
        resp_body = ""
        if response is not None:
            # the body first: redacting it teaches the redactor any tokens it carries
            resp_body = r.body(response.content, response.headers.get("content-type"))
            resp_headers = r.headers(response.headers.multi_items())
        self.exchanges += 1
        self.events.emit(HttpExchange(
            method=method,
            url=safe_url,
            status=status,
            request_headers=req_headers,
            request_body=self._clip(req_body),
            response_headers=resp_headers,
            response_body=self._clip(resp_body),
            elapsed=elapsed,
            role=role,
            error=r.text(error) if error else None,
        ))

    def _validate(self, method: str, safe_url: str, response: httpx.Response) -> None:
        """Validate what the bench sent and what the target answered (JSON/XML bodies of FHIR endpoints)."""
        if not self.validate_url(str(response.request.url)):
            return
        request = response.request
        try:
            sent = request.content
        except httpx.RequestNotRead:  # a streamed request body was not kept
            sent = b""
        answered_by = "target" if origin_of(str(request.url)) in self.target_origins else "bench"
        self._validate_body("request", f"request {method} {safe_url}", sent,
                            request.headers.get("content-type"), "bench")
        self._validate_body("response", f"response to {method} {safe_url}", response.content,
                            response.headers.get("content-type"), answered_by)

    def _validate_body(self, direction: str, subject: str, body: bytes, content_type: str | None,
                       sender: str) -> None:
        if not body or not any(t in (content_type or "").lower() for t in _VALIDATED_TYPES):
            return
        try:
            result = self.validator(body, content_type)  # type: ignore[misc]
        except Exception as exc:  # a validator crash is reported, not hidden, but does not break the step
            findings: tuple[Finding, ...] = (Finding(
                severity="warning", rule="ktbench.validator-crashed", location="",
                message=f"the validator raised {exc.__class__.__name__}: {exc}"),)
            self.events.emit(ValidationReported(subject=subject, content_type=content_type, ok=False,
                                                findings=findings, direction=direction, sender=sender))
            return
        event = validation_event(subject, content_type, result, self.redactor, policy=self.finding_policy,
                                 direction=direction, sender=sender)
        self.validation_errors += len(event.errors)
        self.events.emit(event)


def validation_event(subject: str, content_type: str | None, result: Any,
                     redactor: Redactor | None = None, *, policy: FindingPolicy | None = None,
                     direction: str = "", sender: str = "") -> ValidationReported:
    """Convert a validator result (anything with `.ok` and `.findings`) to a ValidationReported event.

    A suppressed finding arrives as information (its reason appended to the message); `policy` may then
    change a finding's severity or leave it out, and `ok` is recomputed from what remains.
    """
    redactor = redactor or Redactor()
    findings = []
    for f in getattr(result, "findings", ()) or ():
        severity = getattr(f, "effective_severity", None) or getattr(f, "severity", "error")
        message = str(getattr(f, "message", ""))
        reason = getattr(f, "suppressed_reason", None)
        if reason:
            message += f" (suppressed {getattr(f, 'severity', '')}: {reason})"
        finding: Finding | None = Finding(
            severity=str(getattr(severity, "value", severity)),
            rule=str(getattr(f, "rule", "")),
            location=str(getattr(f, "location", "")),
            message=redactor.text(message),
        )
        if policy is not None and not reason:
            finding = policy(finding)  # type: ignore[arg-type]
        if finding is not None:
            findings.append(finding)
    ok = bool(getattr(result, "ok", True))
    if policy is not None:
        ok = not any(f.severity in ("error", "fatal") for f in findings)
    return ValidationReported(subject=subject, content_type=content_type, ok=ok, findings=tuple(findings),
                              direction=direction, sender=sender)


def json_dict(answer: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is not JSON or not an object.

    For callers that go on to name what is missing (a check, an actor's error sentence): a non-JSON body is one
    more way of "the key is not there", not a crash.
    """
    try:
        data = answer.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

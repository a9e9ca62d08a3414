"""ktbench.http.client: every exchange becomes one redacted event; transport errors are TargetUnreachable."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass, field

import httpx
import pytest

from ktbench.http.client import BearerAuth, RecordingClient, TargetUnreachable
from ktbench.core.events import EventRecorder, EventStream, HttpExchange, ValidationReported
from ktbench.core.redact import Redactor
from ktbench.core.errors import BenchError
from ktbench.generations.kt1 import GENERATION as KT1


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}"


def token_server(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/token":
        return httpx.Response(200, json={"access_token": "tok-issued-123456", "refresh_token": "ref-987654",
                                         "token_type": "Bearer", "expires_in": 3600})
    if request.url.path.endswith("/big"):
        return httpx.Response(200, text="x" * 5000, headers={"content-type": "text/plain"})
    return httpx.Response(200, json={"resourceType": "Conformance", "echo": request.headers.get("authorization")},
                          headers={"set-cookie": "sid=abc; Path=/"})


@pytest.fixture
def recorded() -> tuple[RecordingClient, EventRecorder]:
    stream = EventStream()
    recorder = EventRecorder(stream)
    client = RecordingClient(stream, transport=httpx.MockTransport(token_server))
    yield client, recorder
    client.close()


def test_exchange_event_is_redacted(recorded: tuple[RecordingClient, EventRecorder]) -> None:
    client, recorder = recorded
    portal = KT1.target_for_url("http://kt1.test").role("portal")
    response = client.get("http://kt1.test/FHIR/Koppeltaal/metadata", auth=portal)
    assert response.status_code == 200
    (exchange,) = recorder.of(HttpExchange)
    assert exchange.method == "GET" and exchange.status == 200 and exchange.role == "portal"
    assert exchange.header("authorization", response=False) == "Basic ***"
    assert exchange.header("set-cookie") == "***"
    everything = json.dumps([exchange.request_headers, exchange.response_headers, exchange.response_body])
    real_header = response.request.headers["authorization"]
    assert real_header.split()[1] not in everything  # the base64 credentials
    assert "portal-secret" not in everything
    assert client.exchanges == 1


def test_tokens_in_responses_are_redacted_and_learned(recorded: tuple[RecordingClient, EventRecorder]) -> None:
    client, recorder = recorded
    client.post("http://kt1.test/token", data={"grant_type": "authorization_code", "code": "AUTHCODE-42",
                                                "client_secret": "module-oauth-secret"})
    client.get("http://kt1.test/FHIR/Koppeltaal/metadata", auth=BearerAuth("tok-issued-123456"),
               params={"session": "tok-issued-123456"})
    token_exchange, fhir_exchange = recorder.of(HttpExchange)
    assert "AUTHCODE-42" not in token_exchange.request_body
    assert "module-oauth-secret" not in token_exchange.request_body
    assert "tok-issued-123456" not in token_exchange.response_body
    assert "ref-987654" not in token_exchange.response_body
    assert json.loads(token_exchange.response_body)["token_type"] == "Bearer"
    # the learned token is scrubbed wherever it shows up later: URL, echoed header value in a body
    assert "tok-issued-123456" not in fhir_exchange.url
    assert "tok-issued-123456" not in fhir_exchange.response_body
    assert fhir_exchange.header("authorization", response=False) == "Bearer ***"
    assert "tok-issued-123456" in client.redactor.known_secrets


def test_large_bodies_are_clipped() -> None:
    stream = EventStream()
    recorder = EventRecorder(stream, HttpExchange)
    with RecordingClient(stream, transport=httpx.MockTransport(token_server), max_body_chars=100) as client:
        client.get("http://kt1.test/big")
    body = recorder.events[0].response_body  # type: ignore[attr-defined]
    assert body.startswith("x" * 100) and "truncated: 5000 characters" in body


def test_connection_refused_is_target_unreachable_then_fails_fast() -> None:
    stream = EventStream()
    recorder = EventRecorder(stream, HttpExchange)
    url = closed_port_url()
    with RecordingClient(stream, timeout=2.0) as client:
        with pytest.raises(TargetUnreachable) as first:
            client.get(url + "/app/callback?code=AUTHCODE-1&state=s1")
        assert isinstance(first.value, BenchError)
        assert "AUTHCODE-1" not in str(first.value)
        (exchange,) = recorder.events
        assert exchange.status is None and exchange.error and "ConnectError" in exchange.error  # type: ignore[attr-defined]
        with pytest.raises(TargetUnreachable, match="not attempted.*--keep-going"):
            client.get(url + "/other")
        assert len(recorder.events) == 1  # the fast failure sent nothing


def test_keep_going_retries_every_request() -> None:
    stream = EventStream()
    url = closed_port_url()
    with RecordingClient(stream, timeout=2.0, keep_going=True) as client:
        assert client.probe(url) is not None
        with pytest.raises(TargetUnreachable) as err:
            client.get(url + "/x")
        assert "not attempted" not in str(err.value)


def test_probe_reports_reachability(recorded: tuple[RecordingClient, EventRecorder]) -> None:
    client, recorder = recorded
    assert client.probe("http://kt1.test/") is None
    assert recorder.events == []  # probes belong to no scenario
    url = closed_port_url()
    with RecordingClient(EventStream()) as real:
        reason = real.probe(url)
        assert reason is not None and "ConnectError" in reason
        assert real.unreachable_reason(url + "/any/path") == reason
        assert real.unreachable_reason("http://elsewhere.test/") is None


def test_timeouts_are_unreachable_but_do_not_condemn_the_origin() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    stream = EventStream()
    with RecordingClient(stream, transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(TargetUnreachable, match="ReadTimeout"):
            client.get("http://slow.test/a")
        assert client.unreachable_reason("http://slow.test/") is None


@dataclass
class FakeFinding:
    severity: str
    rule: str
    location: str
    message: str


@dataclass
class FakeResult:
    findings: list[FakeFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def test_live_validation_follows_each_json_exchange() -> None:
    calls: list[tuple[bytes, str | None]] = []

    def validator(data: bytes, content_type: str | None) -> FakeResult:
        calls.append((data, content_type))
        return FakeResult([FakeFinding("error", "kt1.cardinality", "Conformance.rest", "password=pw-12345 missing")])

    stream = EventStream()
    recorder = EventRecorder(stream, HttpExchange, ValidationReported)
    with RecordingClient(stream, transport=httpx.MockTransport(token_server), validator=validator) as client:
        client.get("http://kt1.test/FHIR/Koppeltaal/metadata")
        client.get("http://kt1.test/FHIR/big")  # text/plain: not validated
        client.get("http://kt1.test/FHIR/Koppeltaal/metadata", validate=False)
        client.post("http://kt1.test/token")  # JSON, but OAuth, not FHIR
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == ["HttpExchange", "ValidationReported", "HttpExchange", "HttpExchange", "HttpExchange"]
    report = recorder.of(ValidationReported)[0]
    assert not report.ok and report.subject == "response to GET http://kt1.test/FHIR/Koppeltaal/metadata"
    assert report.findings[0].rule == "kt1.cardinality"
    assert "pw-12345" not in report.findings[0].message  # findings are redacted too
    assert len(calls) == 1 and calls[0][1] == "application/json"
    assert client.validation_errors == 1


def test_a_crashing_validator_is_reported_not_fatal() -> None:
    def validator(data: bytes, content_type: str | None) -> FakeResult:
        raise ValueError("validator bug")

    stream = EventStream()
    recorder = EventRecorder(stream, ValidationReported)
    with RecordingClient(stream, transport=httpx.MockTransport(token_server), validator=validator) as client:
        assert client.get("http://kt1.test/FHIR/metadata").status_code == 200
    (report,) = recorder.events
    assert report.findings[0].rule == "ktbench.validator-crashed"  # type: ignore[attr-defined]


def test_httpx_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    stream = EventStream()
    with caplog.at_level(logging.INFO, logger="httpx"):
        with RecordingClient(stream, transport=httpx.MockTransport(token_server),
                             redactor=Redactor(["portal-secret"])) as client:
            client.get("http://kt1.test/cb?code=AUTHCODE-77&state=s")
    text = caplog.text
    assert "HTTP Request" in text and "state=s" in text
    assert "AUTHCODE-77" not in text


def test_repr_is_secret_free() -> None:
    assert repr(BearerAuth("tok-secret-value")) == "BearerAuth(***)"
    with RecordingClient(EventStream(), transport=httpx.MockTransport(token_server)) as client:
        assert repr(client) == "<RecordingClient exchanges=0>"

"""Unit tests of the proxy addons, one concern at a time, driven through mitmproxy's own test harness.

The validator is a fake here (the engine has its own tests): what is under test
is the plumbing - which flows are picked, that validation happens off the
event loop and never alters a flow, that findings, recordings and the summary
say what happened (with secrets blanked), and that a failing validator becomes
a finding instead of a broken flow.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from mitmproxy import hooks, http, io
from mitmproxy.proxy.layers.http import HttpErrorHook, HttpResponseHook
from mitmproxy.test import taddons, tflow

from ktbench.proxy.fhir_filter import FHIR_KEY, FhirTrafficFilter, is_fhir
from ktbench.proxy.findings_writer import FindingsWriter
from ktbench.proxy.model import CRASH_RULE
from ktbench.proxy.recorder import FlowRecorder
from ktbench.proxy.summary import Summary
from ktbench.proxy.validating import ValidatingAddon

JSON = "application/json; charset=utf-8"
BUNDLE = b'{"resourceType":"Bundle","entry":[]}'


# -- a fake validator with the engine's API --------------------------------------------------------
@dataclass
class FakeFinding:
    severity: str
    rule: str
    location: str
    message: str
    suppressed_reason: str | None = None


@dataclass
class FakeResult:
    findings: list = field(default_factory=list)
    kt: int | None = 1
    format: str | None = "json"

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" and f.suppressed_reason is None for f in self.findings)


class FakeValidator:
    """Flags bodies containing BAD, raises on BOOM, blocks on WAIT until released; remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, str | None, int | None]] = []
        self.release = threading.Event()
        self.threads: set[str] = set()

    def __call__(self, data: bytes, content_type: str | None = None, kt: int | None = None, suppressions=None):
        self.seen.append((data, content_type, kt))
        self.threads.add(threading.current_thread().name)
        if b"BOOM" in data:
            raise RuntimeError("validator exploded")
        if b"WAIT" in data:
            self.release.wait(10)
        findings = []
        if b"BAD" in data:
            findings.append(FakeFinding("error", "kt1.binding", "Bundle.entry[0].content.event.code",
                                        "code BAD is not in the value set"))
        if b"ECHO" in data:  # a validator quoting a value it disliked: here a secret
            findings.append(FakeFinding("warning", "kt1.value", "Bundle.id",
                                        "unexpected value 'tok-SECRET-123' near password=hunter22"))
        if b"SUPPRESSED" in data:
            findings.append(FakeFinding("error", "kt1.binding", "Patient.gender", "known", "partner deviation"))
        return FakeResult(findings)


# -- helpers ------------------------------------------------------------------------------------------
def make_flow(path: str = "/FHIR/Koppeltaal/Mailbox", method: str = "POST", request_body: bytes = BUNDLE,
              request_type: str | None = JSON, response_body: bytes = BUNDLE, response_type: str | None = JSON,
              status: int = 200) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    flow.request.method = method
    flow.request.path = path
    flow.request.headers.clear()
    flow.request.headers["host"] = "kt.example.org"
    if request_type:
        flow.request.headers["content-type"] = request_type
    flow.request.content = request_body
    flow.response.status_code = status
    flow.response.headers.clear()
    if response_type:
        flow.response.headers["content-type"] = response_type
    flow.response.content = response_body
    return flow


def addons_for(tmp_path: Path, validator, **validating_kwargs):
    summary = Summary(tmp_path / "summary.json", echo=None)
    chain = [
        FhirTrafficFilter(validating_kwargs.pop("expression", None)),
        ValidatingAddon(validator=validator, executor=validating_kwargs.pop("executor", "thread"),
                        **validating_kwargs),
        FindingsWriter(tmp_path / "findings.jsonl"),
        summary,
    ]
    return chain, summary


async def finish(tctx, flow: http.HTTPFlow) -> None:
    """Let the addon chain see a finished flow, as the proxy core does."""
    hook = HttpErrorHook(flow) if flow.response is None else HttpResponseHook(flow)
    await tctx.master.addons.handle_lifecycle(hook)


async def shut_down(tctx) -> None:
    await tctx.master.addons.trigger_event(hooks.DoneHook())


def read_findings(tmp_path: Path) -> list[dict]:
    path = tmp_path / "findings.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))


def run(coro):
    return asyncio.run(coro)


# -- FhirTrafficFilter ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "request_type", "response_type", "response_body", "expected"),
    [
        ("/FHIR/Koppeltaal/metadata", None, JSON, b'{"resourceType":"Conformance"}', True),
        ("/FHIR/Koppeltaal/MessageHeader?_query=MessageHeader.GetNextNewAndClaim", None, JSON, BUNDLE, True),
        ("/fhir/r4/Task/1", None, "application/fhir+json", b'{"resourceType":"Task"}', True),
        ("/api/anything", None, "application/fhir+json", b"{}", True),  # FHIR media type wins
        ("/service/Patient/1", None, JSON, b'{"resourceType":"Patient","id":"1"}', True),  # sniffed
        ("/service/Patient/1", None, "application/xml", b'<Patient xmlns="http://hl7.org/fhir"/>', True),
        ("/OAuth2/Koppeltaal/Token", "application/x-www-form-urlencoded", JSON, b'{"access_token":"x"}', False),
        ("/oauth2/token", None, "application/fhir+json", b"{}", False),  # OAuth never counts as FHIR
        ("/.well-known/smart-configuration", None, JSON, b'{"issuer":"x"}', False),
        ("/index.html", None, "text/html", b"<html></html>", False),
        ("/service/status", None, JSON, b'{"status":"up"}', False),
    ],
)
def test_filter_classifies_flows(path, request_type, response_type, response_body, expected):
    flow = make_flow(path=path, method="GET", request_body=b"", request_type=request_type,
                     response_body=response_body, response_type=response_type)
    addon = FhirTrafficFilter()
    with taddons.context(addon) as tctx:
        run(tctx.cycle(addon, flow))
    assert is_fhir(flow) is expected
    assert flow.metadata["ktbench.fhir.why"]


def test_filter_expression_restricts_and_first_verdict_sticks():
    addon = FhirTrafficFilter("~m POST")
    get = make_flow(method="GET", request_body=b"")
    post = make_flow(method="POST")
    with taddons.context(addon):
        addon.response(get)
        addon.response(post)
        post.metadata[FHIR_KEY] = "kept"  # a later `error` hook must not re-classify
        addon.error(post)
    assert is_fhir(get) is False and get.metadata["ktbench.fhir.why"] == "excluded by the filter expression"
    assert post.metadata[FHIR_KEY] == "kept"


# -- ValidatingAddon -------------------------------------------------------------------------------
def test_flow_bytes_are_untouched_and_worker_sees_decoded_copy(tmp_path):
    validator = FakeValidator()
    request_body = b'{"resourceType":"Bundle","id":"BAD"}'
    response_plain = b'{"resourceType":"Bundle","entry":[{"title":"caf\xc3\xa9"}]}'
    flow = make_flow(request_body=request_body)
    flow.response.headers["content-encoding"] = "gzip"
    flow.response.raw_content = gzip.compress(response_plain, mtime=0)
    before = flow.get_state()
    raw_request, raw_response = flow.request.raw_content, flow.response.raw_content
    chain, _summary = addons_for(tmp_path, validator)
    chain.append(FlowRecorder(tmp_path / "flows.mitm", tmp_path / "session.har"))

    async def scenario():
        with taddons.context(*chain) as tctx:
            await tctx.master.addons.trigger_event(hooks.RunningHook())
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    after = flow.get_state()
    # Byte for byte: bodies, headers, status, URL all exactly as before; only our metadata was added.
    assert flow.request.raw_content is raw_request and flow.response.raw_content is raw_response
    for side in ("request", "response"):
        assert after[side] == before[side]
    assert set(after["metadata"]) - set(before["metadata"]) >= {FHIR_KEY}
    assert {k: v for k, v in after.items() if k != "metadata"} == {k: v for k, v in before.items() if k != "metadata"}
    # ... while the validator got the decoded body of each side.
    validated = sorted(seen[0] for seen in validator.seen if seen[0] != b"{}")  # b"{}": the warm-up call
    assert validated == sorted([request_body, response_plain])
    assert validator.threads and all(name.startswith("ktbench-validate") for name in validator.threads)


def test_validation_never_blocks_the_flow(tmp_path):
    validator = FakeValidator()
    flow = make_flow(request_body=b'{"resourceType":"Bundle","id":"WAIT"}')
    chain, summary = addons_for(tmp_path, validator)
    validating = chain[1]

    async def scenario():
        with taddons.context(*chain) as tctx:
            started = time.monotonic()
            await finish(tctx, flow)  # returns while the validator is still blocked
            handed_off_in = time.monotonic() - started
            assert validating.backlog == 1 and summary.verdicts == 0
            validator.release.set()
            await shut_down(tctx)
            return handed_off_in

    handed_off_in = run(scenario())
    assert handed_off_in < 1.0  # the validator was blocked for (up to) 10 s
    assert validating.backlog == 0
    data = read_summary(tmp_path)
    assert data["flows_validated"] == 1 and data["lost_flows"] == 0


def test_validator_crash_is_a_finding_not_a_broken_flow(tmp_path):
    validator = FakeValidator()
    flow = make_flow(request_body=b'{"resourceType":"Bundle","id":"BOOM"}')
    before = flow.get_state()
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    findings = read_findings(tmp_path)
    assert [(f["direction"], f["rule"], f["severity"]) for f in findings] == [("request", CRASH_RULE, "error")]
    assert "RuntimeError: validator exploded" in findings[0]["message"]
    assert flow.response is not None and flow.error is None
    assert flow.get_state()["response"] == before["response"]
    data = read_summary(tmp_path)
    assert data["validator_crashes"] == 1 and data["bodies"]["validated"] == 1
    assert data["unvalidated_flows"] == 0


def test_crash_inside_a_worker_process_is_reported(tmp_path):
    # json.loads does not take our keyword arguments: the worker process raises TypeError.
    flow = make_flow()
    chain, _summary = addons_for(tmp_path, "json:loads", executor="process")

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    findings = read_findings(tmp_path)
    assert {f["direction"] for f in findings} == {"request", "response"}
    assert all(f["rule"] == CRASH_RULE and "TypeError" in f["message"] for f in findings)
    assert read_summary(tmp_path)["lost_flows"] == 0


def test_dead_worker_process_is_reported_and_replaced(tmp_path):
    dying = make_flow(request_body=b'{"resourceType":"Bundle","id":"DIE"}')
    healthy = make_flow()
    # test_proxy_worker holds the validators that worker processes import (light imports: fast start).
    chain, _summary = addons_for(tmp_path, "test_proxy_worker:die_on_marker", executor="process", batch_window=0)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, dying)
            while chain[1].backlog:  # wait for the first verdict before the next flow
                await asyncio.sleep(0.01)
            await finish(tctx, healthy)
            await shut_down(tctx)

    run(scenario())
    findings = read_findings(tmp_path)
    assert {f["flow_id"] for f in findings} == {dying.id}
    assert all(f["rule"] == CRASH_RULE and "validation worker exited with code 3" in f["message"] for f in findings)
    data = read_summary(tmp_path)
    assert data["flows_validated"] == 2 and data["validator_crashes"] == 2
    assert data["bodies"]["validated"] == 2  # the healthy flow, by a fresh worker
    assert data["unvalidated_flows"] == 0


def test_bodies_without_fhir_content_are_skipped_with_a_reason(tmp_path):
    validator = FakeValidator()
    get = make_flow(method="GET", request_body=b"", request_type=None)
    form = make_flow(path="/FHIR/Koppeltaal/Patient/_search", request_body=b"name=x",
                     request_type="application/x-www-form-urlencoded")
    no_content = make_flow(method="PUT", response_body=b"", response_type=None, status=204)
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            for flow in (get, form, no_content):
                await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    data = read_summary(tmp_path)
    assert data["fhir_flows"] == 3 and data["flows_validated"] == 3
    assert data["bodies"]["validated"] == 3 and data["bodies"]["skipped"] == 3
    assert data["bodies"]["skip_reasons"] == {"no body": 2, "not a FHIR body (application/x-www-form-urlencoded)": 1}
    assert len(validator.seen) == 3


def test_failed_flow_validates_the_request_only(tmp_path):
    validator = FakeValidator()
    flow = tflow.tflow(err=True)
    flow.request.path = "/FHIR/Koppeltaal/Mailbox"
    flow.request.headers["content-type"] = JSON
    flow.request.content = b'{"resourceType":"Bundle","id":"BAD"}'
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    data = read_summary(tmp_path)
    assert data["flows_without_response"] == 1 and data["fhir_flows"] == 1
    assert data["bodies"]["validated"] == 1 and data["bodies"]["skip_reasons"] == {"no response": 1}
    assert [f["direction"] for f in read_findings(tmp_path)] == ["request"]


def test_full_backlog_and_unfinished_work_are_counted_as_unvalidated(tmp_path):
    validator = FakeValidator()
    slow = make_flow(request_body=b'{"resourceType":"Bundle","id":"WAIT"}')
    overflow = make_flow()
    chain, _summary = addons_for(tmp_path, validator, max_backlog=1, drain_timeout=0.2)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, slow)
            await finish(tctx, overflow)
            await shut_down(tctx)

    try:
        run(scenario())
    finally:
        validator.release.set()
    data = read_summary(tmp_path)
    assert data["fhir_flows"] == 2
    assert data["dropped_flows"] == 1 and data["lost_flows"] == 1
    assert data["lost_flow_ids"] == [slow.id]
    assert data["unvalidated_flows"] == 2


def test_non_fhir_flows_are_not_validated(tmp_path):
    validator = FakeValidator()
    token = make_flow(path="/OAuth2/Koppeltaal/Token", request_body=b"grant_type=x",
                      request_type="application/x-www-form-urlencoded", response_body=b'{"access_token":"abcd"}')
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, token)
            await shut_down(tctx)

    run(scenario())
    assert validator.seen == []
    data = read_summary(tmp_path)
    assert data["flows_seen"] == 1 and data["non_fhir_flows"] == 1 and data["fhir_flows"] == 0
    assert read_findings(tmp_path) == []


# -- FindingsWriter --------------------------------------------------------------------------------
def test_findings_carry_flow_direction_and_location(tmp_path):
    validator = FakeValidator()
    flow = make_flow(path="/FHIR/Koppeltaal/Mailbox", request_body=b'{"resourceType":"Bundle","id":"ok"}',
                     response_body=b'{"resourceType":"Bundle","id":"BAD"}', status=201)
    chain, _summary = addons_for(tmp_path, validator, kt=1)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    (finding,) = read_findings(tmp_path)
    assert finding["flow_id"] == flow.id
    assert finding["direction"] == "response"
    assert (finding["method"], finding["status"]) == ("POST", 201)
    assert finding["url"].endswith("/FHIR/Koppeltaal/Mailbox")
    assert (finding["severity"], finding["rule"]) == ("error", "kt1.binding")
    assert finding["location"] == "Bundle.entry[0].content.event.code"
    assert all(seen[2] == 1 for seen in validator.seen)  # --kt reaches the validator


def test_findings_are_redacted(tmp_path):
    validator = FakeValidator()
    flow = make_flow(path="/FHIR/Koppeltaal/Mailbox?access_token=tok-SECRET-123&code=authcode99&state=s1&_count=5",
                     request_body=b'{"resourceType":"Bundle","id":"ECHO"}')
    flow.request.headers["authorization"] = "Bearer tok-SECRET-123"
    basic = make_flow(request_body=b'{"resourceType":"Bundle","id":"ECHO"}')
    basic.request.headers["authorization"] = "Basic " + base64.b64encode(b"portal:hunter22").decode()
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await finish(tctx, basic)
            await shut_down(tctx)

    run(scenario())
    text = (tmp_path / "findings.jsonl").read_text(encoding="utf-8")
    assert len(read_findings(tmp_path)) == 2
    for secret in ("tok-SECRET-123", "authcode99", "hunter22"):
        assert secret not in text
    first = read_findings(tmp_path)[0]
    assert "access_token=***" in first["url"] and "_count=5" in first["url"]
    assert "***" in first["message"]


def test_suppressed_findings_are_kept_but_counted_apart(tmp_path):
    validator = FakeValidator()
    flow = make_flow(request_body=b'{"resourceType":"Bundle","id":"SUPPRESSED"}')
    chain, _summary = addons_for(tmp_path, validator)

    async def scenario():
        with taddons.context(*chain) as tctx:
            await finish(tctx, flow)
            await shut_down(tctx)

    run(scenario())
    (finding,) = read_findings(tmp_path)
    assert finding["suppressed_reason"] == "partner deviation"
    data = read_summary(tmp_path)
    assert data["findings"]["suppressed"] == 1 and data["findings"]["by_severity"] == {}
    assert data["bodies"]["invalid"] == 0


# -- FlowRecorder ----------------------------------------------------------------------------------
def test_recorder_writes_redacted_flow_file_and_har(tmp_path):
    fhir = make_flow(path="/FHIR/Koppeltaal/metadata?access_token=tok-SECRET-123", method="GET", request_body=b"")
    fhir.request.headers["authorization"] = "Basic " + base64.b64encode(b"portal:hunter22").decode()
    token = make_flow(path="/OAuth2/Koppeltaal/Token", request_type="application/x-www-form-urlencoded",
                      request_body=b"grant_type=authorization_code&code=authcode99&redirect_uri=http%3A%2F%2Fx",
                      response_body=b'{"access_token":"tok-SECRET-456","token_type":"Bearer","patient":"P1"}')
    live_auth = fhir.request.headers["authorization"]
    recorder = FlowRecorder(tmp_path / "flows.mitm", tmp_path / "session.har")

    async def scenario():
        with taddons.context(FhirTrafficFilter(), recorder) as tctx:
            await tctx.master.addons.trigger_event(hooks.RunningHook())
            await finish(tctx, fhir)
            await finish(tctx, token)
            await shut_down(tctx)

    run(scenario())
    assert fhir.request.headers["authorization"] == live_auth  # the live flow keeps its credentials
    with (tmp_path / "flows.mitm").open("rb") as fh:
        recorded = list(io.FlowReader(fh).stream())
    assert [f.id for f in recorded] == [fhir.id, token.id]
    assert recorded[0].request.headers["authorization"] == "Basic ***"
    assert "access_token=***" in recorded[0].request.path
    assert json.loads(recorded[1].response.content)["patient"] == "P1"
    assert recorded[0].response.content == fhir.response.content  # FHIR bodies are kept as they were
    har_text = (tmp_path / "session.har").read_text(encoding="utf-8")
    entries = json.loads(har_text)["log"]["entries"]
    assert [e["request"]["method"] for e in entries] == ["GET", "POST"]
    flow_file = (tmp_path / "flows.mitm").read_bytes().decode("latin-1")
    for secret in ("hunter22", base64.b64encode(b"portal:hunter22").decode(), "tok-SECRET-123", "tok-SECRET-456",
                   "authcode99"):
        assert secret not in har_text and secret not in flow_file


def test_recorder_can_keep_only_fhir_flows(tmp_path):
    fhir = make_flow()
    other = make_flow(path="/index.html", method="GET", request_body=b"", request_type=None,
                      response_type="text/html", response_body=b"<html/>")
    recorder = FlowRecorder(tmp_path / "flows.mitm", only_fhir=True)

    async def scenario():
        with taddons.context(FhirTrafficFilter(), recorder) as tctx:
            await finish(tctx, fhir)
            await finish(tctx, other)
            await shut_down(tctx)

    run(scenario())
    with (tmp_path / "flows.mitm").open("rb") as fh:
        assert [f.id for f in io.FlowReader(fh).stream()] == [fhir.id]


# -- Summary ---------------------------------------------------------------------------------------
def test_summary_counts_flows_bodies_and_findings(tmp_path):
    validator = FakeValidator()
    printed: list[str] = []
    flows = [
        make_flow(),
        make_flow(method="GET", request_body=b""),
        make_flow(response_body=b'{"resourceType":"Bundle","id":"BAD"}'),
        make_flow(path="/index.html", method="GET", request_body=b"", request_type=None,
                      response_type="text/html", response_body=b"<html/>"),
    ]
    summary = Summary(tmp_path / "summary.json", echo=printed.append)
    chain = [FhirTrafficFilter(), ValidatingAddon(validator=validator, executor="thread"),
             FindingsWriter(tmp_path / "findings.jsonl"), summary]

    async def scenario():
        with taddons.context(*chain) as tctx:
            for flow in flows:
                await finish(tctx, flow)
            await finish(tctx, flows[0])  # the same flow again (an `error` after `response`) counts once
            await shut_down(tctx)

    run(scenario())
    data = read_summary(tmp_path)
    assert data["flows_seen"] == 4 and data["fhir_flows"] == 3 and data["non_fhir_flows"] == 1
    assert data["flows_validated"] == 3
    assert data["bodies"]["validated"] == 5 and data["bodies"]["skipped"] == 1 and data["bodies"]["invalid"] == 1
    assert data["findings"] == {"total": 1, "by_severity": {"error": 1}, "suppressed": 0,
                                "by_rule": {"kt1.binding": 1}}
    assert data["lost_flows"] == 0 and data["unvalidated_flows"] == 0
    assert data["validation_ms"]["p50"] is not None
    assert len(validator.seen) == 5
    assert printed and "unvalidated FHIR flows: 0" in printed[0] and "kt1.binding" in printed[0]

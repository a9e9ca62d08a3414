"""Live validation decides verdicts: --fail-on, --validation-policy, request vs response findings.

Units: the policy file (parsing, every kind of mistake), severity overrides and
suppressions on the way into a ValidationReported event, the client validating
both sides of an exchange, and the end-of-scenario verdict.  End to end:
`ktbench run` against a tiny Starlette double on 127.0.0.1 whose Conformance
statement breaks the KT1 profiles in a known way (`--tags @smoke`: the steps
themselves pass, so only the profile check can fail them); a throw-away feature
that makes the bench send a broken request, with and without @invalid-request;
and the validation-only fault of the reference server under `--fail-on never`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ktbench.http.client import RecordingClient, validation_event
from ktbench.core.events import EventRecorder, EventStream, Finding, ValidationReported
from ktbench.runner.outcomes import classify_exception
from ktbench.runner.plugin import load_validator
from ktbench.runner.verdict import InvalidBenchMessage, ProfileViolation, profile_verdict
from ktbench.validation_policy import PolicyError, ValidationPolicy, load_policy

REPO = Path(__file__).resolve().parents[1]
SMART = "http://fhir-registry.smartplatforms.org/Profile/oauth-uris"


# ---------------------------------------------------------------------------------------------------------------
# The policy file
# ---------------------------------------------------------------------------------------------------------------
def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_without_a_file_the_threshold_alone_decides() -> None:
    policy = load_policy(None)
    assert policy.fail_on == "error" and policy.overrides == () and policy.suppressions is None
    assert policy.blocks("error") and policy.blocks("fatal") and not policy.blocks("warning")
    warning = load_policy(None, fail_on="warning")
    assert warning.blocks("error") and warning.blocks("warning") and not warning.blocks("information")
    never = load_policy(None, fail_on="never")
    assert not any(never.blocks(s) for s in ("fatal", "error", "warning", "information"))
    with pytest.raises(PolicyError, match="--fail-on must be one of error, warning, never"):
        load_policy(None, fail_on="sometimes")


def test_severity_overrides_exact_ids_before_the_longest_pattern(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path / "p.toml", """\
        version = 1
        [severity]
        "kt1.*" = "information"
        "kt1.feed.*" = "warning"
        "kt1.feed.link" = "ignore"
        "kt1.binding" = "error"
        """))
    assert policy.severity_for("kt1.feed.link", "warning") == "ignore"
    assert policy.severity_for("kt1.feed.category", "error") == "warning"  # longer pattern beats kt1.*
    assert policy.severity_for("kt1.cardinality", "error") == "information"
    assert policy.severity_for("kt1.binding", "warning") == "error"  # an override may raise a severity too
    assert policy.severity_for("kt2.binding", "error") == "error"  # untouched

    finding = Finding(severity="error", rule="kt1.feed.category", location="Bundle", message="m")
    reviewed = policy.review(finding)
    assert reviewed is not None and reviewed.severity == "warning" and reviewed.original_severity == "error"
    assert policy.review(Finding(severity="warning", rule="kt1.feed.link", location="x", message="m")) is None
    same = Finding(severity="error", rule="kt2.binding", location="x", message="m")
    assert policy.review(same) is same


def test_suppressions_from_a_file_and_inline_are_merged(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "known.toml", """\
        version = 1
        [[suppression]]
        rule = "kt1.cardinality"
        location = "Conformance.acceptUnknown"
        reason = "partner A leaves it out (ticket 1)"
        """)
    policy = load_policy(write(tmp_path / "sub" / "policy.toml", """\
        version = 1
        suppressions = "known.toml"
        [[suppression]]
        rule = "kt1.type"
        location = "re:^Conformance\\\\.date$"
        reason = "partner A writes .NET dates (ticket 2)"
        """))
    assert len(policy.suppressions) == 2 and "known.toml" in policy.suppressions.source

    # the validator applies them: the finding stays, as information with its reason, and no longer counts
    validate = load_validator("on", kt=1, suppressions=policy.suppressions)
    assert validate is not None
    body = conformance("http://127.0.0.1:1", "error")
    event = validation_event("response to GET /metadata", "application/json", validate(body, "application/json"),
                             policy=policy.review, direction="response")
    (suppressed,) = [f for f in event.findings if f.rule == "kt1.cardinality"]
    assert suppressed.severity == "information" and "partner A leaves it out (ticket 1)" in suppressed.message
    assert event.ok and not policy.blocking(event.findings)


@pytest.mark.parametrize("text, message", [
    ("this is = = not toml", "not valid TOML"),
    ("[severity]\n", "unsupported or missing version None"),
    ("version = 2\n", "unsupported or missing version 2"),
    ("version = 1\nfail_on = 'warning'\n", "unknown key(s) fail_on"),
    ("version = 1\n[severity]\n'kt1.binding' = 'fatal'\n", "must be one of error, warning, information, ignore"),
    ("version = 1\n[severity]\nkt1.binding = 'warning'\n", "quote rule ids that contain dots"),
    ("version = 1\n[severity]\nsuppressions = 'known.toml'\n", "put it above the first [table]"),
    ("version = 1\nsuppressions = 'missing.toml'\n", "missing.toml does not exist"),
    ("version = 1\n[[suppression]]\nrule = 'kt1.*'\n", "lacks location, reason"),
    ("version = 1\nsuppression = 'x'\n", "must be an array of tables"),
])
def test_a_bad_policy_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="validation policy .*nowhere.toml does not exist"):
        load_policy(tmp_path / "nowhere.toml")


# ---------------------------------------------------------------------------------------------------------------
# The client validates both sides; the verdict at the end of a scenario
# ---------------------------------------------------------------------------------------------------------------
def test_the_client_validates_what_it_sends_and_what_it_gets() -> None:
    def app(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/FHIR/"):
            return httpx.Response(200, json={"resourceType": "OperationOutcome", "issue": []})
        return httpx.Response(200, json={"access_token": "t"})

    seen: list[bytes] = []

    def validator(data: bytes, content_type: str | None) -> Any:
        seen.append(data)
        from ktbench.validation import validate_bytes
        return validate_bytes(data, content_type=content_type, kt=1)

    stream = EventStream()
    recorder = EventRecorder(stream, ValidationReported)
    with RecordingClient(stream, transport=httpx.MockTransport(app), validator=validator) as client:
        client.post("http://kt1.test/FHIR/Koppeltaal/Patient", json={"resourceType": "Patient", "birthDate": "x"})
        client.post("http://kt1.test/OAuth2/Koppeltaal/Token", data={"grant_type": "x"})  # not FHIR
        client.post("http://kt1.test/FHIR/Koppeltaal/Other", content=b"a=b",
                    headers={"content-type": "application/x-www-form-urlencoded"})  # not JSON/XML
    request_report, response_report, form_response = recorder.events
    assert request_report.direction == "request" and request_report.subject.startswith("request POST ")
    assert {f.rule for f in request_report.errors} >= {"kt1.type"}
    assert response_report.direction == "response" and response_report.subject.startswith("response to POST ")
    assert form_response.direction == "response"  # the form body itself was not validated
    assert len(seen) == 3 and b"grant_type" not in b"".join(seen) and b"a=b" not in seen


def report(direction: str, *severities: str, rule: str = "kt1.cardinality", sender: str = "") -> ValidationReported:
    findings = tuple(Finding(severity=s, rule=rule, location=f"Conformance.x{i}", message=f"missing x{i}")
                     for i, s in enumerate(severities))
    return ValidationReported(subject=f"{direction} GET http://t/FHIR/metadata", content_type="application/json",
                              ok="error" not in severities, findings=findings, direction=direction, sender=sender)


def test_response_findings_fail_request_findings_break() -> None:
    policy = ValidationPolicy()
    failed = profile_verdict([report("response", "error", "warning")], policy, ["req:KT1-META-CONFORMANCE"],
                             "KT1-PROFILE-EXCHANGE")
    assert isinstance(failed, ProfileViolation) and classify_exception(failed) == "failed"
    assert failed.req_id == "KT1-PROFILE-EXCHANGE"
    first_line = str(failed).splitlines()[0]
    assert first_line.startswith("KT1-PROFILE-EXCHANGE: the target's message breaks the profiles: ")
    assert "error kt1.cardinality at Conformance.x0: missing x0" in first_line and "1 finding(s)" in first_line
    assert "x1" not in str(failed)  # the warning does not count under --fail-on error

    broken = profile_verdict([report("request", "error"), report("response", "error")], policy, [], "R")
    assert isinstance(broken, InvalidBenchMessage) and classify_exception(broken) == "broken"
    assert "@invalid-request" in str(broken)

    # on purpose: the request findings no longer count, the target's answers still do
    on_purpose = profile_verdict([report("request", "error"), report("response", "error")], policy,
                                 ["invalid-request"], "R")
    assert isinstance(on_purpose, ProfileViolation)
    assert profile_verdict([report("request", "error")], policy, ["@invalid-request"], "R") is None

    # thresholds; a step's own check (direction "") never counts twice
    assert profile_verdict([report("response", "warning")], policy, [], "R") is None
    assert isinstance(profile_verdict([report("response", "warning")], policy.with_fail_on("warning"), [], "R"),
                      ProfileViolation)
    assert profile_verdict([report("response", "error")], policy.with_fail_on("never"), [], "R") is None
    assert profile_verdict([report("", "error")], policy, [], "R") is None


def test_the_verdict_keys_on_the_sender_so_an_application_target_is_the_mirror() -> None:
    """Testing an application, the bench plays the server: the target's requests can fail a scenario, the
    bench's own answers can only make it broken - and a bench client talking to a bench simulator is all
    bench (the sender is set by who sent the message, ktbench.http)."""
    policy = ValidationPolicy()
    app_request = report("request", "error", sender="target")
    bench_answer = report("response", "error", sender="bench")
    failed = profile_verdict([app_request], policy, [], "KT2-PROFILE-EXCHANGE")
    assert isinstance(failed, ProfileViolation) and failed.req_id == "KT2-PROFILE-EXCHANGE"
    broken = profile_verdict([bench_answer], policy, [], "KT2-PROFILE-EXCHANGE")
    assert isinstance(broken, InvalidBenchMessage)
    assert isinstance(profile_verdict([app_request, bench_answer], policy, [], "R"), InvalidBenchMessage)
    assert isinstance(profile_verdict([app_request, bench_answer], policy, ["invalid-request"], "R"), ProfileViolation)
    # the server-target convention, explicit: the bench's request and the target's answer
    assert isinstance(profile_verdict([report("request", "error", sender="bench")], policy, [], "R"),
                      InvalidBenchMessage)
    assert isinstance(profile_verdict([report("response", "error", sender="target")], policy, [], "R"),
                      ProfileViolation)


def test_the_client_marks_answers_of_the_target_and_of_the_benchs_own_simulators() -> None:
    """The recording client: its requests are the bench's; answers from the target's origin are the target's,
    answers from any other origin (a bench simulator) are the bench's."""

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Patient", "birthDate": "not a date"})

    from ktbench.validation import validate_bytes

    stream = EventStream()
    recorder = EventRecorder(stream, ValidationReported)
    with RecordingClient(stream, transport=httpx.MockTransport(app), target_origins=("http://target.test",),
                         validator=lambda data, ct: validate_bytes(data, content_type=ct, kt=1)) as client:
        client.get("http://target.test/FHIR/Koppeltaal/Patient/1")
        client.get("http://simulator.test/FHIR/Koppeltaal/Patient/1")
    responses = [e for e in recorder.events if e.direction == "response"]
    assert [e.sender for e in responses] == ["target", "bench"]
    assert all(e.errors for e in responses)


# ---------------------------------------------------------------------------------------------------------------
# End to end against a double
# ---------------------------------------------------------------------------------------------------------------
def conformance(base: str, mode: str) -> bytes:
    """A Conformance statement the smoke steps accept; `mode` plants one known profile finding."""
    body: dict[str, Any] = {
        "resourceType": "Conformance", "name": "Koppeltaal", "fhirVersion": "0.0.82", "publisher": "double",
        "date": "2024-01-01", "acceptUnknown": False, "format": ["application/json"],
        "rest": [{"mode": "server", "security": {"extension": [
            {"url": f"{SMART}#authorize", "valueUri": base + "/OAuth2/Koppeltaal/Authorize"},
            {"url": f"{SMART}#token", "valueUri": base + "/OAuth2/Koppeltaal/Token"},
        ]}, "resource": [{"type": "MessageHeader", "operation": [{"code": "search-type"}]}]}],
    }
    if mode == "error":
        del body["acceptUnknown"]  # kt1.cardinality error at Conformance.acceptUnknown
    elif mode == "warning":
        body["date"] = "2014/10/23 00:00:00"  # kt1.type warning at Conformance.date (real servers do this)
    return json.dumps(body).encode()


def make_app() -> Starlette:
    """/<mode>/FHIR/Koppeltaal/metadata answers a Conformance with the mode's finding; POSTs get 204."""

    async def metadata(request: Request) -> Response:
        mode = request.path_params["mode"]
        base = str(request.base_url).rstrip("/") + "/" + mode
        return Response(conformance(base, mode), media_type="application/json; charset=utf-8")

    async def accept(request: Request) -> Response:
        await request.body()
        return Response(status_code=204, headers={"Content-Type": "application/json; charset=utf-8"})

    async def root(request: Request) -> Response:
        return JSONResponse({"hello": "double"})

    return Starlette(routes=[
        Route("/{mode}/FHIR/Koppeltaal/metadata", metadata),
        Route("/{mode}/FHIR/Koppeltaal/{kind}", accept, methods=["POST"]),
        Route("/{mode}", root),
    ])


@pytest.fixture(scope="module")
def double() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(make_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test double did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


class Run:
    def __init__(self, root: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.root, self.proc = root, proc

    @property
    def rc(self) -> int:
        return self.proc.returncode

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def summary(self) -> dict[str, Any]:
        return json.loads((self.root / "summary.json").read_text(encoding="utf-8"))

    def outcomes(self) -> dict[str, str]:
        return {s["name"]: s["outcome"] for s in self.summary()["scenarios"]}

    def junit(self) -> dict[str, tuple[str, str]]:
        """testcase name -> (outcome, failure/error message)."""
        found = {}
        for case in ET.parse(self.root / "junit.xml").getroot().iter("testcase"):
            outcome, message = "passed", ""
            for tag, name in (("failure", "failed"), ("error", "broken"), ("skipped", "skipped")):
                element = case.find(tag)
                if element is not None:
                    outcome, message = name, element.get("message", "")
                    break
            found[case.get("name", "")] = (outcome, message)
        return found

    def result(self, name_part: str) -> dict[str, Any]:
        (found,) = [r for r in (json.loads(p.read_text(encoding="utf-8"))
                                for p in (self.root / "allure-results").glob("*-result.json"))
                    if name_part in r["name"]]
        return found

    def attachments(self, step: dict[str, Any]) -> dict[str, str]:
        return {a["name"]: (self.root / "allure-results" / a["source"]).read_text(encoding="utf-8")
                for a in step.get("attachments", [])}


def ktbench_run(root: Path, *args: str) -> Run:
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "ktbench.cli", "run", "--suite", "kt1", "--tags", "@smoke",
               "--alluredir", str(root / "allure-results"), "--junitxml", str(root / "junit.xml"),
               "--summary", str(root / "summary.json"), "--pytest-args", "-p no:cacheprovider", *args]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "NO_COLOR": "1", "COLUMNS": "120"})
    return Run(root, proc)


CONFORMANCE_SCENARIO = "returns the Koppeltaal Conformance statement"


def test_a_profile_error_in_the_answer_fails_the_scenario(tmp_path: Path, double: str) -> None:
    run = ktbench_run(tmp_path, "--target", f"{double}/error")
    assert run.rc == 1, run.output
    summary = run.summary()
    assert set(run.outcomes().values()) == {"failed"} and summary["verdict"] == "failed"
    for scenario in summary["scenarios"]:
        assert scenario["error_type"] == "ProfileViolation" and scenario["validation_errors"] == 1
        assert "KT1-PROFILE-EXCHANGE" in scenario["message"]
        assert "kt1.cardinality at Conformance.acceptUnknown" in scenario["message"]
        assert "required element 'acceptUnknown' is missing" in scenario["message"]
    # JUnit agrees (failures, not errors), and its one-line message already names rule and location
    junit = run.junit()
    assert {outcome for outcome, _ in junit.values()} == {"failed"}
    assert all("KT1-PROFILE-EXCHANGE" in m and "Conformance.acceptUnknown" in m for _, m in junit.values())

    # Allure: every Gherkin step passed, then the profile check failed as the final step, with the findings
    result = run.result(CONFORMANCE_SCENARIO)
    assert result["status"] == "failed" and "kt1.cardinality" in result["statusDetails"]["message"]
    *gherkin, check = result["steps"]
    assert [s["status"] for s in gherkin] == ["passed"] * 6
    assert check["name"] == "Then every exchanged message conforms to the profiles (--fail-on error)"
    assert check["status"] == "failed"
    (deciding,) = run.attachments(check).values()
    assert "error kt1.cardinality at Conformance.acceptUnknown" in deciding
    live = run.attachments(gherkin[0])  # the step that made the exchange carries its validation
    (title,) = [n for n in live if n.startswith("validation:")]
    assert title == "validation: response, 1 error(s), 2 other finding(s)"
    assert "Side: response, sent by the target" in live[title]
    assert "[ERROR] kt1.cardinality at Conformance.acceptUnknown" in live[title]


def test_fail_on_never_reports_but_passes(tmp_path: Path, double: str) -> None:
    run = ktbench_run(tmp_path, "--target", f"{double}/error", "--fail-on", "never")
    assert run.rc == 0, run.output
    assert set(run.outcomes().values()) == {"passed"}
    assert all(s["validation_errors"] == 1 for s in run.summary()["scenarios"])  # still counted and attached
    result = run.result(CONFORMANCE_SCENARIO)
    assert len(result["steps"]) == 6 and "validation: response, 1 error(s), 2 other finding(s)" in \
        run.attachments(result["steps"][0])


def test_warnings_count_only_with_fail_on_warning(tmp_path: Path, double: str) -> None:
    default = ktbench_run(tmp_path / "default", "--target", f"{double}/warning")
    assert default.rc == 0, default.output
    strict = ktbench_run(tmp_path / "strict", "--target", f"{double}/warning", "--fail-on", "warning")
    assert strict.rc == 1, strict.output
    outcomes = strict.junit()
    assert {o for o, _ in outcomes.values()} == {"failed"}
    assert all("warning kt1.type at Conformance.date" in m for _, m in outcomes.values())


def test_a_policy_file_downgrades_a_rule(tmp_path: Path, double: str) -> None:
    policy = write(tmp_path / "policy.toml", """\
        version = 1
        [severity]
        "kt1.cardinality" = "warning"
        "kt1.extension-url" = "ignore"
        """)
    run = ktbench_run(tmp_path / "run", "--target", f"{double}/error", "--validation-policy", str(policy))
    assert run.rc == 0, run.output
    live = run.attachments(run.result(CONFORMANCE_SCENARIO)["steps"][0])
    (title,) = [n for n in live if n.startswith("validation:")]
    assert title == "validation: response, 0 error(s), 1 other finding(s)"  # the two extension-url infos: gone
    assert "[WARNING] (policy; validator said error) kt1.cardinality at Conformance.acceptUnknown" in live[title]
    # the downgraded finding still counts when warnings do
    strict = ktbench_run(tmp_path / "strict", "--target", f"{double}/error", "--validation-policy", str(policy),
                         "--fail-on", "warning")
    assert strict.rc == 1 and set(strict.outcomes().values()) == {"failed"}, strict.output


@pytest.mark.parametrize("args, message", [
    (("--validation-policy", "{tmp}/nowhere.toml"), "nowhere.toml does not exist"),
    (("--validation-policy", "{tmp}/bad.toml"), "unsupported or missing version"),
    (("--fail-on", "sometimes"), "--fail-on must be one of error, warning, never"),
])
def test_bad_policy_options_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "bad.toml").write_text("[severity]\n", encoding="utf-8")
    run = ktbench_run(tmp_path, "--target", "http://127.0.0.1:1", *(a.format(tmp=tmp_path) for a in args))
    assert run.rc == 2, run.output
    assert message in run.proc.stderr and "Traceback" not in run.output
    assert not (tmp_path / "summary.json").exists()  # refused before anything ran


# ---------------------------------------------------------------------------------------------------------------
# Request findings: broken, unless the scenario sends bad input on purpose
# ---------------------------------------------------------------------------------------------------------------
FEATURE = """\
Feature: The bench's own requests
  @req:X-BENCH @role:portal
  Scenario: The bench builds a bad Patient by mistake
    When the portal posts a Patient born "yesterday"
    Then the post is answered with 204

  @req:X-BENCH @role:portal @invalid-request
  Scenario: The bench sends a bad Patient on purpose
    When the portal posts a Patient born "yesterday"
    Then the post is answered with 204
"""

STEPS = """\
from pytest_bdd import parsers, scenarios, then, when

scenarios("bench.feature")
SENT = {}


@when(parsers.parse('the portal posts a Patient born "{born}"'))
def _(born, kt_http, kt_target):
    SENT["answer"] = kt_http.post(kt_target.url + "/FHIR/Koppeltaal/Patient", role="portal",
                                  json={"resourceType": "Patient", "birthDate": born,
                                        "name": [{"family": ["Jansen"]}]})


@then("the post is answered with 204")
def _():
    assert SENT["answer"].status_code == 204
"""


def test_request_findings_break_unless_the_scenario_means_them(tmp_path: Path, double: str) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "bench.feature").write_text(FEATURE, encoding="utf-8")
    (suite / "test_bench.py").write_text(STEPS, encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "--rootdir", str(suite), "-q", "-p", "ktbench.runner.plugin",
         "--kt-generation", "ktbench.generations.kt1:GENERATION",
         "-p", "no:allure_pytest", "-p", "no:cacheprovider", "--kt-target", f"{double}/valid",
         "--alluredir", str(out / "allure-results"), "--junitxml", str(out / "junit.xml"),
         "--kt-summary", str(out / "summary.json")],
        cwd=suite, capture_output=True, text=True, timeout=120)
    run = Run(out, proc)
    assert run.rc == 1, run.output
    assert run.outcomes() == {"The bench builds a bad Patient by mistake": "broken",
                              "The bench sends a bad Patient on purpose": "passed"}
    junit = run.junit()
    outcome, message = junit["test_the_bench_builds_a_bad_patient_by_mistake"]
    assert outcome == "broken" and "InvalidBenchMessage" in message
    assert "error kt1.type at Patient.birthDate: 'yesterday' is not a valid dateTime" in message
    assert junit["test_the_bench_sends_a_bad_patient_on_purpose"][0] == "passed"

    mistake = run.result("by mistake")
    assert mistake["status"] == "broken" and mistake["steps"][-1]["status"] == "broken"
    on_purpose = run.result("on purpose")
    assert on_purpose["status"] == "passed" and len(on_purpose["steps"]) == 2
    live = run.attachments(on_purpose["steps"][0])  # attached all the same
    (title,) = [n for n in live if n.startswith("validation:")]
    assert title == "validation: request, 1 error(s), 0 other finding(s)"
    assert "Side: request, sent by the bench" in live[title] and "Patient.birthDate" in live[title]


# ---------------------------------------------------------------------------------------------------------------
# The reference server's validation-only fault
# ---------------------------------------------------------------------------------------------------------------
def test_the_validation_only_fault_passes_with_fail_on_never(tmp_path: Path) -> None:
    pytest.importorskip("simulators.kt1.faults", reason="the KT1 reference server is not there")
    from ktbench.cli.registry import build_registry
    from ktbench.runner.suite_run import RunOptions, run_suite
    from simulators.kt1.faults import FAULTS, VALIDATION_ONLY_FAULTS

    assert VALIDATION_ONLY_FAULTS and VALIDATION_ONLY_FAULTS <= set(FAULTS)
    for fault in sorted(VALIDATION_ONLY_FAULTS):  # the kill matrix shows --fail-on error kills it
        run = run_suite(build_registry(), "kt1", faults=[fault], workdir=tmp_path / fault,
                        options=RunOptions(fail_on="never", capture_output=True, quiet=True))
        assert len(run.scenarios) >= 90, run.output[-3000:]
        bad = [f"{s.outcome} {s.nodeid}: {s.message[:200]}" for s in run.scenarios if s.outcome != "passed"]
        assert not bad, f"{fault}: no step should see it, yet:\n" + "\n".join(bad[:10])

"""ktbench.core.events and the writers fed by it: ordering, filtering, serialisation, summaries, JUnit rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktbench.core.events import (
    EventRecorder,
    EventStream,
    Finding,
    HttpExchange,
    RunFinished,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
    StepFinished,
    StepStarted,
    ValidationReported,
    event_from_dict,
    to_dict,
)
from ktbench.report.allure_writer import (
    AllureAttachmentWriter,
    clean_results_dir,
    install_categories,
    write_environment,
)
from ktbench.report.console import ConsoleSummary, render_summary
from ktbench.report.formatting import exchange_title, format_exchange
from ktbench.report.junit import mark_broken_as_errors
from ktbench.report.results import RunResults, combine_outcomes
from ktbench.report.scrub import scrub_files
from ktbench.report.summary_json import JsonSummaryWriter

REPO = Path(__file__).resolve().parents[1]


def scenario(nodeid: str, outcome: str, reqs: tuple[str, ...] = ("KT1-A",), **kw: object) -> ScenarioFinished:
    return ScenarioFinished(nodeid=nodeid, name=nodeid, feature="F", outcome=outcome,  # type: ignore[arg-type]
                            requirements=reqs, **kw)  # type: ignore[arg-type]


def test_subscribers_get_events_in_emission_order_and_subscription_order() -> None:
    stream = EventStream()
    seen: list[tuple[str, str]] = []
    stream.subscribe(lambda e: seen.append(("first", type(e).__name__)))
    stream.subscribe(lambda e: seen.append(("second", type(e).__name__)))
    stream.emit(ScenarioStarted(nodeid="n", name="s", feature="f"))
    stream.emit(StepStarted(nodeid="n", keyword="When", text="x"))
    assert seen == [("first", "ScenarioStarted"), ("second", "ScenarioStarted"),
                    ("first", "StepStarted"), ("second", "StepStarted")]


def test_type_filter_and_unsubscribe() -> None:
    stream = EventStream()
    steps = EventRecorder(stream, StepStarted, StepFinished)
    everything = EventRecorder()
    unsubscribe = stream.subscribe(everything)
    stream.emit(ScenarioStarted(nodeid="n", name="s", feature="f"))
    stream.emit(StepStarted(nodeid="n", keyword="Then", text="y"))
    unsubscribe()
    stream.emit(StepFinished(nodeid="n", keyword="Then", text="y", outcome="passed"))
    assert [type(e).__name__ for e in steps.events] == ["StepStarted", "StepFinished"]
    assert [type(e).__name__ for e in everything.events] == ["ScenarioStarted", "StepStarted"]
    assert len(steps.of(StepFinished)) == 1


def test_a_failing_writer_is_not_silenced() -> None:
    stream = EventStream()

    def broken(event: object) -> None:
        raise RuntimeError("writer bug")

    stream.subscribe(broken)
    with pytest.raises(RuntimeError, match="writer bug"):
        stream.emit(StepStarted(nodeid="n", keyword="Given", text="x"))


def test_events_are_frozen_and_round_trip_through_dicts() -> None:
    exchange = HttpExchange(method="GET", url="http://x/metadata", status=200,
                            request_headers=(("accept", "*/*"),), response_headers=(("Content-Type", "a/b"),))
    with pytest.raises(AttributeError):
        exchange.status = 500  # type: ignore[misc]
    report = ValidationReported(subject="s", content_type=None, ok=False,
                                findings=(Finding(severity="error", rule="r", location="l", message="m"),))
    finished = scenario("n", "failed", tags=("kt1", "req:KT1-A"))
    for event in (exchange, report, finished, RunFinished(duration=1.0, counts=(("passed", 1),))):
        data = to_dict(event)
        json.dumps(data)  # JSON/execnet friendly
        assert event_from_dict(data) == event
    assert exchange.header("content-type") == "a/b"
    assert report.errors == report.findings


def test_combine_outcomes_and_verdicts() -> None:
    assert combine_outcomes(["passed", "failed", "broken"]) == "failed"
    assert combine_outcomes(["passed", "broken"]) == "broken"
    assert combine_outcomes(["passed", "skipped"]) == "passed"
    assert combine_outcomes(["skipped"]) == combine_outcomes([]) == "skipped"
    results = RunResults()
    assert results.verdict == "empty"
    results(scenario("a", "passed"))
    assert results.verdict == "passed"
    results(scenario("b", "broken", error_type="TargetUnreachable"))
    assert results.verdict == "unreachable"


def test_json_summary_counts_and_requirement_coverage(tmp_path: Path) -> None:
    stream = EventStream()
    path = tmp_path / "out" / "summary.json"
    stream.subscribe(JsonSummaryWriter(path))
    stream.emit(RunStarted(suite="kt1", target_name="t", target_url="http://t", target_kind="kt1-server"))
    stream.emit(scenario("s1", "passed", ("KT1-A", "KT1-B")))
    stream.emit(scenario("s2", "failed", ("KT1-B",), message="KT1-B: expected 200, got 500",
                         failed_requirement="KT1-B"))
    stream.emit(scenario("s3", "skipped", ()))
    # fails KT1-D after verifying KT1-C: only KT1-D is blamed; KT1-E was never reached
    stream.emit(scenario("s4", "failed", ("KT1-C", "KT1-D", "KT1-E"), message="KT1-D: no",
                         failed_requirement="KT1-D", checked_requirements=("KT1-C",)))
    assert not path.exists()  # written at the end only
    stream.emit(RunFinished(duration=2.5, counts=()))
    data = json.loads(path.read_text())
    assert data["verdict"] == "failed"
    assert data["counts"] == {"passed": 1, "failed": 2, "broken": 0, "skipped": 1, "total": 4}
    assert data["requirements"]["KT1-A"]["outcome"] == "passed"
    assert data["requirements"]["KT1-B"] == {"outcome": "failed", "counts": {"passed": 1, "failed": 1, "broken": 0,
                                                                             "skipped": 0},
                                             "scenarios": ["s1", "s2"], "failed_by": ["s2"]}
    requirements = data["requirements"]
    assert (requirements["KT1-C"]["outcome"], requirements["KT1-D"]["outcome"]) == ("passed", "failed")
    assert requirements["KT1-E"]["outcome"] == "skipped" and requirements["KT1-E"]["counts"]["failed"] == 0
    assert sum(1 for r in requirements.values() if r["outcome"] == "failed") == 2, "one blamed per failure"
    assert data["untraced_scenarios"] == ["s3"]
    assert data["target"]["url"] == "http://t"
    assert [s["outcome"] for s in data["scenarios"]] == ["passed", "failed", "skipped", "failed"]
    assert data["scenarios"][3]["failed_requirement"] == "KT1-D"


def test_console_summary_separates_failed_from_broken() -> None:
    results = RunResults()
    chunks: list[str] = []
    stream = EventStream()
    stream.subscribe(results)
    stream.subscribe(ConsoleSummary(chunks.append, results, width=120))
    stream.emit(RunStarted(suite="kt1", target_name="t", target_url="http://t", target_kind="kt1-server"))
    stream.emit(scenario("s1", "failed", ("KT1-A",), message="RequirementFailed: KT1-A: wrong fhirVersion",
                         failed_requirement="KT1-A"))
    stream.emit(scenario("s2", "broken", ("KT1-B",), message="TargetUnreachable: refused",
                         error_type="TargetUnreachable"))
    stream.emit(RunFinished(duration=1.0, counts=()))
    text = "".join(chunks)
    assert "2 scenario(s): 1 failed, 1 broken" in text
    assert "KT1-A" in text and "FAILED" in text and "KT1-B" in text and "BROKEN" in text
    assert text.index("Failed (target does not conform)") < text.index("wrong fhirVersion")
    assert text.index("Broken (could not be tested)") < text.index("TargetUnreachable: refused")
    assert "The target was unreachable" in text
    assert render_summary(RunResults()).startswith("0 scenario(s): none ran")


def test_allure_writer_attaches_exchanges_and_findings() -> None:
    attached: list[tuple[str, str]] = []
    writer = AllureAttachmentWriter(attach=lambda body, name: attached.append((name, body)))
    exchange = HttpExchange(method="GET", url="http://t/FHIR/Koppeltaal/metadata?x=1", status=200, role="portal",
                            request_headers=(("Authorization", "Basic ***"),),
                            response_headers=(("content-type", "application/json"),),
                            response_body='{"resourceType":"Conformance"}', elapsed=0.012)
    writer(exchange)
    writer(ValidationReported(subject="response to GET", content_type="application/json", ok=False,
                              findings=(Finding(severity="error", rule="kt1.cardinality", location="Conformance.x",
                                                message="missing"),)))
    writer(StepStarted(nodeid="n", keyword="When", text="ignored"))
    assert [name for name, _ in attached] == ["portal: GET /FHIR/Koppeltaal/metadata?x=1 -> 200 (12 ms)",
                                             "validation: 1 error(s), 0 other finding(s)"]
    body = attached[0][1]
    assert body.startswith("GET http://t/FHIR/Koppeltaal/metadata?x=1\n")
    assert "Authorization: Basic ***" in body and 'HTTP 200' in body
    assert '"resourceType": "Conformance"' in body  # pretty-printed
    assert "[ERROR] kt1.cardinality at Conformance.x" in attached[1][1]
    failed = HttpExchange(method="GET", url="http://t/", status=None, error="ConnectError: refused")
    assert "NO RESPONSE" in format_exchange(failed) and "no response" in exchange_title(failed)


def test_allure_run_files(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    (results / "history").mkdir(parents=True)
    for name in ("a-result.json", "b-container.json", "c-attachment.txt", "history/keep.json", "notes.md"):
        (results / name).write_text("{}")
    assert clean_results_dir(results) == 3
    assert sorted(p.name for p in results.rglob("*")) == ["history", "keep.json", "notes.md"]
    env = write_environment(results, {"Target.URL": "http://127.0.0.1:1", "Suite": "kt1"})
    assert env.read_text() == "Target.URL=http\\://127.0.0.1\\:1\nSuite=kt1\n"
    installed = install_categories(results, REPO / "reports" / "categories.json")
    assert installed is not None
    names = [c["name"] for c in json.loads(installed.read_text())]
    assert any("unreachable" in n.lower() for n in names)


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="s" errors="1"
failures="2" skipped="0" tests="4"><testcase classname="a" name="broken"><properties><property
name="ktbench.outcome" value="broken" /></properties><failure message="TargetUnreachable: x">trace</failure>
</testcase><testcase classname="a" name="failed"><properties><property name="ktbench.outcome" value="failed"
/></properties><failure message="AssertionError">t</failure></testcase><testcase classname="a" name="setup">
<error message="failed on setup">t</error></testcase><testcase classname="a" name="ok" /></testsuite></testsuites>
"""


def test_junit_broken_failures_become_errors(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT, encoding="utf-8")
    assert mark_broken_as_errors(path) == 1
    text = path.read_text(encoding="utf-8")
    assert 'errors="2"' in text and 'failures="1"' in text
    assert '<error message="TargetUnreachable: x">trace</error>' in text
    assert '<failure message="AssertionError">' in text
    assert mark_broken_as_errors(path) == 0  # idempotent
    assert mark_broken_as_errors(tmp_path / "missing.xml") == 0


def test_scrub_removes_known_secrets_from_output_files(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    leaky = tmp_path / "r" / "x-result.json"
    leaky.write_text(json.dumps({"trace": "assert 'portal-secret' == 'pa\"ss'"}), encoding="utf-8")
    clean = tmp_path / "r" / "y-attachment.txt"
    clean.write_text("nothing here", encoding="utf-8")
    binary = tmp_path / "r" / "z-attachment.png"
    binary.write_bytes(b"\x89PNG portal-secret")
    assert scrub_files([tmp_path / "r"], ["portal-secret", 'pa"ss']) == 1
    assert "portal-secret" not in leaky.read_text() and 'pa\\"ss' not in leaky.read_text()
    assert clean.read_text() == "nothing here"
    assert scrub_files([tmp_path / "r"], []) == 0

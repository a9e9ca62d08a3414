"""The plugin's verdicts on a purpose-built mini suite, run by plain pytest with `-p ktbench.runner.plugin`.

Each scenario ends a different way; the test checks that pytest, JUnit, Allure
and the JSON summary agree: an assertion is FAILED, anything else that stops a
scenario (bench error, undefined step, a fixture failing before the scenario
starts) is BROKEN (<error> in JUnit), pytest.skip is SKIPPED - and that every
scenario appears in Allure, also the one that never started.  And the
requirement plumbing: a failure blames exactly the requirement its check names,
a check naming a requirement the scenario does not carry is a bench defect
(BROKEN), a failed precondition is BROKEN naming the requirement the target
broke, and requirements verified before a failure stay passed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

FEATURE = """\
@mini
Feature: Mini suite
  @req:MINI-PASS @role:portal
  Scenario: passes
    Given a step that passes

  @req:MINI-FAIL
  Scenario: fails
    Given a step that passes
    Then the target answers 200

  @req:MINI-BENCH
  Scenario: breaks on a bench error
    Given a step that raises a bench error

  @req:MINI-BUG
  Scenario: breaks on an unexpected exception
    Given a step that raises KeyError

  @req:MINI-UNDEFINED
  Scenario: has an undefined step
    Given a step nobody wrote

  @req:MINI-SETUP
  Scenario: breaks before it starts
    Given a step that passes

  @req:MINI-SKIP
  Scenario: is skipped
    Given a step that skips

  @req:MINI-FIRST @req:MINI-SECOND
  Scenario: verifies one requirement and fails the next
    Then the first requirement holds
    And the second requirement does not

  @req:MINI-FIRST
  Scenario: names a requirement it does not carry
    Then a check names MINI-ELSEWHERE

  @req:MINI-FIRST @req:MINI-SECOND
  Scenario: fails a bare assert with two requirements
    Then a bare assert fails

  @req:MINI-SECOND
  Scenario: misses its precondition
    Given the target broke the precondition MINI-FIRST
    Then the second requirement does not
"""

STEPS = """\
import pytest
from pytest_bdd import given, scenarios, then

from ktbench.core.errors import BenchError
from ktbench.core.requirements import precondition, require
from ktbench.core.secret import Secret

scenarios("mini.feature")


@pytest.fixture(autouse=True)
def fails_for_one_scenario(request):
    if "before_it_starts" in request.node.name:
        raise RuntimeError("fixture exploded before the scenario")


@pytest.fixture
def secret_thing():
    return Secret("mini-secret-value")


@given("a step that passes")
def _(secret_thing, kt_target):
    assert secret_thing.reveal() == "mini-secret-value"


@then("the target answers 200")
def _():
    assert 404 == 200, "[MINI-FAIL] expected 200, got 404"


@given("a step that raises a bench error")
def _():
    raise BenchError("the bench could not do its job")


@given("a step that raises KeyError")
def _():
    {}["missing"]


@given("a step that skips")
def _():
    pytest.skip("not applicable to this target")


@then("the first requirement holds")
def _():
    require(True, "MINI-FIRST", "holds")


@then("the second requirement does not")
def _():
    require(False, "MINI-SECOND", "the target broke the second rule")


@then("a check names MINI-ELSEWHERE")
def _():
    require(True, "MINI-ELSEWHERE", "this scenario was not written to judge it")


@then("a bare assert fails")
def _():
    assert False, "which requirement?"


@given("the target broke the precondition MINI-FIRST")
def _():
    precondition(False, "MINI-FIRST", "the set-up the scenario needs failed")
"""


def test_outcomes_agree_across_reports(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "mini.feature").write_text(FEATURE, encoding="utf-8")
    (suite / "test_mini.py").write_text(STEPS, encoding="utf-8")
    alluredir, junit, summary = tmp_path / "allure", tmp_path / "junit.xml", tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "--rootdir", str(suite), "-p", "ktbench.runner.plugin",
         "--kt-generation", "ktbench.generations.kt1:GENERATION",
         "-p", "no:cacheprovider", "-p", "no:faker", "-p", "no:anyio", "--kt-target", "http://127.0.0.1:1",
         "--kt-summary", str(summary), "--alluredir", str(alluredir), "--junitxml", str(junit), "-rA"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output

    expected = {
        "passes": "passed",
        "fails": "failed",
        "breaks on a bench error": "broken",
        "breaks on an unexpected exception": "broken",
        "has an undefined step": "broken",
        "breaks before it starts": "broken",
        "is skipped": "skipped",
        "verifies one requirement and fails the next": "failed",
        "names a requirement it does not carry": "broken",
        "fails a bare assert with two requirements": "broken",
        "misses its precondition": "broken",
    }
    # the JSON summary
    data = json.loads(summary.read_text(encoding="utf-8"))
    assert {s["name"]: s["outcome"] for s in data["scenarios"]} == expected
    assert data["counts"] == {"passed": 1, "failed": 2, "broken": 7, "skipped": 1, "total": 11}
    scenario = {s["name"]: s for s in data["scenarios"]}
    assert scenario["fails"]["failed_requirement"] == "MINI-FAIL"  # a bare assert: the only requirement
    partly = scenario["verifies one requirement and fails the next"]
    assert partly["failed_requirement"] == "MINI-SECOND" and partly["checked_requirements"] == ["MINI-FIRST"]
    first = data["requirements"]["MINI-FIRST"]
    assert first["counts"]["failed"] == 0 and first["counts"]["passed"] == 1, "verified before the failure: not blamed"
    assert first["outcome"] == "broken"  # two other scenarios carrying it could not judge it
    assert data["requirements"]["MINI-SECOND"]["outcome"] == "failed"
    assert data["requirements"]["MINI-SECOND"]["failed_by"] == [partly["nodeid"]]
    assert "bench defect: a check names requirement MINI-ELSEWHERE" in scenario[
        "names a requirement it does not carry"]["message"]
    assert "bench defect: a failing check names no requirement" in scenario[
        "fails a bare assert with two requirements"]["message"]
    missed = scenario["misses its precondition"]
    assert missed["error_type"] == "PreconditionFailed" and "precondition not met: MINI-FIRST" in missed["message"]
    assert missed["failed_requirement"] is None
    by_name = {s["name"]: s for s in data["scenarios"]}
    assert by_name["breaks on a bench error"]["error_type"] == "BenchError"
    assert by_name["has an undefined step"]["error_type"] == "StepDefinitionNotFoundError"
    assert by_name["is skipped"]["message"] == "not applicable to this target"
    assert by_name["passes"]["roles"] == ["portal"]

    # Allure: every scenario, also the one whose fixture failed before it started
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    results = [r for r in results if not r["name"].startswith("Not tested by this suite")]  # the catalogue's
    assert {r["name"]: r["status"] for r in results} == expected
    unstarted = next(r for r in results if r["name"] == "breaks before it starts")
    assert "fixture exploded" in unstarted["statusDetails"]["message"]
    assert [s["name"] for s in unstarted["steps"]] == ["Given a step that passes"]
    assert {"name": "requirement", "value": "MINI-SETUP"} in unstarted["labels"]
    started = next(r for r in results if r["name"] == "fails")
    assert unstarted["historyId"].split(".")[1] == started["historyId"].split(".")[1]  # same parameters

    # JUnit: failures are conformance failures only; everything broken is an <error>
    suite_el = ET.parse(junit).getroot().find("testsuite")
    assert suite_el is not None
    assert (suite_el.get("failures"), suite_el.get("errors"), suite_el.get("skipped")) == ("2", "7", "1")
    for case in suite_el.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        kinds = {child.tag for child in case} - {"properties", "system-out", "system-err"}
        assert {"broken": {"error"}, "failed": {"failure"}, "passed": set(), "skipped": {"skipped"}}[
            props["ktbench.outcome"]] == kinds, case.get("name")

    # pytest's own terminal: BROKEN is shown as an error, with the reason
    assert "2 failed, 1 passed, 1 skipped, 7 errors" in output
    assert "BROKEN" in output

    # the Secret fixture was a step argument: fixtures are no step parameters in the report (only the step's
    # own arguments are), and its value appears nowhere
    everything = "".join(p.read_text(errors="replace") for p in alluredir.iterdir())
    assert "Secret(" not in everything and "secret_thing" not in everything
    assert "mini-secret-value" not in everything

"""The result as a tester and other tools see it: Finding, OperationOutcome JSON and plain text."""

from __future__ import annotations

import json

from test_validation_support import careplan_message, mutated
from ktbench.validation import Finding, ValidationResult, validate_bytes, validate_resource


def test_finding_api_is_positional_and_keyword_compatible() -> None:
    f = Finding("warning", "kt1.binding", "Bundle.entry[0].content.event", "odd code")
    assert (f.severity, f.rule, f.location, f.message, f.suppressed_reason) == (
        "warning", "kt1.binding", "Bundle.entry[0].content.event", "odd code", None)
    g = Finding(severity="error", rule="x.y", location="$", message="m", suppressed_reason="known")
    assert g.effective_severity == "information"
    assert f.to_dict() == {"severity": "warning", "rule": "kt1.binding", "location": "Bundle.entry[0].content.event", "message": "odd code"}


def test_ok_depends_on_unsuppressed_errors_only() -> None:
    assert ValidationResult([Finding("warning", "a", "$", "w"), Finding("information", "b", "$", "i")]).ok
    assert not ValidationResult([Finding("error", "a", "$", "e")]).ok
    assert ValidationResult([Finding("error", "a", "$", "e", "accepted")]).ok


def test_operation_outcome_shape() -> None:
    bad = mutated(careplan_message(), lambda m: m["entry"][1]["content"].pop("status"))
    oo = validate_resource(bad, kt=1).to_operation_outcome()
    assert oo["resourceType"] == "OperationOutcome"
    [issue] = oo["issue"]
    assert issue["severity"] == "error"
    assert issue["code"] == "required"
    assert issue["expression"] == ["Bundle.entry[1].content.status"]
    assert issue["details"]["coding"] == [{"system": "urn:ktbench:validation-rule", "code": "kt1.cardinality"}]
    assert "status" in issue["details"]["text"]
    json.dumps(oo)  # serialisable
    clean = validate_resource(careplan_message(), kt=1).to_operation_outcome()
    assert clean["issue"][0]["severity"] == "information"
    # the result is itself a valid KT2/R4 OperationOutcome
    assert validate_bytes(json.dumps(oo).encode(), kt=2).ok


def test_text_output_names_severity_rule_location_and_verdict() -> None:
    bad = mutated(careplan_message(), lambda m: m["entry"][1]["content"].pop("status"))
    text = validate_resource(bad, kt=1).to_text()
    first, *_, last = text.splitlines()
    assert first.startswith("error [kt1.cardinality] Bundle.entry[1].content.status: ")
    assert last == "INVALID (KT1 json): 1 error(s), 0 warning(s)"
    assert validate_resource(careplan_message(), kt=1).to_text() == "VALID (KT1 json): 0 error(s), 0 warning(s)"

"""Malformed input never crashes the validator: it becomes an `input.unreadable` finding."""

from __future__ import annotations

import json

import pytest

from test_validation_support import careplan_message, kt2_example
from ktbench.validation import validate_bytes, validate_resource
from ktbench.validation.reader import MAX_BYTES

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol3;</title></feed>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><text value="&x;"/></name></Patient>"""
VALID = json.dumps(careplan_message()).encode()

BAD_INPUTS = {
    "empty": b"",
    "whitespace": b"  \n\t ",
    "truncated-json": VALID[: len(VALID) // 2],
    "truncated-xml": b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="text/xml"><Patient xmlns="http://hl7.org/fhir">',
    "binary": bytes(range(256)) * 4,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "json-array": b"[1, 2, 3]",
    "json-string": b'"Patient"',
    "json-nan": b'{"resourceType": "Patient", "x": NaN}',
    "latin1-json": '{"resourceType": "Patient", "name": [{"text": "Jos\xe9"}]}'.encode("latin-1"),
    "deep-json": b"[" * 100_000 + b"]" * 100_000,
    "billion-laughs": BILLION_LAUGHS,
    "xxe": XXE,
    "xml-garbage": b"<<<>>>",
    "deep-xml": b'<Patient xmlns="http://hl7.org/fhir">' + b'<extension url="http://x">' * 5000 + b"</extension>" * 5000 + b"</Patient>",
    "not-a-document": b"hello world",
    "huge": b'{"resourceType": "Patient", "x": "' + b"a" * (MAX_BYTES + 10) + b'"}',
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_a_finding_not_an_exception(name: str) -> None:
    result = validate_bytes(BAD_INPUTS[name])
    assert [f.rule for f in result.findings] == ["input.unreadable"], result.to_text()
    finding = result.findings[0]
    assert finding.severity == "error" and finding.message
    assert not result.ok
    assert "UNREADABLE" in result.to_text()
    assert result.to_operation_outcome()["issue"][0]["severity"] == "error"


def test_not_bytes_is_a_finding() -> None:
    result = validate_bytes("a str, not bytes")  # type: ignore[arg-type]
    assert [f.rule for f in result.findings] == ["input.unreadable"]


def test_json_without_resource_type() -> None:
    result = validate_bytes(b'{"name": "x"}', kt=2)
    assert [(f.rule, f.location) for f in result.findings] == [("kt2.structure", "Resource")]


def test_unknown_resource_type() -> None:
    result = validate_bytes(b'{"resourceType": "Spaceship"}', kt=2)
    assert [(f.rule, f.location) for f in result.findings] == [("kt2.structure", "Spaceship.resourceType")]


def test_deeply_nested_but_parseable_json_is_reported() -> None:
    inner = {"url": "http://example.org/x", "valueString": "v"}
    for _ in range(600):
        inner = {"url": "http://example.org/x", "extension": [inner]}
    result = validate_resource({"resourceType": "Patient", "extension": [inner]}, kt=2)
    assert "input.unreadable" in {f.rule for f in result.findings}


def test_kt2_xml_is_unsupported() -> None:
    result = validate_bytes(b'<Patient xmlns="http://hl7.org/fhir"/>', kt=2)
    assert [f.rule for f in result.findings] == ["input.unsupported"]


def test_validate_resource_rejects_non_dict_and_bad_kt() -> None:
    assert [f.rule for f in validate_resource([], kt=1).findings] == ["input.unreadable"]  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        validate_resource({}, kt=3)


# ------------------------------------------------------------------------------ detection
@pytest.mark.parametrize(
    ("doc", "kt"),
    [
        (careplan_message(), 1),
        ({"resourceType": "Other", "code": {"coding": [{"system": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/OtherResourceUsage", "code": "CareTeam"}]}}, 1),
        ({"resourceType": "Bundle", "title": "Search", "id": "urn:uuid:1", "entry": []}, 1),
        ({"resourceType": "MessageHeader", "identifier": "x", "event": {"code": "x"}}, 1),
        ({"resourceType": "Patient", "gender": {"coding": [{"code": "M"}]}}, 1),
        (kt2_example("task-minimaal"), 2),
        ({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient"}}]}, 2),
        ({"resourceType": "Task", "status": "ready"}, 2),
        ({"resourceType": "Patient", "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}, 2),
    ],
)
def test_kt_detection(doc: dict, kt: int) -> None:
    assert validate_bytes(json.dumps(doc).encode()).kt == kt


def test_content_type_decides_the_format() -> None:
    result = validate_bytes(b'  {"resourceType": "Task"}', content_type="application/fhir+json; charset=utf-8")
    assert result.format == "json"
    result = validate_bytes(b"\xef\xbb\xbf" + json.dumps(careplan_message()).encode())
    assert result.format == "json" and result.ok, result.to_text()


def test_other_r4_resources_are_accepted_unchecked_and_capability_statement_is_checked() -> None:
    cs = {"resourceType": "CapabilityStatement", "status": "active", "date": "2024-01-01", "kind": "instance",
          "fhirVersion": "4.0.1", "format": ["json"], "rest": [{"mode": "server"}]}
    assert validate_resource(cs, kt=2).findings == []
    broken = dict(cs, kind="somewhere")
    assert [(f.rule, f.location) for f in validate_resource(broken, kt=2).findings] == [("kt2.binding", "CapabilityStatement.kind")]
    result = validate_resource({"resourceType": "Questionnaire", "status": "active"}, kt=2)
    assert result.ok and [(f.severity, f.rule) for f in result.findings] == [("information", "kt2.structure")]


def test_preload_compiles_both_standards() -> None:
    from ktbench.validation import kt1, kt2, preload

    preload()
    assert kt1.standard.cache_info().currsize == 1 and kt2.standard.cache_info().currsize == 1

"""Ground truth: every complete real KT1 fixture validates without errors.

The fixtures (../shared/fixtures/kt1/) are what real servers, the Python
connector, the koppeltaal-schema repository and the KT1.3 documentation show
on the wire.  A finding of severity `error` on them is a validator bug -- except
for the files listed below, each with the reason; the same list is in
profiles/README.md.  For the documentation examples with a real defect, the test
pins exactly which error the validator must report.
"""

from __future__ import annotations

import pytest

from test_validation_support import KT1_FIXTURES, errors
from ktbench.validation import validate_bytes

# Not FHIR at all: OAuth token/launch responses from the documentation.
NOT_FHIR = {
    "Koppeltaal-Documentation__specification_02.json": "OAuth token response",
    "Koppeltaal-Documentation__td-refresh-tokens_00.json": "OAuth token response",
    "Koppeltaal-Documentation__td-refresh-tokens_03.json": "OAuth refresh-token response",
    "Koppeltaal-Documentation__technologie-architectuur_13.json": "mobile launch activation code response",
    "Koppeltaal-Documentation__technologie-architectuur_14.json": "mobile authorize response",
    "Koppeltaal-Documentation__technologie-architectuur_15.json": "OAuth token response",
}

# Abbreviated documentation examples ("..." / "…" where content was left out, or a fragment): the XML
# codec cannot read them, so validation must end in exactly one input.unreadable finding.
ABBREVIATED = {
    "Koppeltaal-Documentation__technologie-architectuur_00.xml": "MessageHeader with '…' for left-out elements",
    "Koppeltaal-Documentation__technologie-architectuur_01.xml": "CarePlan with '…' for left-out elements",
    "Koppeltaal-Documentation__technologie-architectuur_05.xml": "OperationOutcome whose narrative is '…'",
    "Koppeltaal-Documentation__technologie-architectuur_06.xml": "MessageHeader with '…' for left-out elements",
    "Koppeltaal-Documentation__voorbeelden-berichtenverkeer_05.xml": "CarePlan with '...' for left-out elements",
    "Koppeltaal-Documentation__voorbeelden-berichtenverkeer_06.xml": "CarePlan with '...' for left-out elements",
    "Koppeltaal-Documentation__td-care-plan_05.xml": "extension fragment with '...', no FHIR namespace",
    "Koppeltaal-Documentation__ug-using-soapui-rest-api-test_06.xml": "MessageHeader fragment in the Atom namespace",
}

# Complete examples with a real defect: the validator must report exactly these errors (rule, location).
EXPECTED_ERRORS = {
    "Koppeltaal-Python-Connector__bundle_one_error.json": (
        "the connector's own test fixture for a broken CarePlan: activity without StartDate",
        {("kt1.cardinality", "Bundle.entry[2].content.activity[0].extension('http://ggz.koppeltaal.nl/fhir/Koppeltaal/CarePlan#StartDate')")},
    ),
    "Koppeltaal-Documentation__td-refresh-tokens_01.xml": (
        "documentation OperationOutcome without the required issue.severity",
        {("kt1.cardinality", "OperationOutcome.issue[0].severity")},
    ),
    "Koppeltaal-Documentation__td-refresh-tokens_02.json": (
        "documentation OperationOutcome without the required issue.severity",
        {("kt1.cardinality", "OperationOutcome.issue[0].severity")},
    ),
    "Koppeltaal-Documentation__technologie-architectuur_02.xml": (
        "documentation Other with a vzvz.nl OtherResourceUsage system instead of ggz.koppeltaal.nl",
        {("kt1.binding", "Other.code.coding[0]")},
    ),
    "Koppeltaal-Documentation__technologie-architectuur_03.xml": (
        "documentation Patient with gender as a plain code (DSTU1 needs a CodeableConcept)",
        {("kt1.structure", "Patient.gender")},
    ),
    "Koppeltaal-Documentation__technologie-architectuur_04.json": (
        "documentation Patient (JSON) with the typo 'familiy' and gender as a plain string",
        {("kt1.structure", "Patient.name[0].familiy"), ("kt1.structure", "Patient.gender")},
    ),
    "Koppeltaal-Documentation__td-care-plan_08.xml": (
        "documentation example whose Questionnaire.authored holds a .NET type name instead of a date",
        {("kt1.type", "Bundle.entry[2].content.authored")},
    ),
    "Koppeltaal-Documentation__ug-using-soapui-rest-api-test_01.xml": (
        "documentation site stripped the <data> and <code> wrapper tags; entry id and self link are swapped",
        {
            ("kt1.structure", "Bundle.entry[0].content.reference"),
            ("kt1.message.focal", "Bundle.entry[0].content.data"),
            ("kt1.structure", "Bundle.entry[1].content.coding"),
            ("kt1.cardinality", "Bundle.entry[1].content.code"),
            # without Other.code the UserMessage profile cannot be chosen: its extensions are out of context
            ("kt1.extension-context", "Bundle.entry[1].content.extension[0].url"),
            ("kt1.extension-context", "Bundle.entry[1].content.extension[1].url"),
            ("kt1.extension-context", "Bundle.entry[1].content.extension[2].url"),
            ("kt1.extension-context", "Bundle.entry[1].content.extension[3].url"),
            ("kt1.feed.entry-id", "Bundle.entry[1].id"),
            ("kt1.feed.self-link", "Bundle.entry[1].link"),
        },
    ),
    "Koppeltaal-Documentation__ug-using-soapui-rest-api-test_03.xml": (
        "documentation site stripped the <data> wrapper tag",
        {("kt1.structure", "Bundle.entry[0].content.reference"), ("kt1.message.focal", "Bundle.entry[0].content.data")},
    ),
}


def _fixtures() -> list[str]:
    if not KT1_FIXTURES.is_dir():
        return []
    return sorted(p.name for p in KT1_FIXTURES.iterdir() if p.suffix in (".json", ".xml"))


FIXTURES = _fixtures()


def _validate(name: str):
    data = (KT1_FIXTURES / name).read_bytes()
    ctype = "application/xml" if name.endswith(".xml") else "application/json"
    return validate_bytes(data, content_type=ctype, kt=1)


@pytest.mark.skipif(not FIXTURES, reason=f"shared KT1 fixtures not available at {KT1_FIXTURES}")
@pytest.mark.parametrize("name", FIXTURES or ["-"])
def test_real_fixture_verdict(name: str) -> None:
    if name in NOT_FHIR:
        pytest.skip(f"not a FHIR document: {NOT_FHIR[name]}")
    result = _validate(name)
    if name in ABBREVIATED:
        assert [f.rule for f in result.findings] == ["input.unreadable"], result.to_text()
        return
    if name in EXPECTED_ERRORS:
        reason, expected = EXPECTED_ERRORS[name]
        assert set(errors(result)) == expected, f"{reason}\n{result.to_text()}"
        assert not result.ok
        return
    assert errors(result) == [], result.to_text()
    assert result.ok
    assert result.kt == 1
    assert result.format == ("xml" if name.endswith(".xml") else "json")


@pytest.mark.skipif(not FIXTURES, reason=f"shared KT1 fixtures not available at {KT1_FIXTURES}")
def test_exception_lists_name_existing_fixtures() -> None:
    """A renamed fixture must not silently drop out of the expectation lists."""
    listed = set(NOT_FHIR) | set(ABBREVIATED) | set(EXPECTED_ERRORS)
    assert listed <= set(FIXTURES), sorted(listed - set(FIXTURES))


@pytest.mark.skipif(not FIXTURES, reason=f"shared KT1 fixtures not available at {KT1_FIXTURES}")
@pytest.mark.parametrize("name", [
    "Koppeltaal-Python-Connector__bundle_one_message.json",
    "generated-by-koppeltaal-1.3.5.14__request_CreateOrUpdateCarePlan_update.json",
    "generated-by-koppeltaal-1.3.5.14__request_POST_Other_ActivityDefinition.json",
    "CreateOrUpdateCarePlan.xml",
    "Koppeltaal-Documentation__voorbeelden-berichtenverkeer_09.xml",
])
def test_real_fixtures_are_detected_as_kt1(name: str) -> None:
    if name not in FIXTURES:
        pytest.skip(f"{name} not in this copy of the fixtures")
    result = validate_bytes((KT1_FIXTURES / name).read_bytes())
    assert result.kt == 1
    assert result.ok, result.to_text()


@pytest.mark.skipif(not FIXTURES, reason=f"shared KT1 fixtures not available at {KT1_FIXTURES}")
def test_real_quirks_are_warnings_not_errors() -> None:
    """Tolerated real-world deviations stay visible as warnings with a stable rule id."""
    result = _validate("CreateOrUpdateCarePlan.xml")
    warn = {(f.rule, f.location) for f in result.findings if f.severity == "warning"}
    # the JS clients' gender system (the value-set URL used as Coding.system)
    assert ("kt1.binding", "Bundle.entry[2].content.gender.coding[0]") in warn
    # entries identified by their self link only
    assert ("kt1.feed.entry-id", "Bundle.entry[2].id") in warn
    result = _validate("UpdateCarePlanActivityStatus.xml")
    warn = {(f.rule, f.location) for f in result.findings if f.severity == "warning"}
    assert ("kt1.extension-type", "Bundle.entry[1].content.extension[1].valueDecimal") in warn
    assert ("kt1.cardinality", "Bundle.entry[0].content.source") in warn

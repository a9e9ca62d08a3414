"""Each KT1 rule family, proven on a mutated copy of a valid message: rule id AND location.

The valid messages come from test_validation_support (connector-shaped, no
shared data needed); each test breaks one thing and checks the validator
points at exactly that place with the right rule id.
"""

from __future__ import annotations

import pytest

from test_validation_support import NS, activity_status_message, careplan_message, errors, mutated, warnings
from ktbench.validation import validate_bytes, validate_resource

SD = NS + "CarePlan#StartDate"
ACT = "Bundle.entry[1].content.activity[0]"


def check(msg: dict):
    return validate_resource(msg, kt=1)


def ext(obj: dict, url: str) -> dict:
    return next(x for x in obj["extension"] if x["url"] == url)


def test_valid_message_has_no_findings() -> None:
    result = check(careplan_message())
    assert result.ok and result.findings == [], result.to_text()
    assert result.profiles[:2] == ["kt1-MessageHeader", "kt1-CarePlan"]


# ------------------------------------------------------------------------------ bindings
@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda m: ext(m["entry"][1]["content"]["activity"][0], NS + "CarePlan#ActivityStatus")["valueCoding"].update(code="Started"),
         f"{ACT}.extension[5].valueCoding"),
        (lambda m: m["entry"][0]["content"]["event"].update(code="CreateOrUpdateCarePlans"), "Bundle.entry[0].content.event"),
        (lambda m: m["entry"][1]["content"].update(status="running"), "Bundle.entry[1].content.status"),
        (lambda m: m["entry"][1]["content"]["participant"][0]["role"]["coding"][0].update(code="Boss"),
         "Bundle.entry[1].content.participant[0].role.coding[0]"),
        (lambda m: m["entry"][2]["content"]["gender"]["coding"][0].update(code="X"), "Bundle.entry[2].content.gender.coding[0]"),
        (lambda m: ext(m["entry"][1]["content"]["activity"][0], NS + "CarePlan#ActivityKind")["valueCoding"].update(system=NS + "ActivityKinds"),
         f"{ACT}.extension[2].valueCoding"),
    ],
    ids=["activity-status", "event", "careplan-status", "participant-role", "gender", "activity-kind-system"],
)
def test_wrong_code_is_a_binding_error(mutate, location: str) -> None:
    result = check(mutated(careplan_message(), mutate))
    assert ("kt1.binding", location) in errors(result), result.to_text()
    assert not result.ok


def test_unknown_other_code_is_a_binding_error() -> None:
    msg = mutated(activity_status_message(), lambda m: m["entry"][1]["content"]["code"]["coding"][0].update(code="ActivityState"))
    result = check(msg)
    assert ("kt1.binding", "Bundle.entry[1].content.code.coding[0]") in errors(result), result.to_text()


# ------------------------------------------------------------------------------ cardinality
@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda m: m["entry"][1]["content"].pop("status"), "Bundle.entry[1].content.status"),
        (lambda m: m["entry"][1]["content"]["participant"][0].pop("member"), "Bundle.entry[1].content.participant[0].member"),
        (lambda m: m["entry"][0]["content"].pop("timestamp"), "Bundle.entry[0].content.timestamp"),
        (lambda m: m["entry"][2]["content"].pop("name"), "Bundle.entry[2].content.name"),
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"].pop(4), f"{ACT}.extension('{SD}')"),
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"].pop(5),
         f"{ACT}.extension('{NS}CarePlan#ActivityStatus')"),
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"][3]["extension"].pop(0),
         f"{ACT}.extension[3].extension('{NS}CarePlan#ParticipantMember')"),
    ],
    ids=["careplan-status", "participant-member", "timestamp", "patient-name", "start-date", "activity-status", "participant-member-ext"],
)
def test_missing_required_element(mutate, location: str) -> None:
    result = check(mutated(careplan_message(), mutate))
    assert ("kt1.cardinality", location) in errors(result), result.to_text()


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"].append(
            {"url": SD, "valueDateTime": "2026-02-01"}), f"{ACT}.extension('{SD}')"),
        (lambda m: m["entry"][1]["content"].update(patient=[{"reference": "x"}, {"reference": "y"}]), "Bundle.entry[1].content.patient"),
        (lambda m: m["entry"][2]["content"]["extension"].append({"url": NS + "Patient#Age", "valueInteger": 3}),
         f"Bundle.entry[2].content.extension('{NS}Patient#Age')"),
        (lambda m: m["entry"][0]["content"].update(event=[m["entry"][0]["content"]["event"]] * 2), "Bundle.entry[0].content.event"),
    ],
    ids=["start-date-twice", "careplan-patient-array", "age-twice", "event-array"],
)
def test_too_many_occurrences(mutate, location: str) -> None:
    result = check(mutated(careplan_message(), mutate))
    assert ("kt1.cardinality", location) in errors(result), result.to_text()


def test_processing_status_needs_last_changed() -> None:
    def add(m):
        m["entry"][0]["content"]["extension"].append(
            {"url": NS + "MessageHeader#ProcessingStatus", "extension": [{"url": NS + "MessageHeader#ProcessingStatusStatus", "valueCode": "New"}]}
        )
        m["entry"][0]["link"] = [{"rel": "self", "href": m["entry"][0]["id"] + "/_history/1"}]

    result = check(mutated(careplan_message(), add))
    assert ("kt1.cardinality", f"Bundle.entry[0].content.extension[1].extension('{NS}MessageHeader#ProcessingStatusStatusLastChanged')") in errors(result)


# ------------------------------------------------------------------------------ types and structure
def test_wrong_extension_value_type() -> None:
    def swap(m):
        e = ext(m["entry"][1]["content"]["activity"][0], SD)
        e["valueString"] = e.pop("valueDateTime")

    result = check(mutated(careplan_message(), swap))
    assert errors(result) == [("kt1.extension-type", f"{ACT}.extension[4].valueString")], result.to_text()


def test_tolerated_extension_type_is_a_warning() -> None:
    def decimal(m):
        e = m["entry"][1]["content"]["extension"][2]
        e["valueDecimal"] = float(e.pop("valueInteger"))

    result = check(mutated(activity_status_message(), decimal))
    assert result.ok
    assert ("kt1.extension-type", "Bundle.entry[1].content.extension[2].valueDecimal") in warnings(result)


def test_complex_extension_with_a_value_is_rejected() -> None:
    def flatten(m):
        m["entry"][1]["content"]["activity"][0]["extension"][3] = {"url": NS + "CarePlan#Participant", "valueString": "x"}

    result = check(mutated(careplan_message(), flatten))
    assert ("kt1.extension-type", f"{ACT}.extension[3].valueString") in errors(result), result.to_text()


def test_bad_primitive_format() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][2]["content"].update(birthDate="01-05-1990")))
    assert errors(result) == [("kt1.type", "Bundle.entry[2].content.birthDate")], result.to_text()


def test_unknown_element() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][1]["content"].update(sttaus="active")))
    assert ("kt1.structure", "Bundle.entry[1].content.sttaus") in errors(result)


def test_choice_element_twice() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][2]["content"].update(deceasedBoolean=False, deceasedDateTime="2020")))
    assert ("kt1.cardinality", "Bundle.entry[2].content.deceasedDateTime") in errors(result), result.to_text()


# ------------------------------------------------------------------------------ extension URLs
def test_wrong_extension_url() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][1]["content"]["activity"][0]["extension"][4].update(url=SD + "s")))
    errs = errors(result)
    assert ("kt1.extension-url", f"{ACT}.extension[4].url") in errs, result.to_text()
    assert ("kt1.cardinality", f"{ACT}.extension('{SD}')") in errs  # the real StartDate is now missing


def test_extension_in_the_wrong_place() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][1]["content"].setdefault("extension", []).append(
        {"url": NS + "Patient#Age", "valueInteger": 4})))
    assert errors(result) == [("kt1.extension-context", "Bundle.entry[1].content.extension[0].url")], result.to_text()


def test_foreign_extension_is_information_only() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][2]["content"]["extension"].append(
        {"url": "http://example.org/fhir/ext#color", "valueString": "blue"})))
    assert result.ok
    info = [(f.rule, f.location) for f in result.findings if f.severity == "information"]
    assert info == [("kt1.extension-url", "Bundle.entry[2].content.extension[1].url")]


def test_relative_koppeltaal_extension_url_is_resolved_with_a_warning() -> None:
    def rel(m):
        ext(m["entry"][1]["content"]["activity"][0], SD)["url"] = "StartDate"

    result = check(mutated(careplan_message(), rel))
    assert result.ok, result.to_text()
    assert ("kt1.extension-url", f"{ACT}.extension[4].url") in warnings(result)


# ------------------------------------------------------------------------------ feed: ids, self links, categories
def test_self_link_naming_another_resource() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][2]["link"][0].update(href=m["entry"][3]["id"])))
    assert errors(result) == [("kt1.feed.self-link", "Bundle.entry[2].link")], result.to_text()


def test_missing_self_link() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][3].pop("link")))
    assert errors(result) == [("kt1.feed.self-link", "Bundle.entry[3].link")], result.to_text()


def test_versioned_entry_id() -> None:
    def versioned(m):
        m["entry"][2]["id"] += "/_history/7"
        m["entry"][2]["link"][0]["href"] = m["entry"][2]["id"]

    result = check(mutated(careplan_message(), versioned))
    assert ("kt1.feed.entry-id", "Bundle.entry[2].id") in errors(result), result.to_text()


def test_entry_without_id_or_link() -> None:
    def anonymous(m):
        m["entry"][3].pop("id")
        m["entry"][3].pop("link")

    result = check(mutated(careplan_message(), anonymous))
    assert ("kt1.feed.entry-id", "Bundle.entry[3].id") in errors(result), result.to_text()


def test_entry_link_object_is_a_tolerated_quirk() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][2].update(link=m["entry"][2]["link"][0])))
    assert result.ok, result.to_text()
    assert ("kt1.feed.link", "Bundle.entry[2].link") in warnings(result)


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda m: m["category"].pop(0), "Bundle.category"),
        (lambda m: m["category"].pop(1), "Bundle.category"),
        (lambda m: m["category"][0].update(scheme="http://hl7.org/fhir/tag"), "Bundle.category[0].scheme"),
        (lambda m: m["category"].append({"term": "http://example.org/x", "scheme": "http://example.org"}), "Bundle.category"),
    ],
    ids=["no-domain", "no-message-tag", "domain-scheme", "three-categories"],
)
def test_feed_categories(mutate, location: str) -> None:
    result = check(mutated(careplan_message(), mutate))
    assert ("kt1.feed.category", location) in errors(result), result.to_text()


# ------------------------------------------------------------------------------ message rules
def test_focal_reference_must_resolve() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][0]["content"]["data"][0].update(reference="https://x/CarePlan/404")))
    assert errors(result) == [("kt1.message.focal", "Bundle.entry[0].content.data[0].reference")], result.to_text()


def test_focal_must_match_the_event() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][0]["content"]["data"][0].update(reference=m["entry"][2]["id"])))
    assert errors(result) == [("kt1.message.focal", "Bundle.entry[0].content.data[0].reference")], result.to_text()
    assert "CarePlan" in result.findings[0].message


def test_focal_version_must_match_the_self_link() -> None:
    def versions(m):
        m["entry"][1]["link"][0]["href"] = m["entry"][1]["id"] + "/_history/2"
        m["entry"][0]["content"]["data"][0]["reference"] = m["entry"][1]["id"] + "/_history/1"

    result = check(mutated(careplan_message(), versions))
    assert errors(result) == [("kt1.message.focal", "Bundle.entry[0].content.data[0].reference")], result.to_text()


def test_message_header_must_come_first() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"].reverse()))
    assert ("kt1.message.header", "Bundle.entry[0].content") in errors(result), result.to_text()


def test_patient_extension_required_for_careplan() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][0]["content"].pop("extension")))
    assert errors(result) == [("kt1.message.patient", f"Bundle.entry[0].content.extension('{NS}MessageHeader#Patient')")]


def test_patient_must_travel_with_a_careplan() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"].pop(2)))
    assert ("kt1.message.patient", "Bundle.entry[0].content.extension[0].valueResource.reference") in errors(result), result.to_text()


def test_reference_target_type_checked_inside_the_bundle() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][1]["content"]["patient"].update(reference=m["entry"][3]["id"])))
    assert ("kt1.reference", "Bundle.entry[1].content.patient") in errors(result), result.to_text()


def test_unsupported_resource_type() -> None:
    def condition(m):
        m["entry"].append({"id": "https://x/Condition/1", "link": [{"rel": "self", "href": "https://x/Condition/1"}],
                           "content": {"resourceType": "Condition", "subject": {"reference": "https://x/Patient/1"},
                                       "code": {"text": "x"}, "status": "confirmed"}})

    result = check(mutated(careplan_message(), condition))
    assert ("kt1.resource-type", "Bundle.entry[4].content.resourceType") in errors(result), result.to_text()


def test_mailbox_reply_needs_no_resolvable_focal() -> None:
    def reply(m):
        header = m["entry"][0]["content"]
        header["response"] = {"identifier": "5f2c3d1e-aaaa-4bbb-8ccc-0123456789ab", "code": "ok"}
        header["data"] = [{"reference": "https://elsewhere/CarePlan/1/_history/3"}]
        m["entry"] = m["entry"][:1]

    result = check(mutated(careplan_message(), reply))
    assert result.ok, result.to_text()


def test_activity_status_message_valid_and_focal_checked() -> None:
    assert check(activity_status_message()).ok
    result = check(mutated(activity_status_message(), lambda m: m["entry"][0]["content"]["event"].update(code="CreateOrUpdateUserMessage")))
    assert ("kt1.message.focal", "Bundle.entry[0].content.data[0].reference") in errors(result)


# ------------------------------------------------------------------------------ XML: the same model, the same locations
def _xml(msg: dict) -> bytes:
    from ktbench.fhir.dstu1.xmlcodec import to_xml

    return to_xml(msg)


def test_xml_form_of_a_valid_message_is_valid() -> None:
    result = validate_bytes(_xml(careplan_message()))
    assert (result.kt, result.format) == (1, "xml")
    assert result.ok and result.findings == [], result.to_text()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: ext(m["entry"][1]["content"]["activity"][0], NS + "CarePlan#ActivityStatus")["valueCoding"].update(code="Started"),
         ("kt1.binding", f"{ACT}.extension[5].valueCoding")),
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"].pop(4), ("kt1.cardinality", f"{ACT}.extension('{SD}')")),
        (lambda m: m["entry"][2]["link"][0].update(href=m["entry"][3]["id"]), ("kt1.feed.self-link", "Bundle.entry[2].link")),
        (lambda m: m["entry"][1]["content"]["activity"][0]["extension"][4].update(url=SD + "s"), ("kt1.extension-url", f"{ACT}.extension[4].url")),
        (lambda m: m["entry"][2]["content"]["extension"].append({"url": NS + "Patient#Age", "valueInteger": 3}),
         ("kt1.cardinality", f"Bundle.entry[2].content.extension('{NS}Patient#Age')")),
    ],
    ids=["binding", "missing-start-date", "self-link", "extension-url", "age-twice"],
)
def test_xml_mutations_fail_at_the_same_location(mutate, expected) -> None:
    result = validate_bytes(_xml(mutated(careplan_message(), mutate)), content_type="application/xml")
    assert result.format == "xml"
    assert expected in errors(result), result.to_text()


def test_percentage_out_of_range_is_a_warning() -> None:
    msg = mutated(activity_status_message(), lambda m: m["entry"][1]["content"]["extension"][2].update(valueInteger=140))
    result = check(msg)
    assert result.ok
    assert ("kt1.value", "Bundle.entry[1].content.extension[2].valueInteger") in warnings(result)


def test_versioned_reference_outside_data_is_a_warning() -> None:
    result = check(mutated(careplan_message(), lambda m: m["entry"][1]["content"]["patient"].update(
        reference=m["entry"][2]["id"] + "/_history/1")))
    assert result.ok, result.to_text()
    assert ("kt1.reference", "Bundle.entry[1].content.patient") in warnings(result)


def test_finding_flood_is_capped_but_keeps_the_verdict() -> None:
    def flood(m):
        entry = m["entry"][3]
        m["entry"].extend([{**entry, "content": {**entry["content"], "nonsense": 1}}] * 1500)

    result = check(mutated(careplan_message(), flood))
    assert len(result.findings) == 1001
    assert result.findings[-1].rule == "validator.truncated" and not result.ok


def test_empty_claim_result_is_not_a_broken_message() -> None:
    empty = {k: v for k, v in careplan_message().items() if k != "entry"} | {"entry": []}
    result = check(empty)
    assert result.ok and result.findings == [], result.to_text()


# ------------------------------------------------------------------------------ tolerances stay narrow
def _header(msg: dict) -> dict:
    return msg["entry"][0]["content"]


def test_a_tolerance_covers_exactly_its_quirk_and_nothing_else() -> None:
    """urn:uuid: message identifiers and empty source strings are real-server quirks (warnings); any other
    value breaking the same rule is still an error."""
    quirk = mutated(careplan_message(), lambda m: _header(m).update(
        identifier="urn:uuid:0b8f2f9e-7d9c-4b3a-9a6e-1f2e3d4c5b6a", source={**_header(m)["source"], "name": ""}))
    result = check(quirk)
    assert result.ok, result.to_text()
    assert ("kt1.type", "Bundle.entry[0].content.identifier") in warnings(result)
    assert ("kt1.value", "Bundle.entry[0].content.source.name") in warnings(result)

    for mutate, location, rule in (
            (lambda m: _header(m).update(identifier="Not An Id!"), "Bundle.entry[0].content.identifier", "kt1.type"),
            (lambda m: _header(m).update(identifier="urn:uuid:not-a-uuid"), "Bundle.entry[0].content.identifier",
             "kt1.type"),
            (lambda m: m["entry"][2]["content"]["name"][0].update(family=[""]),
             "Bundle.entry[2].content.name[0].family[0]", "kt1.value")):
        broken = check(mutated(careplan_message(), mutate))
        assert (rule, location) in errors(broken), broken.to_text()


def test_a_relaxed_type_severity_without_its_pattern_is_refused() -> None:
    from ktbench.validation.loader import ProfileDataError, _constraint  # noqa: PLC2701

    with pytest.raises(ProfileDataError, match="needs `tolerated`"):
        _constraint({"type_severity": "warning"}, {}, "test")

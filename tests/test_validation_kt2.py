"""KT2 (R4 JSON): the IG's own examples pass, mutated copies fail at the right place with the right rule.

The examples are the FSH `Instance:` examples of the KT2 IG v0.16.3, converted
once by profiles/tools/build_kt2.py into profiles/kt2/examples/ (no shared data
needed at test time).
"""

from __future__ import annotations

import json

import pytest

from test_validation_support import KT2_EXAMPLES, errors, kt2_example, mutated, warnings
from ktbench.validation import validate_bytes, validate_resource

KT2 = "http://koppeltaal.nl/fhir/StructureDefinition/"
ORIGIN = KT2 + "resource-origin"
MANIFEST = json.loads((KT2_EXAMPLES / "manifest.json").read_text(encoding="utf-8"))
KT2_PROFILED = sorted(n for n, m in MANIFEST.items() if (m.get("profile") or "").startswith(KT2))


def check(obj: dict):
    return validate_resource(obj, kt=2)


def test_examples_cover_all_eleven_profiles() -> None:
    profiles = {MANIFEST[n]["profile"] for n in KT2_PROFILED}
    assert len(profiles) == 11, profiles


@pytest.mark.parametrize("name", KT2_PROFILED)
def test_ig_example_passes(name: str) -> None:
    result = check(kt2_example(name))
    assert errors(result) == [], result.to_text()
    assert warnings(result) == [], result.to_text()
    assert result.profiles == [MANIFEST[name]["profile"].rsplit("/", 1)[-1]]


def test_detection_of_kt2_json() -> None:
    data = json.dumps(kt2_example("task-minimaal")).encode()
    result = validate_bytes(data)
    assert (result.kt, result.format, result.ok) == (2, "json", True)


# ------------------------------------------------------------------------------ mutations
CASES = [
    # (example, mutation, rule, location)
    ("task-minimaal", lambda r: r.pop("identifier"), "kt2.cardinality", "Task.identifier"),
    ("task-minimaal", lambda r: r.pop("owner"), "kt2.cardinality", "Task.owner"),
    ("task-minimaal", lambda r: r.update(note=[{"text": "x"}]), "kt2.cardinality", "Task.note"),
    ("task-minimaal", lambda r: r.update(identifier=[r["identifier"][0]] * 2, priority="urgent"), "kt2.fixed", "Task.priority"),
    ("task-minimaal", lambda r: r.update(status="finished"), "kt2.binding", "Task.status"),
    ("task-minimaal", lambda r: r.update(intent="maybe"), "kt2.binding", "Task.intent"),
    ("task-minimaal", lambda r: r["for"].update(reference="Practitioner/x", type="Practitioner"), "kt2.reference", "Task.for"),
    ("task-minimaal", lambda r: r.update(authoredOn="2020-13-01"), "kt2.type", "Task.authoredOn"),
    ("task-minimaal", lambda r: r.update(identifier=r["identifier"][0]), "kt2.structure", "Task.identifier"),
    ("task-minimaal", lambda r: r["identifier"][0].update(value=""), "kt2.value", "Task.identifier[0].value"),
    ("task-minimaal", lambda r: r.update(foo=1), "kt2.structure", "Task.foo"),
    ("task-minimaal", lambda r: r["extension"][0].update(url="http://vzvz.nl/fhir/StructureDefinition/instantiate"),
     "kt2.extension-url", "Task.extension[0].url"),
    ("task-minimaal", lambda r: r["extension"].append({"url": ORIGIN, "valueString": "Device/1"}),
     "kt2.extension-type", "Task.extension[1].valueString"),
    ("task-minimaal", lambda r: r["extension"].extend([{"url": ORIGIN, "valueReference": {"reference": "Device/1"}}] * 2),
     "kt2.cardinality", f"Task.extension('{ORIGIN}')"),
    ("task-minimaal", lambda r: r["extension"].append({"url": ORIGIN, "valueReference": {"reference": "Patient/1"}}),
     "kt2.reference", "Task.extension[1].valueReference"),
    ("patient-botje-minimaal", lambda r: r.setdefault("extension", []).append(
        {"url": "http://vzvz.nl/fhir/StructureDefinition/instantiates", "valueReference": {"reference": "ActivityDefinition/1"}}),
     "kt2.extension-context", "Patient.extension[0].url"),
    ("patient-botje-minimaal", lambda r: r["name"][0].pop("use"), "kt2.invariant", "Patient.name[0]"),
    ("patient-botje-minimaal", lambda r: r["name"][0].pop("family"), "kt2.cardinality", "Patient.name[0].family"),
    ("patient-botje-minimaal", lambda r: r.pop("birthDate"), "kt2.cardinality", "Patient.birthDate"),
    ("patient-botje-minimaal", lambda r: r.update(gender="F"), "kt2.binding", "Patient.gender"),
    ("patient-botje-minimaal", lambda r: r.update(deceasedBoolean=False), "kt2.cardinality", "Patient.deceasedBoolean"),
    ("endpoint123", lambda r: r["connectionType"].update(code="hl7-fhir-rest"), "kt2.fixed", "Endpoint.connectionType"),
    ("endpoint123", lambda r: r["payloadType"][0]["coding"][0].update(code="none"), "kt2.fixed", "Endpoint.payloadType[0]"),
    ("device-volledig", lambda r: r["identifier"][0].update(system="http://example.org/ids"), "kt2.fixed", "Device.identifier[0].system"),
    ("device-volledig", lambda r: r["deviceName"][0].update(type="model-name"), "kt2.fixed", "Device.deviceName[0].type"),
    ("subscription-123", lambda r: r["channel"].update(type="websocket"), "kt2.fixed", "Subscription.channel.type"),
    ("subscription-123", lambda r: r["channel"].update(payload="application/fhir+json"), "kt2.cardinality", "Subscription.channel.payload"),
    ("careteam-deelnemers", lambda r: r["participant"].append({"member": {"reference": "Patient/p1", "type": "Patient"}}),
     "kt2.cardinality", "CareTeam.participant[{n}]"),
    ("careteam-minimaal", lambda r: r["subject"].update(reference="Group/g1", type="Group"), "kt2.reference", "CareTeam.subject"),
    ("activitydefinition123", lambda r: r.pop("extension"), "kt2.cardinality", f"ActivityDefinition.extension('{KT2}KT2EndpointExtension')"),
    ("activitydefinition123", lambda r: r.pop("title"), "kt2.cardinality", "ActivityDefinition.title"),
    ("activitydefinition-standard-usecontext",
     lambda r: r["useContext"][2]["valueCodeableConcept"]["coding"][0].update(code="027-Other"),
     "kt2.binding", "ActivityDefinition.useContext[2].valueCodeableConcept.coding[0]"),
    ("activitydefinition-standard-usecontext", lambda r: r["useContext"][0]["code"].update(code="colour"),
     "kt2.binding", "ActivityDefinition.useContext[0].code"),
    ("auditevent-create-patient", lambda r: r["agent"][0]["who"].update(reference="Patient/p1", type="Patient"),
     "kt2.reference", "AuditEvent.agent[0].who"),
    ("auditevent-create-patient", lambda r: r.update(action="X"), "kt2.binding", "AuditEvent.action"),
    ("auditevent-create-patient", lambda r: r["entity"][0].update(detail=[{"type": "x", "valueString": "y"}]),
     "kt2.cardinality", "AuditEvent.entity[0].detail"),
    ("relatedperson-minimal", lambda r: r.pop("patient"), "kt2.cardinality", "RelatedPerson.patient"),
]


@pytest.mark.parametrize(("example", "mutate", "rule", "location"), CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES])
def test_mutation_fails_at_location(example, mutate, rule, location) -> None:
    original = kt2_example(example)
    assert check(original).ok
    changed = mutated(original, mutate)
    location = location.replace("{n}", str(len(changed.get("participant", [])) - 1))
    result = check(changed)
    assert (rule, location) in errors(result), result.to_text()
    assert not result.ok


def test_practitioner_needs_an_email_address() -> None:
    def no_email(r):
        r["telecom"] = [t for t in r.get("telecom", []) if t.get("system") != "email"] or [{"system": "phone", "value": "0612345678"}]

    result = check(mutated(kt2_example("practitioner-minimaal"), no_email))
    assert ("kt2.cardinality", "Practitioner.telecom") in errors(result), result.to_text()


def test_relatedperson_role_display_invariant_uses_fhirpath() -> None:
    def wrong_display(r):
        r["relationship"] = [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.3.11.22.472", "code": "23", "display": "Contact"}]}]

    result = check(mutated(kt2_example("relatedperson-minimal"), wrong_display))
    assert ("kt2.invariant", "RelatedPerson.relationship[0]") in errors(result), result.to_text()
    fine = mutated(kt2_example("relatedperson-minimal"), lambda r: r["relationship"][0]["coding"][0].update(display="Contactpersoon")
                   if r["relationship"][0]["coding"][0].get("code") == "23" else None)
    assert check(fine).ok


def test_extensible_binding_outside_the_value_set_is_a_warning() -> None:
    def other_role(r):
        for p in r["participant"]:
            if p["member"].get("type") == "RelatedPerson" or "RelatedPerson/" in p["member"].get("reference", ""):
                p["role"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "133932002", "display": "Caregiver"}]}]

    changed = mutated(kt2_example("careteam-mantelzorger"), other_role)
    result = check(changed)
    assert result.ok, result.to_text()
    assert any(rule == "kt2.binding" and loc.startswith("CareTeam.participant[") for rule, loc in warnings(result)), result.to_text()


def test_profile_selection_messages() -> None:
    no_meta = mutated(kt2_example("task-minimaal"), lambda r: r.pop("meta"))
    result = check(no_meta)
    assert result.ok and ("kt2.profile", "Task.meta") in warnings(result)
    other = mutated(kt2_example("task-minimaal"), lambda r: r["meta"].update(profile=["http://example.org/StructureDefinition/MyTask"]))
    result = check(other)
    assert result.ok and ("kt2.profile", "Task.meta.profile") in warnings(result)
    wrong = mutated(kt2_example("task-minimaal"), lambda r: r["meta"].update(profile=[KT2 + "KT2Patient"]))
    assert ("kt2.profile", "Task.meta.profile") in errors(check(wrong))


def test_bundle_entries_are_validated_with_their_own_profiles() -> None:
    task = kt2_example("task-minimaal")
    patient = kt2_example("patient-botje-minimaal")
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 2,
              "entry": [{"fullUrl": "https://fhir.example/Patient/p", "resource": patient},
                        {"fullUrl": "https://fhir.example/Task/t", "resource": task}]}
    result = check(bundle)
    assert result.ok, result.to_text()
    assert result.profiles == ["KT2Patient", "KT2Task"]
    def code_instead_of_reference(b):
        e = b["entry"][1]["resource"]["extension"][0]
        e.pop("valueReference")
        e["valueCode"] = "x"

    broken = mutated(bundle, code_instead_of_reference)
    assert ("kt2.extension-type", "Bundle.entry[1].resource.extension[0].valueCode") in errors(check(broken))
    assert ("kt2.binding", "Bundle.type") in errors(check(mutated(bundle, lambda b: b.update(type="list"))))


def test_usual_name_slice_forbids_family() -> None:
    def usual_with_family(r):
        r["name"].append({"use": "usual", "given": ["Berta"], "family": "Botje"})

    result = check(mutated(kt2_example("patient-botje-minimaal"), usual_with_family))
    assert ("kt2.cardinality", f"Patient.name[{len(kt2_example('patient-botje-minimaal')['name'])}].family") in errors(result), result.to_text()

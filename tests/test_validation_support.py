"""Shared test data for the validator tests: valid KT1 messages built in code, paths to the shared fixtures.

Kept self-contained (no ../shared needed) so the mutation tests always run; the
messages follow what the real Python connector 1.3.5.14 sends (kt1-protocol.md §2.1).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KT1_FIXTURES = SHARED / "fixtures" / "kt1"
KT2_EXAMPLES = REPO / "profiles" / "kt2" / "examples"
PACKAGE_DIR = SHARED / "kt2" / "package-0.8"
NS = "http://ggz.koppeltaal.nl/fhir/Koppeltaal/"
BASE = "https://portal.example.org/fhir/Koppeltaal"


def needs_shared(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"shared reference data not available: {path}")


def coding(system: str, code: str) -> dict:
    return {"system": system, "code": code, "display": code}


def careplan_message() -> dict:
    """A CreateOrUpdateCarePlan request as the Python connector sends it (focal CarePlan, Patient, Practitioner)."""
    patient = f"{BASE}/Patient/1"
    careplan = f"{BASE}/CarePlan/2"
    practitioner = f"{BASE}/Practitioner/3"
    return {
        "resourceType": "Bundle",
        "id": "urn:uuid:0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9",
        "updated": "2026-01-02T10:00:00+00:00",
        "category": [
            {"term": NS + "Domain#Test", "label": "Test", "scheme": "http://hl7.org/fhir/tag/security"},
            {"term": "http://hl7.org/fhir/tag/message", "scheme": "http://hl7.org/fhir/tag"},
        ],
        "entry": [
            {
                "id": f"{BASE}/MessageHeader/9",
                "content": {
                    "resourceType": "MessageHeader",
                    "id": "ref001",
                    "identifier": "5f2c3d1e-aaaa-4bbb-8ccc-0123456789ab",
                    "timestamp": "2026-01-02T10:00:00+00:00",
                    "event": coding(NS + "MessageEvents", "CreateOrUpdateCarePlan"),
                    "source": {"software": "Koppeltaal Python Adapter; Tests", "version": "1.3.5.14; 1", "endpoint": BASE},
                    "data": [{"reference": careplan}],
                    "extension": [{"url": NS + "MessageHeader#Patient", "valueResource": {"reference": patient}}],
                },
            },
            {
                "id": careplan,
                "link": [{"rel": "self", "href": careplan}],
                "content": {
                    "resourceType": "CarePlan",
                    "patient": {"reference": patient},
                    "status": "active",
                    "participant": [
                        {
                            "role": {"coding": [coding(NS + "CarePlanParticipantRole", "Caregiver")]},
                            "member": {"reference": practitioner},
                        }
                    ],
                    "activity": [
                        {
                            "id": "ref004",
                            "prohibited": False,
                            "extension": [
                                {"url": NS + "CarePlan#ActivityIdentifier", "valueString": "act-1"},
                                {"url": NS + "CarePlan#ActivityDefinition", "valueString": "KTSTESTGAME"},
                                {"url": NS + "CarePlan#ActivityKind", "valueCoding": coding(NS + "ActivityKind", "Game")},
                                {
                                    "url": NS + "CarePlan#Participant",
                                    "extension": [
                                        {"url": NS + "CarePlan#ParticipantMember", "valueResource": {"reference": practitioner}},
                                        {
                                            "url": NS + "CarePlan#ParticipantRole",
                                            "valueCodeableConcept": {"coding": [coding(NS + "CarePlanParticipantRole", "Caregiver")]},
                                        },
                                    ],
                                },
                                {"url": NS + "CarePlan#StartDate", "valueDateTime": "2026-01-02T10:00:00+00:00"},
                                {"url": NS + "CarePlan#ActivityStatus", "valueCoding": coding(NS + "CarePlanActivityStatus", "Available")},
                            ],
                        }
                    ],
                },
            },
            {
                "id": patient,
                "link": [{"rel": "self", "href": patient}],
                "content": {
                    "resourceType": "Patient",
                    "name": [{"use": "official", "family": ["Botje"], "given": ["Berend"]}],
                    "gender": {"coding": [coding("http://hl7.org/fhir/v3/AdministrativeGender", "M")]},
                    "birthDate": "1990-05-01",
                    "extension": [{"url": NS + "Patient#Age", "valueInteger": 35}],
                },
            },
            {
                "id": practitioner,
                "link": [{"rel": "self", "href": practitioner}],
                "content": {"resourceType": "Practitioner", "name": {"use": "official", "family": ["Hole"], "given": ["Harry"]}},
            },
        ],
    }


def activity_status_message() -> dict:
    """UpdateCarePlanActivityStatus with an Other/CarePlanActivityStatus focal."""
    msg = careplan_message()
    status_url = f"{BASE}/CarePlanActivityStatus/5"
    header = msg["entry"][0]["content"]
    header["event"] = coding(NS + "MessageEvents", "UpdateCarePlanActivityStatus")
    header["data"] = [{"reference": status_url}]
    msg["entry"] = msg["entry"][:1] + [
        {
            "id": status_url,
            "link": [{"rel": "self", "href": status_url}],
            "content": {
                "resourceType": "Other",
                "code": {"coding": [coding(NS + "OtherResourceUsage", "CarePlanActivityStatus")]},
                "extension": [
                    {"url": NS + "CarePlanActivityStatus#Activity", "valueString": "act-1"},
                    {"url": NS + "CarePlanActivityStatus#ActivityStatus", "valueCoding": coding(NS + "CarePlanActivityStatus", "InProgress")},
                    {"url": NS + "CarePlanActivityStatus#PercentageCompleted", "valueInteger": 40},
                ],
            },
        }
    ]
    return msg


def kt2_example(name: str) -> dict:
    return json.loads((KT2_EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def mutated(obj: dict, fn) -> dict:
    copy_ = copy.deepcopy(obj)
    fn(copy_)
    return copy_


def errors(result) -> list[tuple[str, str]]:
    return [(f.rule, f.location) for f in result.findings if f.severity == "error" and f.suppressed_reason is None]


def warnings(result) -> list[tuple[str, str]]:
    return [(f.rule, f.location) for f in result.findings if f.severity == "warning" and f.suppressed_reason is None]


def test_support_messages_are_valid_kt1() -> None:
    """The builders themselves must produce error-free messages, or every mutation test would be meaningless."""
    from ktbench.validation import validate_resource

    for build in (careplan_message, activity_status_message):
        result = validate_resource(build(), kt=1)
        assert errors(result) == [], result.to_text()
        assert warnings(result) == [], result.to_text()

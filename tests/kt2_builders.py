"""Resource builders for the KT2 tests: minimal KT2-valid resources with fresh identifiers.

Each returns a body a client would POST (no id, no resource-origin); the profiles they satisfy are those of
profiles/kt2 (tests/test_kt2_validation.py checks stored ones validate).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

KT = "http://koppeltaal.nl/fhir/StructureDefinition/"


def _ident(system: str = "http://ktbench.test/ids", value: str | None = None) -> list[dict]:
    return [{"use": "official", "system": system, "value": value or str(uuid.uuid4())}]


def patient(identifier: str | None = None, family: str = "Jansen") -> dict:
    ids = _ident("http://ktbench.test/patients")
    if identifier:
        ids.append({"use": "usual", "system": "https://irma.app/email", "value": identifier})
    return {"resourceType": "Patient", "meta": {"profile": [KT + "KT2Patient"]}, "identifier": ids, "active": True,
            "name": [{"use": "official", "text": f"J. {family}", "family": family, "given": ["Jan"]}],
            "gender": "male", "birthDate": "1970-12-20"}


def practitioner(identifier: str | None = None) -> dict:
    value = identifier or f"{uuid.uuid4().hex[:8]}@ktbench.test"
    return {"resourceType": "Practitioner", "meta": {"profile": [KT + "KT2Practitioner"]},
            "identifier": _ident("https://irma.app/email", value), "active": True,
            "name": [{"use": "official", "text": "A. Bakker", "family": "Bakker", "given": ["A"]}],
            "telecom": [{"system": "email", "value": value, "use": "work"}]}


def related_person(patient_id: str, identifier: str | None = None) -> dict:
    return {"resourceType": "RelatedPerson", "meta": {"profile": [KT + "KT2RelatedPerson"]},
            "identifier": _ident("https://irma.app/email", identifier), "active": True,
            "patient": {"reference": f"Patient/{patient_id}", "type": "Patient"},
            "relationship": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.3.11.22.472", "code": "21",
                                          "display": "Cliëntondersteuner"}]}],
            "name": [{"use": "official", "text": "M. Buur", "family": "Buur", "given": ["M."]}],
            "gender": "female", "birthDate": "1980-07-29"}


def organization() -> dict:
    return {"resourceType": "Organization", "meta": {"profile": [KT + "KT2Organization"]},
            "identifier": _ident("http://fhir.nl/fhir/NamingSystem/agb-z", str(uuid.uuid4().int)[:8]),
            "active": True}


def careteam(patient_id: str) -> dict:
    return {"resourceType": "CareTeam", "meta": {"profile": [KT + "KT2CareTeam"]}, "identifier": _ident(),
            "status": "active", "subject": {"reference": f"Patient/{patient_id}", "type": "Patient"}}


def endpoint(address: str = "https://module.ktbench.test/launch") -> dict:
    return {"resourceType": "Endpoint", "meta": {"profile": [KT + "KT2Endpoint"]}, "status": "active",
            "connectionType": {"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type",
                               "code": "hti-smart-on-fhir"},
            "name": "ktbench module",
            "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                         "code": "any"}]}],
            "address": address}


def activity_definition(endpoint_id: str, publisher_id: str | None = None) -> dict:
    return {"resourceType": "ActivityDefinition", "meta": {"profile": [KT + "KT2ActivityDefinition"]},
            "extension": [{"url": KT + "KT2EndpointExtension",
                           "valueReference": {"reference": f"Endpoint/{endpoint_id}", "type": "Endpoint"}},
                          {"url": KT + "KT2PublisherId", "valueId": publisher_id or uuid.uuid4().hex[:16]}],
            "url": f"https://module.ktbench.test/activities/{uuid.uuid4().hex}",
            "identifier": _ident("http://module.ktbench.test/activities"),
            "name": "Dagboek", "title": "Dagboek", "status": "active"}


def task(patient_id: str, definition_id: str, *, owner: str | None = None, status: str = "ready",
         view: bool = False, part_of: str | None = None) -> dict:
    body = {"resourceType": "Task", "meta": {"profile": [KT + "KT2Task"]},
            "extension": [{"url": "http://vzvz.nl/fhir/StructureDefinition/instantiates",
                           "valueReference": {"reference": f"ActivityDefinition/{definition_id}",
                                              "type": "ActivityDefinition"}}],
            "identifier": _ident("http://ktbench.test/tasks"), "status": status, "intent": "order",
            "for": {"reference": f"Patient/{patient_id}", "type": "Patient"},
            "owner": {"reference": owner or f"Patient/{patient_id}", "type": (owner or "Patient/").split("/")[0]}}
    if view:
        body["code"] = {"coding": [{"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code", "code": "view"}]}
    if part_of:
        body["partOf"] = [{"reference": f"Task/{part_of}", "type": "Task"}]
    return body


def client_audit_event(device: str = "Device/alpha-module") -> dict:
    """An "Application Start" AuditEvent as an application writes it (TOP-KT-012c)."""
    dcm = "http://dicom.nema.org/resources/ontology/DCM"
    return {"resourceType": "AuditEvent", "meta": {"profile": [KT + "KT2AuditEvent"]},
            "type": {"system": dcm, "code": "110100", "display": "Application Activity"},
            "subtype": [{"system": dcm, "code": "110120", "display": "Application Start"}],
            "action": "E", "recorded": "2026-01-01T10:00:00.000Z", "outcome": "0",
            "agent": [{"type": {"coding": [{"system": dcm, "code": "110150"}]}, "who": {"reference": device},
                       "requestor": False}],
            "source": {"site": "module.ktbench.test", "observer": {"reference": device}},
            "entity": [{"what": {"reference": device}}]}


def subscription(criteria: str, endpoint_url: str, headers: tuple[str, ...] = ()) -> dict:
    body = {"resourceType": "Subscription", "meta": {"profile": [KT + "KT2Subscription"]}, "status": "requested",
            "reason": "ktbench test", "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": endpoint_url}}
    if headers:
        body["channel"]["header"] = list(headers)
    return body


def updated(resource: dict, **changes: Any) -> dict:
    copy_ = copy.deepcopy(resource)
    copy_.update(changes)
    return copy_

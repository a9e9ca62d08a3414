"""KT2 resources as applications write them: minimal bodies that satisfy the KT2 profiles (v0.16.3).

What every builder keeps (kt2-protocol.md §3): `meta.profile` names the KT2 profile, business identifiers
are set where the profile needs one (1..*), references are literal (`Type/id` with `type`), no `id` and no
resource-origin on create (the voorziening assigns both).  Identifiers carry a fresh UUID so scenarios that
share a voorziening never collide.  Names and e-mail addresses come from the caller (the suite passes
seeded Faker data) with plain defaults.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
TASK_CODES = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code"
CONNECTION_TYPES = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type"
PAYLOAD_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
EMAIL_IDENTIFIER = "https://irma.app/email"
COD472 = "urn:oid:2.16.840.1.113883.2.4.3.11.22.472"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
TASK_STATUSES = ("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                 "on-hold", "failed", "completed", "entered-in-error")


def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [KT + profile]}


def identifier(system: str, value: str | None = None, use: str = "official") -> dict[str, str]:
    return {"use": use, "system": system, "value": value or str(uuid.uuid4())}


def reference(ref: str) -> dict[str, str]:
    return {"reference": ref, "type": ref.split("/", 1)[0]}


def _name(family: str, given: str) -> list[dict[str, Any]]:
    return [{"use": "official", "text": f"{given} {family}", "family": family, "given": [given]}]


def patient(*, family: str = "Jansen", given: str = "Jan", email: str | None = None, gender: str = "male",
            birth_date: str = "1970-12-20", system: str = "http://ktbench.test/patients") -> dict[str, Any]:
    """A KT2Patient; `email` adds the identifier an identity provider returns (the launch identity match)."""
    ids = [identifier(system)]
    if email:
        ids.append(identifier(EMAIL_IDENTIFIER, email, "usual"))
    return {"resourceType": "Patient", "meta": _meta("KT2Patient"), "identifier": ids, "active": True,
            "name": _name(family, given), "gender": gender, "birthDate": birth_date}


def practitioner(*, family: str = "Bakker", given: str = "Anna", email: str | None = None) -> dict[str, Any]:
    address = email or f"{uuid.uuid4().hex[:10]}@ktbench.test"
    return {"resourceType": "Practitioner", "meta": _meta("KT2Practitioner"),
            "identifier": [identifier(EMAIL_IDENTIFIER, address)], "active": True, "name": _name(family, given),
            "telecom": [{"system": "email", "value": address, "use": "work"}]}


def related_person(patient_id: str, *, family: str = "Buur", given: str = "Mila",
                   email: str | None = None) -> dict[str, Any]:
    return {"resourceType": "RelatedPerson", "meta": _meta("KT2RelatedPerson"),
            "identifier": [identifier(EMAIL_IDENTIFIER, email)], "active": True,
            "patient": reference(f"Patient/{patient_id}"),
            "relationship": [{"coding": [{"system": COD472, "code": "21", "display": "Cliëntondersteuner"}]}],
            "name": _name(family, given), "gender": "female", "birthDate": "1980-07-29"}


def organization(name: str = "ktbench GGZ") -> dict[str, Any]:
    return {"resourceType": "Organization", "meta": _meta("KT2Organization"),
            "identifier": [identifier("http://fhir.nl/fhir/NamingSystem/agb-z", str(uuid.uuid4().int)[:8])],
            "active": True, "name": name}


def care_team(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "meta": _meta("KT2CareTeam"),
            "identifier": [identifier("http://ktbench.test/careteams")], "status": "active",
            "subject": reference(f"Patient/{patient_id}")}


def endpoint(address: str, name: str = "ktbench module") -> dict[str, Any]:
    """The module's launch URL (https) as a KT2Endpoint (connection type hti-smart-on-fhir)."""
    return {"resourceType": "Endpoint", "meta": _meta("KT2Endpoint"), "status": "active",
            "connectionType": {"system": CONNECTION_TYPES, "code": "hti-smart-on-fhir"}, "name": name,
            "payloadType": [{"coding": [{"system": PAYLOAD_TYPES, "code": "any"}]}], "address": address}


def activity_definition(endpoint_id: str, *, title: str = "Dagboek", publisher_id: str | None = None,
                        url: str | None = None) -> dict[str, Any]:
    return {"resourceType": "ActivityDefinition", "meta": _meta("KT2ActivityDefinition"),
            "extension": [{"url": KT + "KT2EndpointExtension", "valueReference": reference(f"Endpoint/{endpoint_id}")},
                          {"url": KT + "KT2PublisherId", "valueId": publisher_id or uuid.uuid4().hex[:16]}],
            "url": url or f"https://module.ktbench.test/activities/{uuid.uuid4().hex}",
            "identifier": [identifier("http://module.ktbench.test/activities")],
            "name": title.replace(" ", ""), "title": title, "status": "active"}


def task(patient_id: str, definition_id: str, *, owner: str | None = None, requester: str | None = None,
         status: str = "ready", code: str | None = None, part_of: str | None = None) -> dict[str, Any]:
    """A KT2Task for the patient that instantiates the module's ActivityDefinition (owner: the patient)."""
    body: dict[str, Any] = {
        "resourceType": "Task", "meta": _meta("KT2Task"),
        "extension": [{"url": INSTANTIATES, "valueReference": reference(f"ActivityDefinition/{definition_id}")}],
        "identifier": [identifier("http://ktbench.test/tasks")], "status": status, "intent": "order",
        "priority": "routine", "for": reference(f"Patient/{patient_id}"),
        "owner": reference(owner or f"Patient/{patient_id}")}
    if requester:
        body["requester"] = reference(requester)
    if code:
        body["code"] = {"coding": [{"system": TASK_CODES, "code": code}]}
    if part_of:
        body["partOf"] = [reference(f"Task/{part_of}")]
    return body


def subscription(criteria: str, endpoint_url: str, headers: list[str] | tuple[str, ...] = (),
                 reason: str = "ktbench") -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Subscription", "meta": _meta("KT2Subscription"), "status": "requested",
                            "reason": reason, "criteria": criteria,
                            "channel": {"type": "rest-hook", "endpoint": endpoint_url}}
    if headers:
        body["channel"]["header"] = list(headers)
    return body


def application_audit_event(device: str, site: str, entity: str, *, trace_id: str | None = None,
                            subtype: tuple[str, str] = ("110120", "Application Start"),
                            outcome: str = "0", recorded: str = "2026-01-01T10:00:00.000Z") -> dict[str, Any]:
    """An AuditEvent an application writes itself (TOP-KT-012c: a launch it received)."""
    body: dict[str, Any] = {
        "resourceType": "AuditEvent", "meta": _meta("KT2AuditEvent"),
        "type": {"system": DCM, "code": "110100", "display": "Application Activity"},
        "subtype": [{"system": DCM, "code": subtype[0], "display": subtype[1]}],
        "action": "E", "recorded": recorded, "outcome": outcome,
        "agent": [{"type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
                   "who": reference(device), "requestor": False}],
        "source": {"site": site, "observer": reference(device)},
        "entity": [{"what": {"reference": entity}}]}
    if trace_id:
        body["extension"] = [{"url": KT + "trace-id", "valueId": trace_id}]
    return body


def changed(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `resource` with top-level elements replaced (None removes one)."""
    result = copy.deepcopy(resource)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result

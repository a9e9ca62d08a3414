"""KT1.3 resources as a sending application holds them, and builders for each kind it sends.

An application owns its resources: it names each one with a URL under its own
FHIR base (`<base>/<Type>/<id>`) and remembers the last version the server
minted for it, because every later update must quote that version (KT1.3.5
optimistic locking).  Builders produce the DSTU1 JSON shapes the public Python
connector sends (extensions under http://ggz.koppeltaal.nl/fhir/Koppeltaal/).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ktbench.fhir.dstu1.constants import NAMESPACE, OTHER_USAGE_SYSTEM
from ktbench.fhir.dstu1.links import with_version

CAREPLAN = NAMESPACE + "CarePlan#"
STATUS = NAMESPACE + "CarePlanActivityStatus#"
RESULT = NAMESPACE + "CarePlanActivityResult#"
USER_MESSAGE = NAMESPACE + "UserMessage#"
AD = NAMESPACE + "ActivityDefinition#"
ACTIVITY_KIND_SYSTEM = NAMESPACE + "ActivityKind"
ACTIVITY_STATUS_SYSTEM = NAMESPACE + "CarePlanActivityStatus"
RESULT_STATUS_SYSTEM = NAMESPACE + "CarePlanActivityResultStatus"
PARTICIPANT_ROLE_SYSTEM = NAMESPACE + "CarePlanParticipantRole"
USER_MESSAGE_KIND_SYSTEM = NAMESPACE + "UserMessageKind"
PERFORMER_SYSTEM = NAMESPACE + "ActivityPerformer"
GENDER_SYSTEM = "http://hl7.org/fhir/v3/AdministrativeGender"


@dataclass
class LocalResource:
    """A resource in the sender's own records: identity (history-less URL), content and last known version."""

    rtype: str                      # resourceType as sent: Patient, CarePlan, Other, ...
    url: str                        # history-less URL; the resource's identity within the domain
    content: dict[str, Any]
    version: str | None = None      # the last version the server minted, None while unknown
    history: list[str] = field(default_factory=list)  # every version seen, oldest first

    @property
    def link(self) -> str:
        """The self link the connector sends: versioned when a version is known."""
        return with_version(self.url, self.version) if self.version else self.url

    def learn_version(self, version: str) -> None:
        if version and version != self.version:
            self.version = version
            self.history.append(version)

    def reference(self) -> dict[str, str]:
        """A history-less reference, as KT1.3.5 requires for every reference but MessageHeader.data."""
        return {"reference": self.url}

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.content)


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, "display": display or code}


def other_code(usage: str) -> dict[str, Any]:
    return {"coding": [coding(OTHER_USAGE_SYSTEM, usage)]}


def _name(given: str, family: str) -> dict[str, Any]:
    return {"use": "official", "text": f"{given} {family}", "family": [family], "given": [given]}


def patient(*, given: str, family: str, gender: str, birth_date: str, age: int, email: str,
            bsn: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "extension": [{"url": NAMESPACE + "Patient#Age", "valueInteger": age}],
        "identifier": [{"use": "official", "system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}],
        "name": [_name(given, family)],
        "telecom": [{"system": "email", "value": email, "use": "home"}],
        "gender": {"coding": [coding(GENDER_SYSTEM, gender, {"F": "Female", "M": "Male"}.get(gender, gender))]},
        "birthDate": birth_date,
        "active": True,
    }


def practitioner(*, given: str, family: str, agb: str, email: str) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "identifier": [{"use": "official", "system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": agb}],
        "name": _name(given, family),
        "telecom": [{"system": "email", "value": email, "use": "work"}],
    }


def related_person(*, given: str, family: str, gender: str, patient_url: str) -> dict[str, Any]:
    return {
        "resourceType": "RelatedPerson",
        "patient": {"reference": patient_url},
        "relationship": {"coding": [coding("http://hl7.org/fhir/v3/RoleCode", "PRN", "parent")]},
        "name": _name(given, family),
        "gender": {"coding": [coding(GENDER_SYSTEM, gender, {"F": "Female", "M": "Male"}.get(gender, gender))]},
    }


@dataclass(frozen=True)
class PlannedActivity:
    """One CarePlan activity: which ActivityDefinition, of which kind, in which status."""

    identifier: str
    definition: str
    kind: str = "Game"
    status: str = "Available"
    start: str = "2024-01-01T09:00:00"
    description: str | None = None


def careplan(*, patient_url: str, practitioner_url: str, activities: list[PlannedActivity]) -> dict[str, Any]:
    acts = []
    for act in activities:
        ext: list[dict[str, Any]] = [
            {"url": CAREPLAN + "ActivityIdentifier", "valueString": act.identifier},
            {"url": CAREPLAN + "ActivityDefinition", "valueString": act.definition},
            {"url": CAREPLAN + "ActivityKind", "valueCoding": coding(ACTIVITY_KIND_SYSTEM, act.kind)},
            {"url": CAREPLAN + "Participant", "extension": [
                {"url": CAREPLAN + "ParticipantMember", "valueResource": {"reference": practitioner_url}},
                {"url": CAREPLAN + "ParticipantRole",
                 "valueCodeableConcept": {"coding": [coding(PARTICIPANT_ROLE_SYSTEM, "Caregiver")]}},
            ]},
            {"url": CAREPLAN + "StartDate", "valueDateTime": act.start},
            {"url": CAREPLAN + "ActivityStatus", "valueCoding": coding(ACTIVITY_STATUS_SYSTEM, act.status)},
        ]
        if act.description:
            ext.append({"url": CAREPLAN + "ActivityDescription", "valueString": act.description})
        acts.append({"extension": ext, "prohibited": False})
    return {
        "resourceType": "CarePlan",
        "patient": {"reference": patient_url},
        "status": "active",
        "participant": [{"member": {"reference": practitioner_url},
                         "role": {"coding": [coding(PARTICIPANT_ROLE_SYSTEM, "Caregiver")]}}],
        "activity": acts,
    }


def careplan_activity_status(careplan_content: dict[str, Any], activity_id: str) -> str | None:
    """The ActivityStatus code of one activity of a CarePlan, or None if the activity is absent."""
    for act in careplan_content.get("activity") or []:
        ext = {e.get("url"): e for e in act.get("extension") or [] if isinstance(e, dict)}
        ident = ext.get(CAREPLAN + "ActivityIdentifier", {}).get("valueString")
        if ident == activity_id:
            return (ext.get(CAREPLAN + "ActivityStatus", {}).get("valueCoding") or {}).get("code")
    return None


def set_careplan_activity_status(careplan_content: dict[str, Any], activity_id: str, status: str) -> None:
    for act in careplan_content.get("activity") or []:
        exts = act.get("extension") or []
        if any(e.get("url") == CAREPLAN + "ActivityIdentifier" and e.get("valueString") == activity_id
               for e in exts):
            for e in exts:
                if e.get("url") == CAREPLAN + "ActivityStatus":
                    e["valueCoding"] = coding(ACTIVITY_STATUS_SYSTEM, status)
            return
    raise KeyError(f"the care plan has no activity {activity_id!r}")


def activity_status(*, activity_id: str, status: str, percentage: int | None = None) -> dict[str, Any]:
    ext: list[dict[str, Any]] = [
        {"url": STATUS + "Activity", "valueString": activity_id},
        {"url": STATUS + "ActivityStatus", "valueCoding": coding(ACTIVITY_STATUS_SYSTEM, status)},
    ]
    if percentage is not None:
        ext.append({"url": STATUS + "PercentageCompleted", "valueInteger": percentage})
    return {"resourceType": "Other", "extension": ext, "code": other_code("CarePlanActivityStatus")}


def status_of(content: dict[str, Any]) -> str | None:
    """The ActivityStatus code carried by an Other/CarePlanActivityStatus."""
    for ext in content.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == STATUS + "ActivityStatus":
            return (ext.get("valueCoding") or {}).get("code")
    return None


def activity_result(*, activity_id: str, status: str, patient_url: str, performer_url: str,
                    issued: str, name: str = "Score") -> dict[str, Any]:
    """A CarePlanActivityResult as an Other: seed 003's elements as `CarePlanActivityResult#<Element>` extensions.

    Only elements of seed 003's table travel (no invented ones): the scores themselves belong in
    Observation results, which KT1 servers do not accept in a message.
    """
    return {
        "resourceType": "Other",
        "extension": [
            {"url": RESULT + "Activity", "valueString": activity_id},
            {"url": RESULT + "Status", "valueCoding": coding(RESULT_STATUS_SYSTEM, status)},
            {"url": RESULT + "Name", "valueString": name},
            {"url": RESULT + "Issued", "valueDateTime": issued},
            {"url": RESULT + "Subject", "valueResource": {"reference": patient_url}},
            {"url": RESULT + "Performer", "valueResource": {"reference": performer_url}},
        ],
        "code": other_code("CarePlanActivityResult"),
    }


def user_message(*, sender_url: str, recipient_url: str, subject: str, content: str,
                 kind: str = "Message") -> dict[str, Any]:
    return {
        "resourceType": "Other",
        "extension": [
            {"url": USER_MESSAGE + "From", "valueResource": {"reference": sender_url}},
            {"url": USER_MESSAGE + "To", "valueResource": {"reference": recipient_url}},
            # seed 003 types MessageKind as CodeableConcept (a bare valueCoding is only tolerated, with a warning)
            {"url": USER_MESSAGE + "MessageKind",
             "valueCodeableConcept": {"coding": [coding(USER_MESSAGE_KIND_SYSTEM, kind)]}},
            {"url": USER_MESSAGE + "SubjectString", "valueString": subject},
            {"url": USER_MESSAGE + "Content", "valueString": content},
        ],
        "code": other_code("UserMessage"),
    }


def activity_definition(*, identifier: str, name: str, kind: str = "Game", application: str,
                        description: str | None = None, archived: bool = False, launch_type: str = "Web",
                        sub_activities: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """An ActivityDefinition as the connector posts it to /Other (and as it travels in a message)."""
    ext: list[dict[str, Any]] = [
        {"url": AD + "Application", "valueResource": {"display": application}},
        {"url": AD + "ActivityDefinitionIdentifier", "valueString": identifier},
        {"url": AD + "ActivityKind", "valueCoding": coding(ACTIVITY_KIND_SYSTEM, kind)},
        {"url": AD + "ActivityName", "valueString": name},
    ]
    if description:
        ext.append({"url": AD + "ActivityDescription", "valueString": description})
    for sub_id, sub_name in sub_activities:
        ext.append({"url": AD + "SubActivity", "extension": [
            {"url": AD + "SubActivityName", "valueString": sub_name},
            {"url": AD + "SubActivityIdentifier", "valueString": sub_id},
            {"url": AD + "SubActivityIsActive", "valueBoolean": True},
        ]})
    ext += [
        {"url": AD + "DefaultPerformer", "valueCoding": coding(PERFORMER_SYSTEM, "Patient")},
        {"url": AD + "LaunchType", "valueCode": launch_type},
        {"url": AD + "IsActive", "valueBoolean": True},
        {"url": AD + "IsDomainSpecific", "valueBoolean": False},
        {"url": AD + "IsArchived", "valueBoolean": archived},
    ]
    return {"resourceType": "Other", "code": other_code("ActivityDefinition"), "extension": ext}


def ad_extension(content: dict[str, Any], name: str) -> dict[str, Any] | None:
    for ext in content.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == AD + name:
            return ext
    return None


def ad_identifier(content: dict[str, Any]) -> str | None:
    ext = ad_extension(content, "ActivityDefinitionIdentifier")
    if ext and isinstance(ext.get("valueString"), str):
        return ext["valueString"]
    for ident in content.get("identifier") or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            return ident["value"]
    return None


def set_ad_flag(content: dict[str, Any], name: str, value: Any, key: str) -> None:
    ext = ad_extension(content, name)
    if ext is None:
        content.setdefault("extension", []).append({"url": AD + name, key: value})
    else:
        ext[key] = value

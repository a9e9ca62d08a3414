"""Message bundles and bodies in the shape the KT1 Python connector (1.3.5.14) sends them.

Why a builder of our own: the tests must state exactly what a real client
puts on the wire (entry order, history-less `entry.id`, versioned `link.self`
only when the client knows a version, versioned `MessageHeader.data`,
history-less references elsewhere) without depending on the connector or on
other parts of the bench.  A `Kt1World` plays one sending integration: it
owns resource URLs on its own host and learns server versions from Mailbox
replies the way the connector does.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faker import Faker

NS = "http://ggz.koppeltaal.nl/fhir/Koppeltaal/"
DOMAIN = "ktbench-alpha"
SENDER_BASE = "https://portal.example.org/fhir/Koppeltaal"
HISTORY = "/_history/"

EXT_PATIENT = NS + "MessageHeader#Patient"
EXT_PS = NS + "MessageHeader#ProcessingStatus"
EXT_PS_STATUS = NS + "MessageHeader#ProcessingStatusStatus"
EXT_PS_LAST_CHANGED = NS + "MessageHeader#ProcessingStatusStatusLastChanged"
EXT_PS_EXCEPTION = NS + "MessageHeader#ProcessingStatusException"
EXT_IS_EXPIRED = NS + "MessageHeader#IsExpired"
EXT_ISSUE_RESOURCE = NS + "OperationOutcome#IssueResource"
AD = NS + "ActivityDefinition#"


def now_instant() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def strip_history(url: str) -> str:
    return url.split(HISTORY, 1)[0]


def version_of(url: str) -> str | None:
    _, sep, tail = url.partition(HISTORY)
    return (tail or None) if sep else None


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"code": code, "display": display or code, "system": system}


def domain_category(domain: str) -> dict[str, str]:
    return {"label": domain, "scheme": "http://hl7.org/fhir/tag/security", "term": NS + "Domain#" + domain}


MESSAGE_CATEGORY = {"scheme": "http://hl7.org/fhir/tag", "term": "http://hl7.org/fhir/tag/message"}


@dataclass
class Resource:
    """A resource as the sending client knows it: its URL on the client's host and the last version it saw."""

    url: str
    content: dict[str, Any]
    version: str | None = None

    @property
    def self_href(self) -> str:
        return f"{self.url}{HISTORY}{self.version}" if self.version else self.url

    def entry(self) -> dict[str, Any]:
        return {"content": copy.deepcopy(self.content), "id": self.url,
                "link": [{"href": self.self_href, "rel": "self"}]}


class Kt1World:
    """One sending integration: stable resource URLs on its own host, versions learnt from replies."""

    def __init__(self, seed: int = 0, base: str = SENDER_BASE, domain: str = DOMAIN) -> None:
        self.base = base
        self.domain = domain
        self.fake = Faker("nl_NL")
        self.fake.seed_instance(seed)
        self._ids = itertools.count(100 + 1000 * seed)
        self._ref = itertools.count(1)
        self.known: dict[str, Resource] = {}

    # -- resources -------------------------------------------------------------------------------
    def _url(self, rtype: str) -> str:
        return f"{self.base}/{rtype}/{next(self._ids)}"

    def _keep(self, res: Resource) -> Resource:
        self.known[res.url] = res
        return res

    def _idref(self) -> str:
        return f"ref{next(self._ref):03d}"

    def patient(self) -> Resource:
        return self._keep(Resource(self._url("Patient"), {
            "active": True,
            "extension": [{"url": NS + "Patient#Age", "valueInteger": self.fake.random_int(18, 90)}],
            "gender": {"coding": [coding("http://hl7.org/fhir/v3/AdministrativeGender", "M", "Male")]},
            "id": self._idref(),
            "name": [{"family": [self.fake.last_name()], "given": [self.fake.first_name()], "id": self._idref(),
                      "use": "official"}],
            "resourceType": "Patient",
        }))

    def practitioner(self) -> Resource:
        return self._keep(Resource(self._url("Practitioner"), {
            "id": self._idref(),
            "name": {"family": [self.fake.last_name()], "given": [self.fake.first_name()], "id": self._idref(),
                     "use": "official"},
            "resourceType": "Practitioner",
        }))

    def related_person(self, patient: Resource) -> Resource:
        return self._keep(Resource(self._url("RelatedPerson"), {
            "gender": {"coding": [coding("http://hl7.org/fhir/v3/AdministrativeGender", "F", "Female")]},
            "id": self._idref(),
            "name": {"family": [self.fake.last_name()], "given": [self.fake.first_name()], "use": "official"},
            "patient": {"reference": patient.url},
            "relationship": {"coding": [coding("http://hl7.org/fhir/v3/RoleCode", "PRN", "parent")]},
            "resourceType": "RelatedPerson",
        }))

    def careplan(self, patient: Resource, practitioner: Resource, related: Resource | None = None,
                 status: str = "Available", activity: str = "act-1") -> Resource:
        participants = [{"id": self._idref(), "member": {"reference": practitioner.url},
                         "role": {"coding": [coding(NS + "CarePlanParticipantRole", "Caregiver")]}}]
        if related is not None:
            participants.append({"id": self._idref(), "member": {"reference": related.url},
                                 "role": {"coding": [coding(NS + "CarePlanParticipantRole", "Thirdparty")]}})
        return self._keep(Resource(self._url("CarePlan"), {
            "activity": [{
                "extension": [
                    {"url": NS + "CarePlan#ActivityIdentifier", "valueString": activity},
                    {"url": NS + "CarePlan#ActivityDefinition", "valueString": "ktbench-game-1"},
                    {"url": NS + "CarePlan#ActivityKind", "valueCoding": coding(NS + "ActivityKind", "Game")},
                    {"url": NS + "CarePlan#StartDate", "valueDateTime": "2020-01-01T12:00:00"},
                    {"url": NS + "CarePlan#ActivityStatus",
                     "valueCoding": coding(NS + "CarePlanActivityStatus", status)},
                ],
                "id": self._idref(),
                "prohibited": False,
            }],
            "id": self._idref(),
            "participant": participants,
            "patient": {"reference": patient.url},
            "resourceType": "CarePlan",
            "status": "active",
        }))

    def activity_status(self, careplan: Resource, status: str = "InProgress") -> Resource:
        activity = careplan.content["activity"][0]["extension"][0]["valueString"]
        return self._keep(Resource(self._url("Other"), {
            "code": {"coding": [coding(NS + "OtherResourceUsage", "CarePlanActivityStatus")]},
            "extension": [
                {"url": NS + "CarePlanActivityStatus#Activity", "valueString": activity},
                {"url": NS + "CarePlanActivityStatus#ActivityStatus",
                 "valueCoding": coding(NS + "CarePlanActivityStatus", status)},
                {"url": NS + "CarePlanActivityStatus#PercentageCompleted", "valueInteger": 50},
            ],
            "id": self._idref(),
            "resourceType": "Other",
        }))

    # -- messages --------------------------------------------------------------------------------
    def message(self, event: str, focal: Resource, *others: Resource, patient: Resource | None = None,
                identifier: str | None = None, domain: str | None = None) -> dict[str, Any]:
        """A message bundle: MessageHeader first (no link), then focal, then the other resources."""
        header: dict[str, Any] = {
            "data": [{"reference": focal.self_href}],
            "event": coding(NS + "MessageEvents", event),
            "id": self._idref(),
            "identifier": identifier or str(uuid.uuid4()),
            "resourceType": "MessageHeader",
            "source": {"endpoint": self.base, "id": self._idref(), "name": "ktbench tests",
                       "software": "Koppeltaal Python Adapter; ktbench tests", "version": "1.3.5.14; 1.0"},
            "timestamp": now_instant(),
        }
        if patient is not None:
            header["extension"] = [{"url": EXT_PATIENT, "valueResource": {"reference": patient.url}}]
        return {
            "category": [domain_category(domain or self.domain), dict(MESSAGE_CATEGORY)],
            "entry": [{"content": header, "id": f"{self.base}/MessageHeader/{next(self._ids)}"}]
                     + [res.entry() for res in (focal, *others)],
            "id": "urn:uuid:" + str(uuid.uuid4()),
            "resourceType": "Bundle",
            "updated": now_instant(),
        }

    def careplan_set(self) -> tuple[Resource, Resource, Resource, Resource]:
        """(careplan, patient, practitioner, related person) for one new patient."""
        patient = self.patient()
        practitioner = self.practitioner()
        related = self.related_person(patient)
        return self.careplan(patient, practitioner, related), patient, practitioner, related

    def careplan_message(self, careplan: Resource, patient: Resource, practitioner: Resource,
                         related: Resource | None = None, **kw: Any) -> dict[str, Any]:
        others = [r for r in (patient, practitioner, related) if r is not None]
        return self.message("CreateOrUpdateCarePlan", careplan, *others, patient=patient, **kw)

    def patient_message(self, patient: Resource, **kw: Any) -> dict[str, Any]:
        # The connector omits MessageHeader#Patient for CreateOrUpdatePatient (patient=None).
        return self.message("CreateOrUpdatePatient", patient, **kw)

    def learn(self, reply: dict[str, Any]) -> list[str]:
        """Take the versions from a Mailbox reply's `data` (as the connector does); returns the refs."""
        header = reply["entry"][0]["content"]
        refs = [d["reference"] for d in header.get("data", [])]
        for ref in refs:
            res = self.known.get(strip_history(ref))
            if res is not None:
                res.version = version_of(ref)
        return refs


def ack_body(header: dict[str, Any], status: str, exception: str | None = None) -> dict[str, Any]:
    """The connector's ack PUT body: the delivered header re-packed with a new ProcessingStatus block."""
    body = copy.deepcopy(header)
    body["extension"] = [ext for ext in body.get("extension", []) if ext.get("url") not in (EXT_PS, EXT_IS_EXPIRED)]
    status_ext: list[dict[str, Any]] = [{"url": EXT_PS_STATUS, "valueCode": status},
                                        {"url": EXT_PS_LAST_CHANGED, "valueInstant": now_instant()}]
    if exception is not None:
        status_ext.append({"url": EXT_PS_EXCEPTION, "valueString": exception})
    body["extension"].append({"extension": status_ext, "id": "ref001", "url": EXT_PS})
    return body


def activity_definition(identifier: str, name: str = "A game", kind: str = "Game", *, archived: bool = False,
                        application: str = "App", launch_type: str = "Web") -> dict[str, Any]:
    """An ActivityDefinition `Other` body like the connector's `send_activity()` posts."""
    return {
        "code": {"coding": [coding(NS + "OtherResourceUsage", "ActivityDefinition")]},
        "extension": [
            {"url": AD + "Application", "valueResource": {"display": application}},
            {"url": AD + "ActivityDefinitionIdentifier", "valueString": identifier},
            {"url": AD + "ActivityKind", "valueCoding": coding(NS + "ActivityKind", kind)},
            {"url": AD + "ActivityName", "valueString": name},
            {"url": AD + "ActivityDescription", "valueString": f"About {name}"},
            {"url": AD + "LaunchType", "valueCode": launch_type},
            {"url": AD + "IsActive", "valueBoolean": True},
            {"url": AD + "IsDomainSpecific", "valueBoolean": False},
            {"url": AD + "IsArchived", "valueBoolean": archived},
        ],
        "id": "ref002",
        "resourceType": "Other",
    }


def ext_value(obj: dict[str, Any], url: str) -> Any:
    """The value[x] of the first extension with `url` (None if absent)."""
    for ext in obj.get("extension", []):
        if ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), ext)
    return None


def processing_status(header: dict[str, Any]) -> dict[str, Any]:
    """{'status', 'last_changed', 'exception'} of a delivered header's ProcessingStatus block."""
    block = ext_value(header, EXT_PS) or {}
    subs = {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in block.get("extension", [])}
    return {"status": subs.get(EXT_PS_STATUS), "last_changed": subs.get(EXT_PS_LAST_CHANGED),
            "exception": subs.get(EXT_PS_EXCEPTION)}

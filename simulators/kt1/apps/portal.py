"""The simulated KT1 portal under test: what a vendor's portal does when a tester (or the bench's driver) asks.

It keeps its own records (patients by business identifier, one practitioner, one care plan per patient) and
speaks KT1 through `Kt1Portal` (simulators/kt1/actors) the way the Python connector does: messages to the
Mailbox with the versions the server minted, recovery from a 409 by looking up the latest version in its
mailbox, the module launched through Launch, status updates claimed and acked.  Fault flags (faults.py) bend
exactly one of those behaviours each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ktbench.driver.contract import Reply, reply_for
from ktbench.fhir.dstu1.links import strip_history
from ktbench.targets.model import BasicCredential
from simulators.kt1.actors import DeliveredMessage, Kt1Portal, LocalResource
from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_application import SendResult
from simulators.kt1.actors.kt1_messages import KEEP, header_summaries
from simulators.kt1.actors.kt1_resources import STATUS, PlannedActivity
from simulators.kt1.apps.mailbox import process_mailbox
from simulators.kt1.apps.transport import PlainHttp

GENDERS = {"male": "M", "female": "F", "other": "UN", "unknown": "UNK"}
KNOWN_STATUSES = {"Available", "Planned", "Started", "InProgress", "Completed", "Expired", "Cancelled",
                  "Waiting", "Skipped"}


def extension_value(content: dict[str, Any], url: str) -> Any:
    for ext in content.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            return ext.get("valueString") or (ext.get("valueCoding") or {}).get("code")
    return None


def age_on(birth: str) -> int:
    born = date.fromisoformat(birth)
    today = date(2025, 1, 1)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass
class CarePlanRecord:
    resource: LocalResource
    activities: list[PlannedActivity] = field(default_factory=list)


class SimulatedPortal:
    def __init__(self, *, server_url: str, creds: BasicCredential, faults: frozenset[str] = frozenset()) -> None:
        self.faults = faults
        self.http = PlainHttp()
        self.kt1 = Kt1Portal(http=self.http, server_url=server_url, creds=creds,
                             software="ktbench simulated portal under test")
        self.patients: dict[str, LocalResource] = {}
        self.careplans: dict[str, CarePlanRecord] = {}       # patient identifier -> its care plan
        self.assigned: dict[str, tuple[str, str]] = {}       # careplan activity id -> (patient id, AD id)
        self.practitioner = LocalResource("Practitioner", self.kt1.new_url("Practitioner", "care-team-1"),
                                          res.practitioner(given="Fenna", family="Vos", agb="12345678",
                                                           email="f.vos@portal.ktbench.test"))
        self.counter = 0

    def close(self) -> None:
        self.http.close()

    def handlers(self) -> dict[str, Any]:
        return {"send-patient": self.send_patient, "assign-activity": self.assign_activity,
                "launch-task": self.launch_task, "process-mailbox": self.process_mailbox}

    def fault(self, name: str) -> bool:
        return name in self.faults

    # -- versions ----------------------------------------------------------------------------------
    def _send(self, resource: LocalResource, send: Any) -> SendResult:
        """Send; on a 409 take the latest version from the mailbox and send once more (the connector's way)."""
        first_version = resource.history[0] if resource.history else None
        known = resource.version is not None
        result = send(None if (known and self.fault("portal-update-without-version")) else KEEP)
        if result.answer.status == 409 and not self.fault("portal-ignores-409"):
            if not self.fault("portal-retries-same-version"):
                latest = self._latest_version(resource.url)
                if latest:
                    resource.learn_version(latest)
            result = send(KEEP)
        if self.fault("portal-stale-version") and first_version:
            resource.version = first_version
        return result

    def _latest_version(self, url: str) -> str | None:
        """The newest version of `url` in the copies of messages about it in the portal's own mailbox."""
        newest = None
        answer = self.kt1.search(patient_url=None, count=50)
        headers = header_summaries(answer.body) if isinstance(answer.body, dict) else []
        for header in headers[:50]:
            data = [d.get("reference") for d in header.header.get("data") or [] if isinstance(d, dict)]
            if not any(isinstance(r, str) and strip_history(r) == url for r in data):
                continue
            _, message = self.kt1.message(header.entry_id)
            found = message.resource(url) if message else None
            if found and found.version and (newest is None or found.version > newest):
                newest = found.version
        return newest

    # -- actions -----------------------------------------------------------------------------------
    def send_patient(self, action: dict[str, Any]) -> Reply:
        given = action["params"]["patient"]
        ident = given["identifier"]
        birth = given.get("birth_date", "1980-01-01")
        content = res.patient(given=given["given"], family=given["family"],
                              gender=GENDERS.get(given.get("gender", "unknown"), "UNK"), birth_date=birth,
                              age=age_on(birth), email=given.get("email") or f"{ident}@mail.ktbench.test",
                              bsn=ident)
        self.counter += 1
        if self.fault("portal-patient-wrong-identifier"):
            content["identifier"][0]["value"] = f"record-{self.counter}"
        patient = self.patients.get(ident)
        if patient is None:
            patient = LocalResource("Patient", self.kt1.new_url("Patient", uuid.uuid4().hex[:16]), content)
            self.patients[ident] = patient
        else:
            patient.content = content
        patient_url = None if self.fault("portal-patient-no-patient-extension") else patient.url
        result = self._send(patient, lambda v: self.kt1.send("CreateOrUpdatePatient", patient,
                                                             patient_url=patient_url, focal_version=v))
        return self._reply(action, result)

    def assign_activity(self, action: dict[str, Any]) -> Reply:
        params = action["params"]
        patient = self.patients.get(params["patient_identifier"])
        if patient is None:
            return reply_for(action, "refused", "this portal does not know that patient (send it first)")
        self.counter += 1
        activity_id = params.get("task_identifier") or f"activity-{uuid.uuid4().hex[:12]}"
        definition = f"internal-{self.counter}" if self.fault("portal-careplan-wrong-definition") else params["activity"]
        record = self.careplans.get(params["patient_identifier"])
        planned = PlannedActivity(identifier=activity_id, definition=definition)
        if record is None or self.fault("portal-careplan-new-url"):
            activities = ([*record.activities, planned] if record else [planned])
            record = CarePlanRecord(LocalResource("CarePlan", self.kt1.new_url("CarePlan", uuid.uuid4().hex[:16]),
                                                  {}), activities)
            self.careplans[params["patient_identifier"]] = record
        else:
            record.activities.append(planned)
        record.resource.content = res.careplan(patient_url=patient.url, practitioner_url=self.practitioner.url,
                                               activities=record.activities)
        self.assigned[activity_id] = (params["patient_identifier"], params["activity"])
        careplan = record.resource
        others = [self.practitioner] if self.fault("portal-careplan-without-patient") else [patient, self.practitioner]
        result = self._send(careplan, lambda v: self.kt1.send("CreateOrUpdateCarePlan", careplan, others,
                                                              patient_url=patient.url, focal_version=v))
        return self._reply(action, result, f"care plan activity {activity_id}")

    def launch_task(self, action: dict[str, Any]) -> Reply:
        params = action["params"]
        patient = self.patients.get(params["patient_identifier"])
        if patient is None:
            return reply_for(action, "refused", "this portal does not know that patient")
        activity_id = next((a for a, (p, d) in self.assigned.items()
                            if p == params["patient_identifier"] and d == params["activity"]), None)
        if activity_id is None:
            return reply_for(action, "refused", "that activity was not assigned to the patient")
        client_id = self._application_of(params["activity"])
        if client_id is None:
            return reply_for(action, "refused", f"no ActivityDefinition {params['activity']!r} on the server")
        if self.fault("portal-launch-own-client-id"):
            client_id = self.kt1.app_id
        resource = None if self.fault("portal-launch-without-resource") else activity_id
        answer = self.kt1.launch(client_id, patient.url, self.practitioner.url, resource)
        if answer.status != 302:
            return reply_for(action, "refused", f"the server refused the launch: {answer.brief()[:300]}")
        return reply_for(action, "done", "launched; the user's browser would now be sent to the module")

    def _application_of(self, activity: str) -> str | None:
        _, entries = self.kt1.activities()
        for entry in entries:
            content = entry.get("content") or {}
            if res.ad_identifier(content) != activity:
                continue
            app = (res.ad_extension(content, "Application") or {}).get("valueResource") or {}
            return app.get("display") or (app.get("reference") or "").rsplit("/", 1)[-1] or None
        return None

    def process_mailbox(self, action: dict[str, Any]) -> Reply:
        def handle(message: DeliveredMessage) -> None:
            if search or not self.fault("portal-no-ack"):  # the search shortcut acks what it read
                self._ack(message)

        search = self.fault("portal-search-instead-of-claim")
        return process_mailbox(self.kt1, action, handle, search_instead_of_claim=search)

    def _ack(self, message: DeliveredMessage) -> None:
        problem = self._problem(message)
        if problem is None or self.fault("portal-acks-success-on-bad"):
            self.kt1.ack(message, "Success")
        else:
            self.kt1.ack(message, "Failed", None if self.fault("portal-failed-without-exception") else problem)

    def _problem(self, message: DeliveredMessage) -> str | None:
        """Why the portal cannot use a delivered message (None: it can)."""
        if message.event != "UpdateCarePlanActivityStatus":
            return None
        focal = message.focal
        if focal is None:
            return "Broken message: the focal CarePlanActivityStatus is missing"
        activity = extension_value(focal.content, STATUS + "Activity")
        if activity not in self.assigned:
            return f"Unknown activity '{activity}': this portal never assigned it"
        status = extension_value(focal.content, STATUS + "ActivityStatus")
        if status not in KNOWN_STATUSES:
            return f"Unknown activity status '{status}'"
        return None

    @staticmethod
    def _reply(action: dict[str, Any], result: SendResult, what: str = "") -> Reply:
        if result.accepted:
            return reply_for(action, "done", f"sent {result.event}" + (f" ({what})" if what else ""))
        return reply_for(action, "refused", f"the server refused {result.event}: {result.answer.brief()[:300]}")


"""The simulated KT2 portal under test: sends patients, assigns activities as Tasks, launches modules,
subscribes (the driver actions send-patient, assign-activity, launch-task, subscribe).

It talks to the bench's voorziening with `AppPortalClient` (the bench's own portal actor plus fault flags)
and form-POSTs HTI launches to the Endpoint.address of the module's ActivityDefinition, which the bench
(playing the module) serves.  It remembers the patients and Tasks it made by their business identifiers,
as a real portal keeps its own records.
"""

from __future__ import annotations

import copy
from typing import Any

from simulators.kt2.actors import resources
from simulators.kt2.actors.application import PlainHttp
from simulators.kt2.actors.keys import KeyRing
from simulators.kt2.apps.base import (
    RESOURCE_ORIGIN,
    ActionFailed,
    Handler,
    SimulatedApp,
    answer_json,
    first_entry,
)
from simulators.kt2.apps.client import AppPortalClient, version_of

PATIENT_SYSTEM = "http://portal-under-test.ktbench.test/patients"


class SimulatedPortal(SimulatedApp):
    role = "portal"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = AppPortalClient("portal-under-test", PlainHttp(self.http), self.fhir_base, self.client_id,
                                      self.keys)
        self.client.faults = self.faults
        self.patients: dict[str, str] = {}                     # business identifier -> Patient id
        self.tasks: dict[tuple[str, str], str] = {}            # (patient identifier, activity) -> Task id

    def handlers(self) -> dict[str, Handler]:
        return {"send-patient": self.send_patient, "assign-activity": self.assign_activity,
                "launch-task": self.launch_task, "subscribe": self.subscribe, "report-status": self.report_status}

    # -- how this portal writes -------------------------------------------------------------------------
    def _create(self, resource: dict[str, Any]) -> dict[str, Any]:
        return answer_json(self.client.create(self.outgoing(resource)), f"POST {resource['resourceType']}")

    def _update(self, resource: dict[str, Any], version: str) -> dict[str, Any]:
        headers = None
        if self.has("no-if-match") or (resource["resourceType"] == "Task" and self.has("task-update-without-if-match")):
            sent_version = None
        elif self.has("if-match-star"):
            sent_version, headers = None, {"If-Match": "*"}
        else:
            sent_version = version
        answer = self.client.update(resource, sent_version, headers=headers)
        return answer_json(answer, f"PUT {resource['resourceType']}/{resource['id']}")

    def _patient_id(self, identifier: str) -> str:
        known = self.patients.get(identifier)
        if known:
            return known
        bundle = answer_json(self.client.search("Patient", {"identifier": identifier}), "GET Patient?identifier")
        found = first_entry(bundle, f"patient {identifier}")
        self.patients[identifier] = found["id"]
        return found["id"]

    # -- actions ----------------------------------------------------------------------------------------
    def send_patient(self, params: dict[str, Any]) -> str:
        person = params["patient"]
        if params.get("update"):
            patient_id = self._patient_id(person["identifier"])
            read = self.client.read(f"Patient/{patient_id}")
            current = answer_json(read, f"GET Patient/{patient_id}", ok=(200,))
            changed = copy.deepcopy(current)
            changed["name"] = [{"use": "official", "text": f"{person['given']} {person['family']}",
                                "family": person["family"], "given": [person["given"]]}]
            if person.get("birth_date"):
                changed["birthDate"] = person["birth_date"]
            stored = self._update(changed, version_of(current, read.headers.get("etag")))
            return f"updated Patient/{stored['id']}"
        body = resources.patient(family=person["family"], given=person["given"], email=person.get("email"),
                                 gender=person.get("gender", "unknown"),
                                 birth_date=person.get("birth_date", "1970-01-01"), system=PATIENT_SYSTEM)
        body["identifier"][0]["value"] = person["identifier"]
        stored = self._create(body)
        self.patients[person["identifier"]] = stored["id"]
        return f"created Patient/{stored['id']}"

    def _activity(self, activity: str) -> dict[str, Any]:
        bundle = answer_json(self.client.search("ActivityDefinition", {"identifier": activity}),
                             "GET ActivityDefinition?identifier")
        if not bundle.get("entry"):
            bundle = answer_json(self.client.search("ActivityDefinition", {"publisherId": activity}),
                                 "GET ActivityDefinition?publisherId")
        return first_entry(bundle, f"activity {activity}")

    def assign_activity(self, params: dict[str, Any]) -> str:
        patient_id = self._patient_id(params["patient_identifier"])
        definition = self._activity(params["activity"])
        body = resources.task(patient_id, definition["id"])
        if params.get("task_identifier"):
            body["identifier"][0]["value"] = params["task_identifier"]
        if self.has("task-instantiates-canonical"):
            body.pop("extension", None)
            body["instantiatesCanonical"] = definition.get("url", "")
        stored = self._create(body)
        self.tasks[(params["patient_identifier"], params["activity"])] = stored["id"]
        return f"created Task/{stored['id']}"

    def launch_task(self, params: dict[str, Any]) -> str:
        if params.get("as", "patient") != "patient":
            raise ActionFailed("this portal launches as the patient only")
        patient_id = self._patient_id(params["patient_identifier"])
        task_id = self.tasks.get((params["patient_identifier"], params["activity"]))
        if task_id is None:
            raise ActionFailed("no task of this portal for that patient and activity")
        definition = self._activity(params["activity"])
        module_device = _origin(definition)
        endpoint_ref = next((e.get("valueReference", {}).get("reference") for e in definition.get("extension", [])
                             if e.get("url", "").endswith("KT2EndpointExtension")), None)
        if not module_device or not endpoint_ref:
            raise ActionFailed("the activity names no module Device or Endpoint")
        endpoint = answer_json(self.client.read(endpoint_ref), f"GET {endpoint_ref}", ok=(200,))
        address = endpoint.get("address")
        if not isinstance(address, str) or not address:
            raise ActionFailed("the module's Endpoint has no address")
        aud = module_device.removeprefix("Device/") if self.has("hti-wrong-aud") else module_device
        lifetime = 3600 if self.has("hti-long-lifetime") else 240
        claims = self.client.hti_claims(aud, f"Patient/{patient_id}", f"Task/{task_id}", lifetime=lifetime,
                                        definition=f"ActivityDefinition/{definition['id']}")
        signer = self.keys.current
        if self.has("hti-foreign-key"):
            other = KeyRing.generated(signer.algorithm).current
            other.kid = signer.kid
            signer = other
        token = signer.sign(claims)
        if self.has("launch-as-get"):
            answer = self.http.get(address, params={"launch": token, "iss": self.fhir_base})
        else:
            answer = self.client.launch(address, token)
        return f"launched Task/{task_id}: the module answered {answer.status_code}"

    def report_status(self, params: dict[str, Any]) -> str:
        """A portal changes the status of a Task it assigned (e.g. cancelled when the treatment stops): read it,
        change the status, PUT it back with If-Match of the version read."""
        identifier, activity = params.get("patient_identifier"), params.get("activity")
        task_id = self.tasks.get((identifier or "", activity or ""))
        if task_id is None:
            raise ActionFailed("no task of this portal for that patient and activity")
        read = self.client.read(f"Task/{task_id}")
        current = answer_json(read, f"GET Task/{task_id}", ok=(200,))
        changed = copy.deepcopy(current)
        changed["status"] = params["status"]
        stored = self._update(changed, version_of(current, read.headers.get("etag")))
        return f"Task/{stored['id']} status {params['status']}"

    def subscription_body(self, criteria: str, channel: str) -> dict[str, Any]:
        body = super().subscription_body(criteria, channel)
        if self.has("subscription-with-payload"):
            body["channel"]["payload"] = "application/fhir+json"
        return body


def _origin(resource: dict[str, Any]) -> str | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == RESOURCE_ORIGIN:
            return (ext.get("valueReference") or {}).get("reference")
    return None

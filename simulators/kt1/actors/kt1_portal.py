"""`Kt1Portal`: the simulated portal - it registers people, assigns activities and launches modules.

A portal owns the patient's record: it names the Patient, Practitioner,
RelatedPerson and CarePlan resources, keeps their latest versions, and is the
application that asks the server to launch an eHealth module for a patient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_application import Answer, Kt1Application, SendResult
from simulators.kt1.actors.kt1_resources import LocalResource, PlannedActivity
from simulators.kt1.actors.people import People


@dataclass(repr=False)
class Kt1Portal(Kt1Application):
    software: str = "ktbench simulated portal"
    records: dict[str, LocalResource] = field(default_factory=dict, repr=False)

    # -- the portal's own records --------------------------------------------------------------------
    def _keep(self, resource: LocalResource) -> LocalResource:
        self.records[resource.url] = resource
        return resource

    def new_patient(self, people: People) -> LocalResource:
        return self._keep(LocalResource("Patient", self.new_url("Patient", people.unique_id()),
                                        res.patient(**people.patient())))

    def new_practitioner(self, people: People) -> LocalResource:
        return self._keep(LocalResource("Practitioner", self.new_url("Practitioner", people.unique_id()),
                                        res.practitioner(**people.practitioner())))

    def new_relative(self, people: People, patient: LocalResource) -> LocalResource:
        return self._keep(LocalResource("RelatedPerson", self.new_url("RelatedPerson", people.unique_id()),
                                        res.related_person(**people.relative(), patient_url=patient.url)))

    def new_careplan(self, people: People, patient: LocalResource, practitioner: LocalResource,
                     activities: list[PlannedActivity]) -> LocalResource:
        content = res.careplan(patient_url=patient.url, practitioner_url=practitioner.url, activities=activities)
        return self._keep(LocalResource("CarePlan", self.new_url("CarePlan", people.unique_id()), content))

    # -- messages --------------------------------------------------------------------------------------
    def send_patient(self, patient: LocalResource, **kwargs: Any) -> SendResult:
        return self.send("CreateOrUpdatePatient", patient, patient_url=patient.url, **kwargs)

    def send_practitioner(self, practitioner: LocalResource, patient: LocalResource, **kwargs: Any) -> SendResult:
        # The patient extension is optional for practitioner messages; the bench sets it so each
        # scenario's messages stay findable by their own patient.
        return self.send("CreateOrUpdatePractitioner", practitioner, patient_url=patient.url, **kwargs)

    def send_relative(self, relative: LocalResource, patient: LocalResource, **kwargs: Any) -> SendResult:
        return self.send("CreateOrUpdateRelatedPerson", relative, [patient], patient_url=patient.url, **kwargs)

    def send_careplan(self, careplan: LocalResource, patient: LocalResource, practitioner: LocalResource,
                      **kwargs: Any) -> SendResult:
        return self.send("CreateOrUpdateCarePlan", careplan, [patient, practitioner], patient_url=patient.url,
                         **kwargs)

    def change_activity_status(self, careplan: LocalResource, activity_id: str, status: str) -> None:
        res.set_careplan_activity_status(careplan.content, activity_id, status)

    def send_user_message(self, people: People, patient: LocalResource, sender_url: str,
                          **kwargs: Any) -> tuple[SendResult, LocalResource]:
        message = LocalResource("Other", self.new_url("UserMessage", people.unique_id()),
                                res.user_message(sender_url=sender_url, recipient_url=patient.url,
                                                 subject=people.subject(), content=people.sentence(),
                                                 kind="Advice"))
        return self.send("CreateOrUpdateUserMessage", message, [patient], patient_url=patient.url,
                         **kwargs), message

    # -- SSO -------------------------------------------------------------------------------------------
    def launch_module(self, module_id: str, patient: LocalResource, user_url: str, activity_id: str,
                      intent: str | None = None, mobile: bool = False) -> Answer:
        return self.launch(module_id, patient.url, user_url, activity_id, intent=intent, mobile=mobile)

"""One message of each KT1.3 event, composed by whichever application sends it.

Routing scenarios run the same check for all eight events; this module turns
an event name into the focal resource plus the resources the connector would
pack with it (the patient it is about, the practitioner a CarePlan names).
"""

from __future__ import annotations

from dataclasses import dataclass

from ktbench.fhir.dstu1.constants import MESSAGE_EVENTS
from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_application import Kt1Application, SendResult
from simulators.kt1.actors.kt1_resources import LocalResource, PlannedActivity
from simulators.kt1.actors.people import People


@dataclass
class Composed:
    event: str
    focal: LocalResource
    others: list[LocalResource]
    patient_url: str | None


def compose(sender: Kt1Application, event: str, people: People, patient: LocalResource) -> Composed:
    """A new message of `event` about `patient`, with resources named under the sender's base."""
    if event not in MESSAGE_EVENTS:
        raise ValueError(f"unknown KT1 event {event!r}; known: {', '.join(MESSAGE_EVENTS)}")
    uid = people.unique_id()

    def local(rtype: str, kind: str, content: dict) -> LocalResource:
        return LocalResource(rtype, sender.new_url(kind, uid), content)

    if event == "CreateOrUpdatePatient":
        return Composed(event, patient, [], patient.url)
    if event == "CreateOrUpdatePractitioner":
        focal = local("Practitioner", "Practitioner", res.practitioner(**people.practitioner()))
        return Composed(event, focal, [], patient.url)
    if event == "CreateOrUpdateRelatedPerson":
        focal = local("RelatedPerson", "RelatedPerson", res.related_person(**people.relative(),
                                                                           patient_url=patient.url))
        return Composed(event, focal, [patient], patient.url)
    if event == "CreateOrUpdateCarePlan":
        practitioner = LocalResource("Practitioner", sender.new_url("Practitioner", people.unique_id()),
                                     res.practitioner(**people.practitioner()))
        activity = PlannedActivity(identifier=f"act-{uid}", definition="ktbench-game-1")
        focal = local("CarePlan", "CarePlan", res.careplan(patient_url=patient.url,
                                                           practitioner_url=practitioner.url,
                                                           activities=[activity]))
        return Composed(event, focal, [patient, practitioner], patient.url)
    if event == "UpdateCarePlanActivityStatus":
        focal = local("Other", "CarePlanActivityStatus",
                      res.activity_status(activity_id=f"act-{uid}", status="InProgress", percentage=40))
        return Composed(event, focal, [patient], patient.url)
    if event == "CreateOrUpdateCarePlanActivityResult":
        focal = local("Other", "CarePlanActivityResult",
                      res.activity_result(activity_id=f"act-{uid}", status="Achieved",
                                          patient_url=patient.url,
                                          performer_url=sender.new_url("Organization", "ktbench"),
                                          issued="2024-03-01T10:00:00+00:00"))
        return Composed(event, focal, [patient], patient.url)
    if event == "CreateOrUpdateUserMessage":
        focal = local("Other", "UserMessage",
                      res.user_message(sender_url=sender.new_url("Practitioner", "care-team"),
                                       recipient_url=patient.url, subject=people.subject(),
                                       content=people.sentence()))
        return Composed(event, focal, [patient], patient.url)
    # CreateOrUpdateActivityDefinition: domain-wide information, not about a patient.
    ident = f"ktbench-{uid}"
    focal = LocalResource("Other", sender.new_url("ActivityDefinition", ident),
                          res.activity_definition(identifier=ident, name=people.activity_name(),
                                                  application=sender.app_id))
    return Composed(event, focal, [], None)


def send_composed(sender: Kt1Application, composed: Composed, **kwargs) -> SendResult:
    return sender.send(composed.event, composed.focal, composed.others, patient_url=composed.patient_url,
                       **kwargs)

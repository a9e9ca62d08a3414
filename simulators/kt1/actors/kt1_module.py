"""`Kt1Module`: the simulated eHealth module (a Game) - it reports progress, results and messages.

A module owns the CarePlanActivityStatus of each activity it runs: the first
report creates that resource, every later one updates it and must quote the
version the server minted last time.  It also publishes its
ActivityDefinitions and takes part in SSO as the launched application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ktbench.core.secret import Secret
from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_application import (
    Answer,
    Kt1Application,
    SendResult,
    query_of,
)
from simulators.kt1.actors.kt1_messages import now_instant
from simulators.kt1.actors.kt1_resources import LocalResource
from simulators.kt1.actors.people import People


@dataclass(repr=False)
class Kt1Module(Kt1Application):
    software: str = "ktbench simulated eHealth module"
    status_resources: dict[str, LocalResource] = field(default_factory=dict, repr=False)

    def status_resource(self, people: People, activity_id: str, status: str,
                        percentage: int | None = None) -> LocalResource:
        """The module's CarePlanActivityStatus for an activity, created on first use, updated after."""
        content = res.activity_status(activity_id=activity_id, status=status, percentage=percentage)
        existing = self.status_resources.get(activity_id)
        if existing is None:
            existing = LocalResource("Other", self.new_url("CarePlanActivityStatus", people.unique_id()), content)
            self.status_resources[activity_id] = existing
        else:
            existing.content = content
        return existing

    def report_status(self, people: People, patient: LocalResource, activity_id: str, status: str,
                      percentage: int | None = None, **kwargs: Any) -> SendResult:
        resource = self.status_resource(people, activity_id, status, percentage)
        return self.send("UpdateCarePlanActivityStatus", resource, [patient], patient_url=patient.url, **kwargs)

    def new_result(self, people: People, patient: LocalResource, activity_id: str, status: str = "Achieved",
                   performer_url: str | None = None) -> LocalResource:
        content = res.activity_result(activity_id=activity_id, status=status, patient_url=patient.url,
                                      performer_url=performer_url or self.new_url("Organization", "ktbench"),
                                      issued=now_instant())
        return LocalResource("Other", self.new_url("CarePlanActivityResult", people.unique_id()), content)

    def new_user_message(self, people: People, patient: LocalResource, recipient_url: str) -> LocalResource:
        content = res.user_message(sender_url=patient.url, recipient_url=recipient_url, subject=people.subject(),
                                   content=people.sentence(), kind="Question")
        return LocalResource("Other", self.new_url("UserMessage", people.unique_id()), content)

    def new_activity_definition(self, people: People, archived: bool = False) -> LocalResource:
        ident = f"ktbench-{people.unique_id()}"
        content = res.activity_definition(identifier=ident, name=people.activity_name(), application=self.app_id,
                                          description=people.sentence(), archived=archived,
                                          sub_activities=(("level-1", "Level 1"), ("level-2", "Level 2")))
        return LocalResource("Other", self.new_url("ActivityDefinition", ident), content)

    # -- SSO as the launched application ---------------------------------------------------------------
    @staticmethod
    def launch_id_from(location: str | None) -> str | None:
        """The launch id of a Launch redirect (`launch`, or the connector's `launch_id`)."""
        query = query_of(location)
        return query.get("launch") or query.get("launch_id")

    def authorize_code(self, answer: Answer) -> Secret | None:
        """The authorization code of an Authorize answer: redirect `?code=` (web) or JSON (mobile)."""
        if answer.location:
            code = query_of(answer.location).get("code")
        elif isinstance(answer.body, dict):
            code = answer.body.get("authorization_code") or answer.body.get("authorisation_code")
        else:
            code = None
        return Secret(code) if isinstance(code, str) and code else None

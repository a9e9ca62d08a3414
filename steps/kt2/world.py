"""One KT2 scenario's world: the bench's applications (shared per session) and what this scenario made.

A fresh `Kt2World` per scenario (fixture `kt2`) keeps scenarios independent under pytest-xdist: each makes
its own patient, ActivityDefinition and Task with fresh identifiers, so two scenarios never see each other's
resources even in one shared domain.  Resources are kept by label ("patient", "task", "the other task") as
the voorziening last returned them, so a later step can update with the right If-Match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ktbench.core.errors import BenchError
from ktbench.core.requirements import precondition
from simulators.kt2.actors import (
    IdpUser,
    Kt2Application,
    Kt2Module,
    Kt2Portal,
    resources,
)
from steps.kt2.bench import Kt2Bench
from steps.kt2.checks import describe, outcome_text

MAX_WAIT_SECONDS = 10.0            # the longest timer a suite run waits for ...
SLOW_MAX_WAIT_SECONDS = 1800.0     # ... and with --slow
ACTOR = r"(?P<actor>portal|module|other domain's portal)"


@dataclass
class Kt2World:
    bench: Kt2Bench
    faker: Any
    slow: bool = False
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: dict[str, httpx.Response] = field(default_factory=dict)
    last: httpx.Response | None = None
    notes: dict[str, Any] = field(default_factory=dict)       # what one step leaves for the next (no secrets)

    def __repr__(self) -> str:  # step parameters end up in reports: short, secret-free
        return f"<Kt2World target={self.bench.target.name!r}>"

    # -- the applications ------------------------------------------------------------------------------
    def app(self, name: str) -> Kt2Application:
        if not self.bench.has(name):
            pytest.skip(f"the target offers no {name}: give [targets.{self.bench.target.name}.roles] credentials for "
                        "it, or the admin accounts to register one")
        return self.bench.app(name)

    @property
    def portal(self) -> Kt2Portal:
        return self.app("portal")  # type: ignore[return-value]

    @property
    def module(self) -> Kt2Module:
        return self.app("module")  # type: ignore[return-value]

    def idp_user(self) -> IdpUser:
        user = self.bench.idp_user
        if user is None:
            name = self.bench.target.name
            pytest.skip(f"the SMART app launch needs a scripted identity provider user: set [targets.{name}] "
                        "idp_username and idp_user_identifier")
        return user

    def need_admin(self, *, other_domain: bool = False) -> None:
        if not self.bench.can_register(other_domain=other_domain):
            name = self.bench.target.name
            pytest.skip(f"needs the domain admin: give [targets.{name}.roles.application-admin] and "
                        f"[targets.{name}.roles.{'other-domain-admin' if other_domain else 'domain-admin'}] accounts")

    def setting_key(self, *names: str) -> str:
        return " and ".join(f"[targets.{self.bench.target.name}] {name}" for name in names)

    # -- waiting ---------------------------------------------------------------------------------------------
    @property
    def max_wait(self) -> float:
        return SLOW_MAX_WAIT_SECONDS if self.slow else MAX_WAIT_SECONDS

    def skip_unless_waitable(self, seconds: float, what: str) -> None:
        if seconds > self.max_wait:
            pytest.skip(f"{what} takes {seconds:.0f} s, longer than the {self.max_wait:.0f} s a run waits; "
                        "run with --slow, or declare shorter timers in the targets file")

    # -- resources ----------------------------------------------------------------------------------------
    def remember(self, label: str, answer: httpx.Response) -> httpx.Response:
        self.last = answer
        self.answers[label] = answer
        return answer

    def keep(self, label: str, answer: httpx.Response, req: str = "KT2-REST-CREATE",
             statuses: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        """Store what the voorziening answered for `label`; a refusal here is a precondition of the scenario."""
        self.remember(label, answer)
        try:
            body = answer.json()
        except ValueError:
            body = None
        precondition(answer.status_code in statuses and isinstance(body, dict) and bool(body.get("id")), req,
                     f"{label}: {describe(answer)} ({outcome_text(answer)})")
        self.resources[label] = body
        return body

    def resource(self, label: str) -> dict[str, Any]:
        try:
            return self.resources[label]
        except KeyError:
            raise BenchError(f"no {label} was made by an earlier step of this scenario") from None

    def ref(self, label: str) -> str:
        body = self.resource(label)
        return f"{body['resourceType']}/{body['id']}"

    def version(self, label: str) -> str:
        return str((self.resource(label).get("meta") or {}).get("versionId", ""))

    def create(self, app: Kt2Application, label: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.keep(label, app.create(body))

    # -- the usual cast: a patient, the module's activity, the portal's task ------------------------------------
    def patient(self, label: str = "patient") -> dict[str, Any]:
        if label not in self.resources:
            user = self.bench.idp_user
            person = self.faker
            self.create(self.portal, label, resources.patient(
                family=person.last_name(), given=person.first_name(), email=user.identifier if user else None))
        return self.resources[label]

    def activity(self, label: str = "definition") -> dict[str, Any]:
        """The module's Endpoint (its launch URL) and an ActivityDefinition that names it."""
        if label not in self.resources:
            endpoint = self.create(self.module, f"{label} endpoint", resources.endpoint(self.module.launch_url))
            self.create(self.module, label, resources.activity_definition(endpoint["id"],
                                                                          title=self.faker.catch_phrase()[:40]))
        return self.resources[label]

    def task(self, label: str = "task", **kwargs: Any) -> dict[str, Any]:
        """A Task the portal assigns to the patient, instantiating the module's ActivityDefinition."""
        if label not in self.resources:
            person = self.patient()
            definition = self.activity()
            self.create(self.portal, label, resources.task(person["id"], definition["id"], **kwargs))
        return self.resources[label]

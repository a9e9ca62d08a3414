"""The bench's side of a KT1 application-under-test session: its reference server and counter-role application.

The application under test was configured to reach a Koppeltaal server at 127.0.0.1:<server_port>; the
bench starts its KT1 reference server there, on a data file written for the session: one domain, the
application's own account (the target's role credential), the bench's counter-role application (a module
offering the activity for a portal target, a portal for a module target; fresh secrets every session) and the
module's ActivityDefinition.  The server is wrapped in RecordingMiddleware, so every request the application
sends is kept in an InboundLog the steps wait on and judge.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktbench.generations.kt1.apps import ROLE_OF_KIND
from ktbench.http.inbound import InboundLog, RecordingMiddleware
from ktbench.targets.model import BasicCredential, Secret, Target
from ktbench.targets.writer import dumps
from simulators.common.host import running_asgi
from simulators.kt1.actors import Kt1Module, Kt1Portal
from simulators.kt1.app import create_app

EVENTS = {
    "portal": ["CreateOrUpdatePatient", "CreateOrUpdateCarePlan", "UpdateCarePlanActivityStatus",
               "CreateOrUpdateCarePlanActivityResult"],
    "module": ["CreateOrUpdateCarePlan", "CreateOrUpdatePatient"],
}
ROLES = {"portal": ["Portal"], "module": ["Game"]}
NOWHERE = "http://127.0.0.1:9"      # a launch URL nobody follows (the bench's own counter-role)


@dataclass
class AppBench:
    target: Target
    role: str                  # the application under test's role
    creds: BasicCredential     # its account
    counter: Any               # the bench's Kt1Portal or Kt1Module (client of the bench's server)
    counter_creds: BasicCredential
    server_url: str
    log: InboundLog

    @property
    def activity(self) -> str:
        return self.target.settings.activity

    @property
    def module_app_id(self) -> str:
        return self.creds.app_id if self.role == "module" else self.counter_creds.app_id


def _account(creds: BasicCredential, role: str, launch_url: str | None) -> dict[str, Any]:
    return {"id": creds.app_id, "name": f"{role} ({creds.app_id})", "domain": creds.domain, "roles": ROLES[role],
            "username": creds.username, "password": creds.password.reveal(),
            "client_secret": creds.client_secret.reveal(), "launch_url": launch_url or f"{NOWHERE}/{role}/launch",
            "events": EVENTS[role]}


def server_data(target: Target, creds: BasicCredential, counter: BasicCredential) -> dict[str, Any]:
    role = ROLE_OF_KIND[target.kind]
    settings = target.settings
    module_id = creds.app_id if role == "module" else counter.app_id
    return {
        "server": {"claim_timeout_seconds": 300, "authorization_code_seconds": 60},
        "domains": [{"name": settings.domain}],
        "applications": [_account(creds, role, settings.launch_url if role == "module" else None),
                         {**_account(counter, counter.role, None), "events": []}],
        "activity_definitions": [{"domain": settings.domain, "identifier": settings.activity,
                                  "name": "ktbench activity under test", "kind": "Game",
                                  "application": module_id, "launch_type": "Web"}],
    }


@contextmanager
def running_app_bench(target: Target, http: Any) -> Iterator[AppBench]:
    role = ROLE_OF_KIND[target.kind]
    creds = target.role(role)
    creds = creds.model_copy(update={"domain": target.settings.domain})
    counter_role = "module" if role == "portal" else "portal"
    counter_creds = BasicCredential(role=counter_role, app_id=f"ktbench-bench-{counter_role}",
                                    password=Secret(secrets.token_urlsafe(18)),
                                    client_secret=Secret(secrets.token_urlsafe(18)), domain=target.settings.domain)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ktbench-kt1-apps-")))
        data_file = folder / "kt1-apps-bench-data.toml"
        data_file.write_text(dumps(server_data(target, creds, counter_creds),
                                   "written by ktbench for one application-under-test session"), encoding="utf-8")
        app = create_app(data_file, db=":memory:")
        stack.callback(app.state.ctx.store.close)
        log = InboundLog()
        server = stack.enter_context(running_asgi(RecordingMiddleware(app, log), name="kt1-bench-server",
                                                  port=target.settings.server_port))
        actor_type = Kt1Module if counter_role == "module" else Kt1Portal
        counter = actor_type(http=http, server_url=server.url, creds=counter_creds,
                             software=f"ktbench bench {counter_role}")
        yield AppBench(target=target, role=role, creds=creds, counter=counter, counter_creds=counter_creds,
                       server_url=server.url, log=log)

"""Start a simulated KT1 application under test on 127.0.0.1: its trigger endpoint and (module) SSO endpoints.

The application is told where the bench's KT1 server will listen before that server runs (as a vendor's
application is configured beforehand); it connects only when an action or a browser arrives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from ktbench.targets.model import BasicCredential
from simulators.common.host import running_asgi
from simulators.kt1.apps.faults import catalogue_for
from simulators.kt1.apps.module import LAUNCH_PATH, SimulatedModule
from simulators.kt1.apps.portal import SimulatedPortal
from simulators.kt1.apps.trigger import TRIGGER_PATH, trigger_routes


@dataclass
class RunningApp:
    role: str
    url: str
    app: Any

    @property
    def trigger_url(self) -> str:
        return self.url + TRIGGER_PATH

    @property
    def launch_url(self) -> str:
        return self.url + LAUNCH_PATH


@contextmanager
def running_kt1_app(role: str, *, server_url: str, creds: BasicCredential, faults: Sequence[str] = (),
                    activities: tuple[str, ...] = ("ktbench-game-1",), silent: bool = False,
                    unsupported: Sequence[str] = ()) -> Iterator[RunningApp]:
    chosen = catalogue_for(role).check(faults)
    if role == "portal":
        app: Any = SimulatedPortal(server_url=server_url, creds=creds, faults=chosen)
        extra: list = []
    elif role == "module":
        app = SimulatedModule(server_url=server_url, creds=creds, activities=activities, faults=chosen)
        extra = app.routes()
    else:
        raise ValueError(f"a KT1 application under test is a portal or a module, not {role!r}")
    routes = trigger_routes(app.handlers(), role=role, name=f"ktbench simulated KT1 {role} ({creds.app_id})",
                            silent=silent, unsupported=frozenset(unsupported))
    asgi = Starlette(routes=routes + extra)
    try:
        with running_asgi(asgi, name=f"kt1-{role}-under-test") as server:
            app.base = server.url
            yield RunningApp(role=role, url=server.url, app=app)
    finally:
        app.close()

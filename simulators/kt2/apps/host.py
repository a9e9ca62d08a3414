"""Running a simulated application under test on 127.0.0.1 (port 0): for the generation's embedded target."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from simulators.common.host import running_asgi
from simulators.kt2.apps.base import SimulatedApp
from simulators.kt2.apps.faults import MODULE_FAULTS, PORTAL_FAULTS
from simulators.kt2.apps.module import SimulatedModule
from simulators.kt2.apps.portal import SimulatedPortal

CATALOGUES = {"portal": PORTAL_FAULTS, "module": MODULE_FAULTS}


def build_app(role: str, *, fhir_base: str, client_id: str, faults: tuple[str, ...] = (),
              launch_path: str = "A") -> SimulatedApp:
    """`launch_path` (A | B) is the module's: which launch it takes (the portal has none)."""
    flags = CATALOGUES[role].check(faults)
    if role == "portal":
        return SimulatedPortal(fhir_base=fhir_base, client_id=client_id, faults=flags)
    return SimulatedModule(fhir_base=fhir_base, client_id=client_id, faults=flags, launch_path=launch_path)


@contextmanager
def running_app(role: str, *, fhir_base: str, client_id: str, faults: tuple[str, ...] = (),
                launch_path: str = "A") -> Iterator[SimulatedApp]:
    app = build_app(role, fhir_base=fhir_base, client_id=client_id, faults=faults, launch_path=launch_path)
    try:
        with running_asgi(app.asgi, name=f"kt2-{role}-under-test") as server:
            app.base_url = server.url.rstrip("/")
            yield app
    finally:
        app.close()

"""The application instances of the data file, as a Registry: the stand-in while no domain admin is wired.

`app.create_app` uses the domain admin (simulators/kt2/admin, which also handles connection requests and
status changes) when that package is present; otherwise, and in tests that want a registry they can change
directly, this one.  Like the admin it makes sure `Device/<client_id>` exists for every instance.
"""

from __future__ import annotations

from dataclasses import replace

from simulators.kt2.context import InstanceRecord, Kt2Context

CLIENT_ID_SYSTEM = "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
DEVICE_PROFILE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Device"


def device_resource(client_id: str, name: str) -> dict:
    return {"resourceType": "Device", "meta": {"profile": [DEVICE_PROFILE]},
            "identifier": [{"system": CLIENT_ID_SYSTEM, "value": client_id}],
            "status": "active", "deviceName": [{"name": name or client_id, "type": "user-friendly-name"}]}


class ListOutbox:
    """Outbox that keeps the mails in a list (no domain admin: nothing sends any)."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[str], str, str]] = []

    def send(self, to: list[str], subject: str, body: str) -> None:
        self.sent.append((list(to), subject, body))


class DataFileRegistry:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx
        self.outbox = ListOutbox()
        self._instances: dict[tuple[str, str], InstanceRecord] = {}
        for app in ctx.data.applications:
            for inst in app.instances:
                self._instances[(inst.domain, inst.client_id)] = InstanceRecord(
                    client_id=inst.client_id, application=app.id, domain=inst.domain, role=inst.role,
                    status=inst.status, name=inst.name or app.name, jwks_url=inst.jwks_url, jwks=inst.jwks,
                    redirect_uris=inst.redirect_uris, launch_url=inst.launch_url)

    def start(self) -> None:
        for record in self._instances.values():
            if self.ctx.fhir.read(record.domain, record.device) is None:
                self.ctx.fhir.create(record.domain, device_resource(record.client_id, record.name),
                                     resource_id=record.client_id)

    def routes(self) -> list:
        return []

    def instance(self, domain: str, client_id: str) -> InstanceRecord | None:
        return self._instances.get((domain, client_id))

    def instances(self, domain: str) -> list[InstanceRecord]:
        return [r for (d, _), r in self._instances.items() if d == domain]

    def set_status(self, domain: str, client_id: str, status: str) -> None:
        """For tests: what a domain admin's status change does."""
        key = (domain, client_id)
        self._instances[key] = replace(self._instances[key], status=status)

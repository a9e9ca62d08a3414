"""The Device an application instance is known by in its domain's FHIR store (kt2-protocol.md §1.2, §3.1).

Every registered instance has `Device/<client_id>` (the Device id IS the client id): KT2Device profile,
identifier `http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id` = client id, deviceName of type
`user-friendly-name`, and a status that follows the instance (`active` while the instance is active,
`inactive` in maintenance and once closed).  The domain admin writes it through `SystemFhir` (as the
voorziening itself: no resource-origin, no permission checks), inside the caller's transaction, so a Device
that cannot be written undoes the acceptance or status change that needed it.
"""

from __future__ import annotations

import logging
from typing import Any

from simulators.kt2.admin.errors import AdminError
from simulators.kt2.context import InstanceRecord, Kt2Context, SystemFhir

CLIENT_ID_SYSTEM = "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
KT2_DEVICE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Device"
log = logging.getLogger("ktbench.kt2.admin")


def device_status(instance_status: str) -> str:
    return "active" if instance_status == "active" else "inactive"


def device_resource(record: InstanceRecord) -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": record.client_id,
        "meta": {"profile": [KT2_DEVICE]},
        "identifier": [{"system": CLIENT_ID_SYSTEM, "value": record.client_id}],
        "status": device_status(record.status),
        "deviceName": [{"name": record.name, "type": "user-friendly-name"}],
    }


class Devices:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx

    def _fhir(self) -> SystemFhir:
        if self.ctx.fhir is None:
            raise AdminError(503, "fhir_unavailable", "the FHIR store is not wired to the domain admin")
        return self.ctx.fhir

    def create(self, record: InstanceRecord) -> None:
        fhir = self._fhir()
        self._call(record, lambda: fhir.create(record.domain, device_resource(record), resource_id=record.client_id))

    def ensure(self, record: InstanceRecord) -> None:
        """Create the Device when it is missing; correct its status when it does not follow the instance."""
        fhir = self._fhir()
        existing = self._call(record, lambda: fhir.read(record.domain, record.device))
        if existing is None:
            self.create(record)
        elif existing.get("status") != device_status(record.status) and not self.ctx.fault("device-status-stale"):
            self._call(record, lambda: fhir.update(record.domain, {**existing,
                                                                   "status": device_status(record.status)}))

    def follow_status(self, record: InstanceRecord) -> None:
        if not self.ctx.fault("device-status-stale"):
            self.ensure(record)

    @staticmethod
    def _call(record: InstanceRecord, action: Any) -> Any:
        try:
            return action()
        except AdminError:
            raise
        except Exception as exc:  # the store refused (FhirError) or broke: nothing of ours may be stored
            log.warning("the FHIR store did not write %s: %s", record.device, exc)
            detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise AdminError(502, "device_failed",
                             f"the FHIR store did not write {record.device}: {detail}") from exc

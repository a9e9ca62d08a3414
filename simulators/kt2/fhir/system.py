"""The store as the voorziening's own components use it (context.SystemFhir): no token, no permission check.

The domain admin creates Devices through it, the authorisation server reads the Patient/Practitioner/
RelatedPerson an HTI `sub` names.  System writes are trusted: no profile validation and no resource-origin
(the reference implementation's Devices have none, and a resource without origin matches every scope).
They do notify matching Subscriptions when an event loop runs.
"""

from __future__ import annotations

import json
from typing import Any

from simulators.kt2.context import Kt2Context
from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.fhir import rules
from simulators.kt2.fhir.common import ID_RE
from simulators.kt2.fhir.instants import instant
from simulators.kt2.fhir.repository import NewVersion, Repository
from simulators.kt2.fhir.subscriptions import Notifier, Trigger
from simulators.kt2.http import dumps
from simulators.kt2.ids import new_uuid
from simulators.kt2.trace import TraceIds


class SystemStore:
    def __init__(self, ctx: Kt2Context, repo: Repository, notifier: Notifier) -> None:
        self.ctx = ctx
        self.repo = repo
        self.notifier = notifier

    def _write(self, domain: str, resource: dict[str, Any], rid: str, version: int, method: str) -> dict[str, Any]:
        rtype = resource.get("resourceType")
        if rtype not in RESOURCE_TYPES or not ID_RE.match(rid):
            raise ValueError(f"cannot store a {rtype!r} with id {rid!r}")
        now_ms = self.ctx.clock.now_ms()
        meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
        stored = {"resourceType": rtype, "id": rid,
                  "meta": {"versionId": str(version), "lastUpdated": instant(now_ms), **meta},
                  **{k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}}
        refs = sorted({f"{t}/{i}" for _, t, i in rules.local_references(stored, rtype)})
        self.repo.write([NewVersion(domain, rtype, rid, version, now_ms, method, dumps(stored),
                                    rules.origin_reference(stored), stored, tuple(refs))])
        return stored

    def create(self, domain: str, resource: dict[str, Any], *, resource_id: str | None = None) -> dict[str, Any]:
        rid = resource_id or new_uuid()
        with self.ctx.store.transaction():
            current = self.repo.current(domain, resource["resourceType"], rid)
            if current is not None and not current.deleted:
                raise ValueError(f"{resource['resourceType']}/{rid} exists already")
            stored = self._write(domain, resource, rid, current.version + 1 if current else 1,
                                 "POST" if current is None else "PUT")
        self._notify(domain, stored)
        return stored

    def read(self, domain: str, reference: str) -> dict[str, Any] | None:
        rtype, _, rid = reference.partition("/")
        if rtype not in RESOURCE_TYPES or not ID_RE.match(rid):
            return None
        if rtype == "AuditEvent" and self.ctx.audit is not None:
            self.ctx.audit.flush()
        found = self.repo.read_current(domain, rtype, rid)
        if found is None or found[0].deleted or found[1] is None:
            return None
        return json.loads(found[1])

    def update(self, domain: str, resource: dict[str, Any]) -> dict[str, Any]:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        with self.ctx.store.transaction():
            current = self.repo.current(domain, str(rtype), str(rid))
            if current is None or current.deleted:
                raise ValueError(f"{rtype}/{rid} does not exist")
            stored = self._write(domain, resource, str(rid), current.version + 1, "PUT")
        self._notify(domain, stored)
        return stored

    def _notify(self, domain: str, stored: dict[str, Any]) -> None:
        """The voorziening itself made the change: its own Device is the trigger's agent in transmit events
        (not an anonymous caller)."""
        trace = TraceIds(new_uuid(), new_uuid())
        self.notifier.changed(Trigger(domain, stored["resourceType"], stored["id"], int(stored["meta"]["versionId"]),
                                      self.notifier.observer(domain), trace, "ktbench"))

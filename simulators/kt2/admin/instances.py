"""Application instances ("Applicatieinstanties", seed 001 §4.3-4.5): the registry the authorisation server asks.

An instance is an application joined to one domain with one role and a client id; it comes from the data file
(`Application.instances`, registered once on the first start) or from an accepted connection request.  Its
status is "Actief" (active), "In onderhoud" (maintenance) or "Afgesloten" (closed):

    active -> maintenance, maintenance -> active, active | maintenance -> closed; closed is final.

Only a domain admin of the instance's domain changes it, always with a reason, and every change is kept in
the history (who, when, why).  The Device follows the status.  Only active instances get tokens: the token
endpoint calls `instance()` per request, so the records are cached in memory and the cache is dropped after
every committed change (the next call reads the database again).
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

from simulators.kt2.admin.accounts import Account
from simulators.kt2.admin.devices import Devices
from simulators.kt2.admin.errors import conflict, forbidden, invalid, not_found
from simulators.kt2.context import InstanceRecord, Kt2Context
from simulators.kt2.data import INSTANCE_STATUSES

STATUS_LABELS = {"active": "Actief", "maintenance": "In onderhoud", "closed": "Afgesloten"}
TRANSITIONS: dict[str, tuple[str, ...]] = {"active": ("maintenance", "closed"),
                                           "maintenance": ("active", "closed"),
                                           "closed": ()}
MAX_REASON = 2000
DATA_FILE = "data-file"
CONNECTION_REQUEST = "connection-request"


def required_text(value: str | None, what: str, limit: int) -> str:
    """A mandatory free text (reason): stripped, not empty, not longer than `limit`."""
    text = (value or "").strip()
    if not text:
        raise invalid(f"{what} is required and must not be empty")
    if len(text) > limit:
        raise invalid(f"{what} is longer than {limit} characters")
    return text


class InstanceRegistry:
    """Implements `context.Registry` (through DomainAdmin) and the status changes of the domain admin."""

    def __init__(self, ctx: Kt2Context, devices: Devices) -> None:
        self.ctx = ctx
        self.devices = devices
        self._lock = threading.Lock()
        self._cache: dict[str, InstanceRecord] | None = None

    # -- the data file's instances ----------------------------------------------------------------------
    def seed(self) -> None:
        """Register the data file's instances that the database does not know yet (never overwrites)."""
        store = self.ctx.store
        with store.transaction():
            for app in self.ctx.data.applications:
                for inst in app.instances:
                    if store.one("SELECT 1 FROM admin_instances WHERE client_id = ?", (inst.client_id,)):
                        continue
                    record = InstanceRecord(inst.client_id, app.id, inst.domain, inst.role, inst.status,
                                            inst.name or app.name, inst.jwks_url, inst.jwks, inst.redirect_uris,
                                            inst.launch_url)
                    self.register(record, by="data file", reason="Geregistreerd vanuit het databestand",
                                  origin=DATA_FILE)
        self.invalidate()

    # -- reading ----------------------------------------------------------------------------------------
    def _records(self) -> dict[str, InstanceRecord]:
        cache = self._cache
        if cache is None:
            with self._lock:
                rows = self.ctx.store.all("SELECT * FROM admin_instances ORDER BY created_at, client_id")
                cache = {row["client_id"]: _record(row) for row in rows}
                self._cache = cache
        return cache

    def invalidate(self) -> None:
        self._cache = None

    def get(self, client_id: str) -> InstanceRecord | None:
        return self._records().get(client_id)

    def instance(self, domain: str, client_id: str) -> InstanceRecord | None:
        record = self._records().get(client_id)
        return record if record is not None and record.domain == domain else None

    def instances(self, domain: str) -> list[InstanceRecord]:
        return [r for r in self._records().values() if r.domain == domain]

    def all(self) -> list[InstanceRecord]:
        return list(self._records().values())

    def visible_to(self, account: Account, record: InstanceRecord) -> bool:
        return account.manages_domain(record.domain) or account.manages_application(record.application)

    def visible(self, account: Account, *, domain: str | None = None,
                application: str | None = None) -> list[InstanceRecord]:
        return [r for r in self._records().values() if self.visible_to(account, r)
                and (domain is None or r.domain == domain)
                and (application is None or r.application == application)]

    def lookup(self, account: Account, client_id: str) -> InstanceRecord:
        """An instance the account may see; 404 for unknown ones and for those of others (no probing)."""
        record = self.get(client_id)
        if record is None or not self.visible_to(account, record):
            raise not_found(f"no application instance {client_id!r}")
        return record

    def details(self, client_id: str) -> dict[str, Any]:
        """Where the instance came from and its status history, oldest first."""
        row = self.ctx.store.one("SELECT origin, request_id, created_at FROM admin_instances WHERE client_id = ?",
                                 (client_id,))
        history = self.ctx.store.all("SELECT * FROM admin_instance_history WHERE client_id = ? ORDER BY seq",
                                     (client_id,))
        return {"origin": row["origin"] if row else None, "request_id": row["request_id"] if row else None,
                "created_at": row["created_at"] if row else None,
                "history": [{"at": h["at"], "by": h["by"], "from": h["from_status"], "to": h["to_status"],
                             "reason": h["reason"]} for h in history]}

    # -- writing (callers hold the transaction and invalidate afterwards) -------------------------------
    def register(self, record: InstanceRecord, *, by: str, reason: str, origin: str,
                 request_id: str | None = None) -> None:
        now = self.ctx.clock.now()
        self.ctx.store.execute(
            "INSERT INTO admin_instances (client_id, application, domain, role, status, name, jwks_url, jwks, "
            "redirect_uris, launch_url, origin, request_id, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.client_id, record.application, record.domain, record.role, record.status, record.name,
             record.jwks_url, None if record.jwks is None else json.dumps(record.jwks),
             json.dumps(list(record.redirect_uris)), record.launch_url, origin, request_id, now))
        self._history(record.client_id, now, by, None, record.status, reason)

    def _history(self, client_id: str, at: float, by: str, old: str | None, new: str, reason: str) -> None:
        self.ctx.store.execute("INSERT INTO admin_instance_history (client_id, at, by, from_status, to_status, "
                               "reason) VALUES (?, ?, ?, ?, ?, ?)", (client_id, at, by, old, new, reason))

    def allowed_targets(self, status: str) -> tuple[str, ...]:
        if status == "closed" and self.ctx.fault("closed-instance-reopenable"):
            return ("active", "maintenance")
        if status == "maintenance" and self.ctx.fault("maintenance-not-reactivatable"):
            return ("closed",)
        return TRANSITIONS.get(status, ())

    def change_status(self, account: Account, client_id: str, status: str, reason: str | None) -> InstanceRecord:
        record = self.lookup(account, client_id)
        if not account.manages_domain(record.domain):
            raise forbidden("only a domain admin of the instance's domain changes its status")
        if status not in INSTANCE_STATUSES:
            raise invalid(f"status must be one of {', '.join(INSTANCE_STATUSES)}")
        if self.ctx.fault("status-reason-optional"):
            text = (reason or "").strip()[:MAX_REASON]
        else:
            text = required_text(reason, "reason", MAX_REASON)
        if status not in self.allowed_targets(record.status):
            final = " (closed is final)" if record.status == "closed" else ""
            raise conflict(f"an instance with status {record.status!r} cannot become {status!r}{final}")
        changed = replace(record, status=status)
        store = self.ctx.store
        try:
            with store.transaction():
                cursor = store.execute("UPDATE admin_instances SET status = ? WHERE client_id = ? AND status = ?",
                                       (status, client_id, record.status))
                if cursor.rowcount != 1:
                    raise conflict("the instance's status changed meanwhile; reload and try again")
                self._history(client_id, self.ctx.clock.now(), account.username, record.status, status, text)
                self.devices.follow_status(changed)
        finally:
            self.invalidate()
        return changed


def _record(row: Any) -> InstanceRecord:
    return InstanceRecord(client_id=row["client_id"], application=row["application"], domain=row["domain"],
                          role=row["role"], status=row["status"], name=row["name"], jwks_url=row["jwks_url"],
                          jwks=None if row["jwks"] is None else json.loads(row["jwks"]),
                          redirect_uris=tuple(json.loads(row["redirect_uris"])), launch_url=row["launch_url"])

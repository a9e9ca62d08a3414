"""User-authentication AuditEvents of the authorisation server (token, introspect, authorize, idp steps)."""

from __future__ import annotations

from urllib.parse import urlsplit

from simulators.kt2.context import Kt2Context
from simulators.kt2.fhir.audit import auth_event
from simulators.kt2.trace import TraceIds


def observer_device(domain: str) -> str:
    return f"Device/ktbench-voorziening-{domain}"


class AuthEvents:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx

    def record(self, domain: str, root: str, trace: TraceIds, step: str, success: bool, description: str, *,
               client_id: str | None = None, user: str | None = None, idp: tuple[str, str] | None = None) -> None:
        if self.ctx.audit is None or self.ctx.fault("audit-event-missing"):
            return
        event = auth_event(step=step, success=success, description=description, client_id=client_id, user=user,
                           idp=idp, site=urlsplit(root).hostname or "ktbench", observer=observer_device(domain),
                           trace=trace, recorded=self.ctx.clock.instant())
        self.ctx.audit.record(domain, event)

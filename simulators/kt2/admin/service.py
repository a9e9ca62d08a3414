"""`DomainAdmin`: the domain admin application of the voorziening, assembled from its parts.

What the rest of the voorziening sees (wired by `simulators/kt2/app.py`):

- `DomainAdmin(ctx)` creates the `admin_*` tables and brings in the data file's accounts and pre-registered
  instances (a file database keeps its state across restarts: nothing is duplicated or overwritten);
- `start()`, once `ctx.fhir` is wired, makes sure `Device/<client_id>` exists for every registered instance;
- `instance()` / `instances()` implement `context.Registry` for the authorisation server (cached);
- `outbox` implements `context.Outbox`;
- `routes()` are mounted at `urls.MANAGEMENT` (`/kt2/mgmt`): the JSON API under `api/`, the web page elsewhere.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute

from simulators.kt2.admin.accounts import Accounts
from simulators.kt2.admin.connections import ConnectionRequests
from simulators.kt2.admin.devices import Devices
from simulators.kt2.admin.instances import InstanceRegistry
from simulators.kt2.admin.outbox import AdminOutbox
from simulators.kt2.admin.schema import SCHEMA
from simulators.kt2.admin.sessions import Sessions
from simulators.kt2.context import InstanceRecord, Kt2Context


class DomainAdmin:
    def __init__(self, ctx: Kt2Context) -> None:
        ctx.store.ensure_schema(SCHEMA)
        self.ctx = ctx
        self.outbox = AdminOutbox(ctx)
        self.accounts = Accounts(ctx)
        self.sessions = Sessions(ctx, self.accounts)
        self.devices = Devices(ctx)
        self.registry = InstanceRegistry(ctx, self.devices)
        self.connections = ConnectionRequests(ctx, self.accounts, self.registry, self.devices, self.outbox)
        with ctx.store.transaction():
            self.accounts.seed()
            self.registry.seed()

    def start(self) -> None:
        """Make sure every registered instance has its Device (with the status it should have)."""
        if self.ctx.fhir is None:
            raise RuntimeError("DomainAdmin.start() needs ctx.fhir (the FHIR store) to be wired first")
        with self.ctx.store.transaction():
            for record in self.registry.all():
                self.devices.ensure(record)

    # -- context.Registry -------------------------------------------------------------------------------
    def instance(self, domain: str, client_id: str) -> InstanceRecord | None:
        return self.registry.instance(domain, client_id)

    def instances(self, domain: str) -> list[InstanceRecord]:
        return self.registry.instances(domain)

    # -- HTTP -------------------------------------------------------------------------------------------
    def root(self, request: Request) -> str:
        """Root URL of minted links: `--public-base` when given, else where the request came in."""
        return self.ctx.root(str(request.base_url))

    def routes(self) -> list[BaseRoute]:
        from simulators.kt2.admin.api import api_routes
        from simulators.kt2.admin.pages import page_routes

        return [*api_routes(self), *page_routes(self)]

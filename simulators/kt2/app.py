"""The KT2 reference voorziening as one Starlette ASGI app: wiring of store, auth server, IdP and admin.

This is the composition root of simulators/kt2: it builds the services of context.py, hands them to each
other through the Kt2Context and mounts their routes.  Route order matters: the smart-configuration (under
the FHIR base) and the OAuth routes come before the FHIR catch-all.  Everything runs behind the trace-header
middleware.  The import of simulators.kt2.admin is the only coupling to the domain admin package; without
it the instances of the data file serve as the registry (simulators/kt2/registry.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from simulators.kt2 import urls
from simulators.kt2.auth.assertions import JwtChecks
from simulators.kt2.auth.client_keys import ClientKeys
from simulators.kt2.auth.events import AuthEvents
from simulators.kt2.auth.introspection import Introspection
from simulators.kt2.auth.keys import DomainKeys
from simulators.kt2.auth.launch import Launches
from simulators.kt2.auth.routes import AuthEndpoints
from simulators.kt2.auth.sessions import Sessions
from simulators.kt2.auth.tokens import TokenService
from simulators.kt2.context import Kt2Context
from simulators.kt2.data import ServerData, load_data
from simulators.kt2.errors import FhirError
from simulators.kt2.faults import check_faults
from simulators.kt2.fhir.audit import AuditLog
from simulators.kt2.fhir.reads import Reader
from simulators.kt2.fhir.repository import Repository
from simulators.kt2.fhir.routes import FhirEndpoints, observer_device
from simulators.kt2.fhir.subscriptions import Notifier
from simulators.kt2.fhir.system import SystemStore
from simulators.kt2.fhir.writes import Writer
from simulators.kt2.http import error_response
from simulators.kt2.idp import IdentityProviders
from simulators.kt2.registry import CLIENT_ID_SYSTEM, DataFileRegistry, device_resource
from simulators.kt2.store import Store
from simulators.kt2.trace import TraceMiddleware

log = logging.getLogger("ktbench.kt2")
FHIR_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@dataclass
class Services:
    """What tests and the CLI reach into (app.state.kt2)."""

    ctx: Kt2Context
    repo: Repository
    audit: AuditLog
    notifier: Notifier
    tokens: TokenService
    keys: DomainKeys
    client_keys: ClientKeys
    registry: Any

    def close(self) -> None:
        try:
            self.audit.close()
        finally:
            self.ctx.store.close()


def check_public_base(public_base: str | None) -> str | None:
    if public_base is None:
        return None
    parts = urlsplit(public_base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"--public-base {public_base!r} is not an http(s) URL like https://kt2.example.org")
    return public_base.rstrip("/")


def _domain_admin(ctx: Kt2Context) -> Any:
    try:
        from simulators.kt2.admin import DomainAdmin
    except ModuleNotFoundError as missing:
        if missing.name not in ("simulators.kt2.admin",):
            raise
        return DataFileRegistry(ctx)
    return DomainAdmin(ctx)


def create_app(data: ServerData | str | Path | None = None, db: str = ":memory:", faults=(),
               public_base: str | None = None, *,
               registry: Callable[[Kt2Context], Any] | None = None) -> Starlette:
    """Build a voorziening.  `data`: a ServerData, a data file path, or None for the shipped default.
    `registry` (tests): a factory for the Registry instead of the domain admin."""
    server_data = data if isinstance(data, ServerData) else load_data(data)
    gate = threading.Lock() if db != ":memory:" else None
    ctx = Kt2Context(server_data, Store(db, gate), check_faults(list(faults)), check_public_base(public_base))
    repo = Repository(ctx.store)
    writer = Repository(Store(db, gate)) if gate else None   # the AuditEvent writer's own connection
    audit = AuditLog(repo, ctx.clock.now_ms, writer)
    ctx.audit = audit
    notifier = Notifier(ctx, repo, observer_device)
    ctx.fhir = SystemStore(ctx, repo, notifier)
    domains = [d.name for d in server_data.domains]
    keys = DomainKeys(ctx.store, domains)
    client_keys = ClientKeys(ctx)
    checks = JwtChecks(ctx, client_keys)
    events = AuthEvents(ctx)
    tokens = TokenService(ctx, keys, checks, events)
    ctx.tokens = tokens
    sessions = Sessions(ctx)
    launches = Launches(ctx, checks, tokens, sessions, events)
    admin = registry(ctx) if registry is not None else _domain_admin(ctx)
    ctx.registry = admin
    ctx.outbox = getattr(admin, "outbox", None)
    for domain in domains:
        device_id = observer_device(domain).split("/")[1]
        if ctx.fhir.read(domain, f"Device/{device_id}") is None:
            device = device_resource(device_id, f"ktbench voorziening ({domain})")
            assert device["identifier"][0]["system"] == CLIENT_ID_SYSTEM
            ctx.fhir.create(domain, device, resource_id=device_id)
    if hasattr(admin, "start"):
        admin.start()
    checks.purge()
    sessions.purge()

    fhir = FhirEndpoints(ctx, Reader(ctx, repo), Writer(ctx, repo), audit, notifier)
    auth = AuthEndpoints(ctx, keys, tokens, launches, Introspection(ctx, checks, tokens, launches, events))
    fhir_base = urls.API + "/{domain}/fhir/r4"
    routes = [
        *auth.routes(),
        *IdentityProviders(ctx, sessions).routes(),
        Mount(urls.MANAGEMENT, routes=list(admin.routes()) if hasattr(admin, "routes") else []),
        Route(fhir_base, fhir.handle, methods=FHIR_METHODS),
        Route(fhir_base + "/{path:path}", fhir.handle, methods=FHIR_METHODS),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        detail = {404: f"No endpoint at {request.url.path[:200]}",
                  405: f"{request.method} is not allowed on {request.url.path[:200]}"}.get(exc.status_code,
                                                                                          str(exc.detail))
        return error_response(FhirError.one(exc.status_code, detail, code))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(FhirError.one(500, "Internal server error", "exception"))

    app = Starlette(routes=routes, middleware=[Middleware(TraceMiddleware)],
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.ctx = ctx
    app.state.kt2 = Services(ctx, repo, audit, notifier, tokens, keys, client_keys, admin)
    return app

"""Connection requests ("Connectieaanvragen", seed 001 §4.6, §5.3-5.6): how an application joins a domain.

An application admin files a request for one of their applications in a domain (name, JWKS URI, redirect
URIs, launch URL); it is pending ("In behandeling") and the domain's admins get an e-mail.  A domain admin of
that domain decides once:

- accept with exactly one role of the data file: a new client id (UUID v4, server-assigned), an active
  instance with that role, `Device/<client id>` in the domain's FHIR store, and the e-mail "Connectieaanvraag
  geaccepteerd" naming the client id to the application's admins.  All of it in one transaction: if the
  Device cannot be written, nothing is stored and no e-mail is sent;
- reject with a reason: the e-mail "Connectieaanvraag geweigerd" to the application's admins; no instance.

A second decision is a 409.  Requests and instances of other domains and applications are 404 to those who may
not see them, so ids cannot be probed; seeing a request without the right to decide it is a 403.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from simulators.kt2 import urls
from simulators.kt2.admin import mails
from simulators.kt2.admin.accounts import Account, Accounts
from simulators.kt2.admin.devices import Devices
from simulators.kt2.admin.errors import conflict, forbidden, invalid, not_found
from simulators.kt2.admin.fields import MAX_REDIRECT_URIS, check_name, check_url
from simulators.kt2.admin.instances import (
    CONNECTION_REQUEST,
    InstanceRegistry,
    required_text,
)
from simulators.kt2.admin.outbox import AdminOutbox
from simulators.kt2.context import InstanceRecord, Kt2Context

STATUS_LABELS = {"pending": "In behandeling", "accepted": "Geaccepteerd", "rejected": "Geweigerd"}
REQUEST_STATUSES = tuple(STATUS_LABELS)
MAX_REASON = 2000


@dataclass(frozen=True)
class Filing:
    """A request as submitted (types checked, contents not yet)."""

    application: str
    domain: str
    jwks_uri: str
    name: str | None = None
    redirect_uris: tuple[str, ...] = ()
    launch_url: str | None = None


@dataclass(frozen=True)
class ConnectionRequest:
    id: str
    application: str
    domain: str
    name: str
    jwks_uri: str
    redirect_uris: tuple[str, ...]
    launch_url: str | None
    status: str
    filed_by: str
    filed_at: float
    decided_by: str | None
    decided_at: float | None
    role: str | None
    client_id: str | None
    reason: str | None


class ConnectionRequests:
    def __init__(self, ctx: Kt2Context, accounts: Accounts, registry: InstanceRegistry, devices: Devices,
                 outbox: AdminOutbox) -> None:
        self.ctx = ctx
        self.accounts = accounts
        self.registry = registry
        self.devices = devices
        self.outbox = outbox

    # -- reading ----------------------------------------------------------------------------------------
    def get(self, request_id: str) -> ConnectionRequest | None:
        row = self.ctx.store.one("SELECT * FROM admin_connection_requests WHERE id = ?", (request_id,))
        return None if row is None else _request(row)

    @staticmethod
    def visible_to(account: Account, request: ConnectionRequest) -> bool:
        return account.manages_domain(request.domain) or account.manages_application(request.application)

    def lookup(self, account: Account, request_id: str) -> ConnectionRequest:
        request = self.get(request_id)
        if request is None or not self.visible_to(account, request):
            raise not_found(f"no connection request {request_id!r}")
        return request

    def visible(self, account: Account, *, domain: str | None = None, application: str | None = None,
                status: str | None = None) -> list[ConnectionRequest]:
        """Newest first."""
        rows = self.ctx.store.all("SELECT * FROM admin_connection_requests ORDER BY seq DESC")
        found = [_request(row) for row in rows]
        return [r for r in found if self.visible_to(account, r) and (domain is None or r.domain == domain)
                and (application is None or r.application == application) and (status is None or r.status == status)]

    # -- filing -----------------------------------------------------------------------------------------
    def file(self, account: Account, filing: Filing, root: str) -> ConnectionRequest:
        if not account.is_application_admin:
            raise forbidden("only an application admin files connection requests")
        app = self.ctx.data.application(filing.application)
        if app is None:
            raise invalid(f"unknown application {filing.application!r}")
        if not account.manages_application(app.id):
            raise forbidden(f"you do not administer application {app.id!r}")
        domain = self.ctx.data.domain(filing.domain)
        if domain is None:
            raise invalid(f"unknown domain {filing.domain!r}")
        loopback = self.ctx.settings.allow_loopback_http_jwks
        jwks_uri = check_url(filing.jwks_uri, "jwks_uri", https_only=True, loopback_http=loopback)
        if len(filing.redirect_uris) > MAX_REDIRECT_URIS:
            raise invalid(f"redirect_uris has more than {MAX_REDIRECT_URIS} entries")
        redirect_uris = tuple(dict.fromkeys(check_url(u, f"redirect_uris[{i}]", https_only=False, loopback_http=True)
                                            for i, u in enumerate(filing.redirect_uris)))
        launch_url = None
        if filing.launch_url is not None and filing.launch_url.strip():
            launch_url = check_url(filing.launch_url, "launch_url", https_only=True, loopback_http=loopback)
        name = app.name if filing.name is None or not filing.name.strip() else check_name(filing.name)
        request = ConnectionRequest(str(uuid.uuid4()), app.id, domain.name, name, jwks_uri, redirect_uris,
                                    launch_url, "pending", account.username, self.ctx.clock.now(),
                                    None, None, None, None, None)
        store = self.ctx.store
        with store.transaction():
            store.execute(
                "INSERT INTO admin_connection_requests (id, application, domain, name, jwks_uri, redirect_uris, "
                "launch_url, status, filed_by, filed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (request.id, request.application, request.domain, request.name, request.jwks_uri,
                 json.dumps(list(request.redirect_uris)), request.launch_url, request.status, request.filed_by,
                 request.filed_at))
            if not self.ctx.fault("no-request-email"):
                subject, body = mails.request_filed(self._facts(request, root), account.name)
                self.outbox.send(self.accounts.domain_admin_emails(domain.name), subject, body)
            if self.ctx.fault("request-auto-accepted"):
                request = self._accept(request, self.ctx.data.roles[0].name, "system", root)
        return request

    # -- deciding ---------------------------------------------------------------------------------------
    def _decidable(self, account: Account, request_id: str) -> ConnectionRequest:
        request = self.lookup(account, request_id)
        if not account.manages_domain(request.domain):
            raise forbidden("only a domain admin of the request's domain accepts or rejects it")
        return request

    @staticmethod
    def _undecided(request: ConnectionRequest) -> None:
        if request.status != "pending":
            raise conflict(f"the connection request is already {request.status} ({STATUS_LABELS[request.status]}); "
                           "a request is decided once")

    def accept(self, account: Account, request_id: str, role: str, root: str) -> ConnectionRequest:
        request = self._decidable(account, request_id)
        if self.ctx.data.role(role) is None:
            raise invalid(f"role must be one of: {', '.join(r.name for r in self.ctx.data.roles)}")
        self._undecided(request)
        with self.ctx.store.transaction():
            return self._accept(request, role, account.username, root)

    def _accept(self, request: ConnectionRequest, role: str, by: str, root: str) -> ConnectionRequest:
        """Inside the caller's transaction; drops the registry cache when done, committed or not."""
        client_id = str(uuid.uuid4())
        record = InstanceRecord(client_id, request.application, request.domain, role, "active", request.name,
                                request.jwks_uri, None, request.redirect_uris, request.launch_url)
        try:
            self._decide(request, "accepted", by, role=role, client_id=client_id)
            self.registry.register(record, by=by, reason=f"Connectieaanvraag {request.id} geaccepteerd",
                                   origin=CONNECTION_REQUEST, request_id=request.id)
            if not self.ctx.fault("accept-without-device"):
                self.devices.create(record)
            if not self.ctx.fault("no-acceptance-email"):
                subject, body = mails.request_accepted(self._facts(request, root), client_id, role, root)
                self.outbox.send(self.accounts.application_admin_emails(request.application), subject, body)
        finally:
            self.registry.invalidate()
        return self._reread(request.id)

    def reject(self, account: Account, request_id: str, reason: str | None, root: str) -> ConnectionRequest:
        request = self._decidable(account, request_id)
        text = required_text(reason, "reason", MAX_REASON)
        self._undecided(request)
        with self.ctx.store.transaction():
            self._decide(request, "rejected", account.username, reason=text)
            if self.ctx.fault("reject-creates-instance"):
                self._accept_anyway(request, account.username)
            subject, body = mails.request_rejected(self._facts(request, root), text)
            self.outbox.send(self.accounts.application_admin_emails(request.application), subject, body)
        return self._reread(request.id)

    def _accept_anyway(self, request: ConnectionRequest, by: str) -> None:
        """The `reject-creates-instance` defect: the rejected application is registered all the same."""
        record = InstanceRecord(str(uuid.uuid4()), request.application, request.domain, self.ctx.data.roles[0].name,
                                "active", request.name, request.jwks_uri, None, request.redirect_uris,
                                request.launch_url)
        try:
            self.registry.register(record, by=by, reason="", origin=CONNECTION_REQUEST, request_id=request.id)
            self.devices.create(record)
        finally:
            self.registry.invalidate()

    def _decide(self, request: ConnectionRequest, status: str, by: str, *, role: str | None = None,
                client_id: str | None = None, reason: str | None = None) -> None:
        cursor = self.ctx.store.execute(
            "UPDATE admin_connection_requests SET status = ?, decided_by = ?, decided_at = ?, role = ?, "
            "client_id = ?, reason = ? WHERE id = ? AND status = 'pending'",
            (status, by, self.ctx.clock.now(), role, client_id, reason, request.id))
        if cursor.rowcount != 1:
            raise conflict("the connection request was decided meanwhile; a request is decided once")

    def _reread(self, request_id: str) -> ConnectionRequest:
        request = self.get(request_id)
        assert request is not None
        return request

    def _facts(self, request: ConnectionRequest, root: str) -> mails.RequestFacts:
        domain = self.ctx.data.domain(request.domain)
        app = self.ctx.data.application(request.application)
        return mails.RequestFacts(
            request_id=request.id, domain=request.domain, domain_title=domain.title if domain else "",
            environment=domain.environment if domain else "", application=request.application,
            application_name=app.name if app else request.application, instance_name=request.name,
            jwks_uri=request.jwks_uri, redirect_uris=request.redirect_uris, launch_url=request.launch_url,
            link=request_page(root, request.id))


def request_page(root: str, request_id: str) -> str:
    return f"{urls.management_url(root)}connection-requests/{request_id}"


def _request(row: Any) -> ConnectionRequest:
    return ConnectionRequest(row["id"], row["application"], row["domain"], row["name"], row["jwks_uri"],
                             tuple(json.loads(row["redirect_uris"])), row["launch_url"], row["status"],
                             row["filed_by"], row["filed_at"], row["decided_by"], row["decided_at"], row["role"],
                             row["client_id"], row["reason"])

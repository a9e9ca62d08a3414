"""The JSON API of the domain admin under `/kt2/mgmt/api` (simulators/kt2/README.md, "Domain admin").

Thin: authenticate the Bearer session, parse and type-check the body (pydantic, strict), call the service,
serialise with `views`.  Refusals are `{"error": ..., "detail": ...}` with the status the service chose.
The API authenticates with `Authorization: Bearer <session>` only, never with the web page's cookie, so a
cross-site form cannot drive it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from simulators.kt2.admin.accounts import Account
from simulators.kt2.admin.connections import REQUEST_STATUSES, Filing
from simulators.kt2.admin.errors import forbidden, invalid, not_found, unauthorized
from simulators.kt2.admin.http import (
    Body,
    Dispatch,
    json_body,
    json_error,
    json_response,
    parse_model,
    query_int,
)
from simulators.kt2.admin.views import Views, api_url
from simulators.kt2.data import Domain

if TYPE_CHECKING:
    from simulators.kt2.admin.service import DomainAdmin

Text = Annotated[str, Field(max_length=4096)]
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class LoginBody(Body):
    username: Annotated[str, Field(min_length=1, max_length=256)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class FilingBody(Body):
    application: Text
    domain: Text
    jwks_uri: Text
    name: Text | None = None
    redirect_uris: list[Text] = Field(default_factory=list, max_length=100)
    launch_url: Text | None = None


class AcceptBody(Body):
    role: Text


class RejectBody(Body):
    reason: Text


class StatusBody(Body):
    status: Text
    reason: Text | None = None


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise unauthorized("log in first (POST /api/login) and send Authorization: Bearer <session>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("send the session as Authorization: Bearer <session>")
    return token.strip()


class Api:
    def __init__(self, admin: DomainAdmin) -> None:
        self.admin = admin
        self.ctx = admin.ctx
        self.views = Views(admin)

    def caller(self, request: Request) -> Account:
        return self.admin.sessions.account(bearer_token(request))

    # -- sessions ---------------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        body = parse_model(LoginBody, await json_body(request))
        account = self.admin.accounts.authenticate(body.username, body.password)
        token = self.admin.sessions.open(account)
        return json_response({"session": token, "token_type": "Bearer", "expires_in": self.admin.sessions.lifetime,
                              "account": account.to_json()})

    async def logout(self, request: Request) -> Response:
        token = bearer_token(request)
        self.admin.sessions.account(token)
        self.admin.sessions.close(token)
        return Response(status_code=204)

    async def me(self, request: Request) -> Response:
        return json_response(self.caller(request).to_json())

    async def unblock(self, request: Request) -> Response:
        account = self.caller(request)
        return json_response(self.admin.accounts.unblock(account, request.path_params["username"]))

    # -- domains and applications -----------------------------------------------------------------------
    def _domain(self, account: Account, name: str) -> Domain:
        domain = self.ctx.data.domain(name)
        if domain is None:
            raise not_found(f"no domain {name!r}")
        if account.is_domain_admin and not account.manages_domain(name):
            raise forbidden(f"you are not a domain admin of {name!r}")
        return domain

    async def domains(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        shown = [d for d in self.ctx.data.domains if account.manages_domain(d.name) or account.is_application_admin]
        return json_response({"domains": [self.views.domain(d, account, root) for d in shown]})

    async def domain(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        return json_response(self.views.domain(self._domain(account, request.path_params["domain"]), account, root))

    async def domain_instances(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        domain = self._domain(account, request.path_params["domain"])
        found = self.admin.registry.visible(account, domain=domain.name)
        return json_response({"domain": domain.name, "instances": [self.views.instance(r, root) for r in found]})

    async def domain_requests(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        domain = self._domain(account, request.path_params["domain"])
        found = self.admin.connections.visible(account, domain=domain.name, status=self._status_filter(request))
        return json_response({"domain": domain.name,
                              "connection_requests": [self.views.request(r, root) for r in found]})

    async def applications(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        shown = [a for a in self.ctx.data.applications if account.is_domain_admin or account.manages_application(a.id)]
        return json_response({"applications": [self.views.application(a, account, root) for a in shown]})

    async def application(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        app = self.ctx.data.application(request.path_params["application"])
        if app is None:
            raise not_found(f"no application {request.path_params['application']!r}")
        if account.is_application_admin and not account.manages_application(app.id):
            raise forbidden(f"you do not administer application {app.id!r}")
        data = self.views.application(app, account, root)
        data["instances"] = [self.views.instance(r, root) for r in self.admin.registry.visible(account,
                                                                                              application=app.id)]
        data["connection_requests"] = [self.views.request(r, root)
                                       for r in self.admin.connections.visible(account, application=app.id)]
        return json_response(data)

    async def roles(self, request: Request) -> Response:
        self.caller(request)
        return json_response({"roles": [{"name": r.name, "description": r.description} for r in self.ctx.data.roles]})

    # -- instances --------------------------------------------------------------------------------------
    async def instances(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        found = self.admin.registry.visible(account)
        return json_response({"instances": [self.views.instance(r, root) for r in found]})

    async def instance(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        record = self.admin.registry.lookup(account, request.path_params["client_id"])
        return json_response(self.views.instance(record, root, details=True))

    async def instance_status(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        body = parse_model(StatusBody, await json_body(request))
        record = self.admin.registry.change_status(account, request.path_params["client_id"], body.status,
                                                   body.reason)
        return json_response(self.views.instance(record, root, details=True))

    # -- connection requests ----------------------------------------------------------------------------
    @staticmethod
    def _status_filter(request: Request) -> str | None:
        status = request.query_params.get("status")
        if status is not None and status not in REQUEST_STATUSES:
            raise invalid(f"query parameter status must be one of {', '.join(REQUEST_STATUSES)}")
        return status

    async def requests(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        found = self.admin.connections.visible(account, status=self._status_filter(request),
                                               domain=request.query_params.get("domain"),
                                               application=request.query_params.get("application"))
        return json_response({"connection_requests": [self.views.request(r, root) for r in found]})

    async def file_request(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        body = parse_model(FilingBody, await json_body(request))
        filed = self.admin.connections.file(account, Filing(body.application, body.domain, body.jwks_uri, body.name,
                                                            tuple(body.redirect_uris), body.launch_url), root)
        return json_response(self.views.request(filed, root), 201,
                             {"Location": api_url(root, "connection-requests", filed.id)})

    async def request_detail(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        return json_response(self.views.request(self.admin.connections.lookup(account, request.path_params["id"]),
                                                root))

    async def accept(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        body = parse_model(AcceptBody, await json_body(request))
        decided = self.admin.connections.accept(account, request.path_params["id"], body.role, root)
        data = self.views.request(decided, root)
        record = self.admin.registry.get(decided.client_id or "")
        data["instance"] = None if record is None else self.views.instance(record, root)
        return json_response(data)

    async def reject(self, request: Request) -> Response:
        account, root = self.caller(request), self.admin.root(request)
        body = parse_model(RejectBody, await json_body(request))
        return json_response(self.views.request(self.admin.connections.reject(account, request.path_params["id"],
                                                                              body.reason, root), root))

    # -- outbox -----------------------------------------------------------------------------------------
    async def outbox(self, request: Request) -> Response:
        account = self.caller(request)
        limit = query_int(request, "limit", 100, 1, 1000)
        mails = self.admin.outbox.addressed_to(account.email, limit)
        return json_response({"address": account.email, "total": self.admin.outbox.count_to(account.email),
                              "mails": [self.admin.outbox.to_json(m) for m in mails]})

    async def unknown(self, request: Request) -> Response:
        raise not_found(f"no API endpoint {request.method} {request.url.path}")


def api_routes(admin: DomainAdmin) -> list[BaseRoute]:
    api = Api(admin)

    def route(path: str, **handlers) -> Route:
        return Route(path, Dispatch(json_error, **handlers))

    unknown = {m: api.unknown for m in ALL_METHODS}
    return [
        route("/api/login", POST=api.login),
        route("/api/logout", POST=api.logout),
        route("/api/me", GET=api.me),
        route("/api/accounts/{username}/unblock", POST=api.unblock),
        route("/api/domains", GET=api.domains),
        route("/api/domains/{domain}", GET=api.domain),
        route("/api/domains/{domain}/instances", GET=api.domain_instances),
        route("/api/domains/{domain}/connection-requests", GET=api.domain_requests),
        route("/api/applications", GET=api.applications),
        route("/api/applications/{application}", GET=api.application),
        route("/api/roles", GET=api.roles),
        route("/api/instances", GET=api.instances),
        route("/api/instances/{client_id}", GET=api.instance),
        route("/api/instances/{client_id}/status", POST=api.instance_status),
        route("/api/connection-requests", GET=api.requests, POST=api.file_request),
        route("/api/connection-requests/{id}", GET=api.request_detail),
        route("/api/connection-requests/{id}/accept", POST=api.accept),
        route("/api/connection-requests/{id}/reject", POST=api.reject),
        route("/api/outbox", GET=api.outbox),
        route("/api", **unknown),
        route("/api/{rest:path}", **unknown),
    ]


"""HTTP endpoints of each domain's authorisation server and its SMART discovery document.

Every refusal is OAuth error JSON (`error`, `error_description`, RFC 6749 §5.2) with `Cache-Control:
no-store`; nothing escapes as a 500.  The token and introspection endpoints take form posts only.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from simulators.common.bodies import read_limited
from simulators.kt2 import urls
from simulators.kt2.auth.introspection import Introspection
from simulators.kt2.auth.keys import DomainKeys
from simulators.kt2.auth.launch import Launches
from simulators.kt2.auth.tokens import TokenService
from simulators.kt2.context import Kt2Context
from simulators.kt2.errors import OAuthError
from simulators.kt2.http import media_params
from simulators.kt2.trace import trace_of

log = logging.getLogger("ktbench.kt2.auth")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 65_536
CAPABILITIES = ["launch-ehr", "authorize-post", "client-confidential-asymmetric", "sso-openid-connect",
                "context-ehr-hti", "permission-v2"]


def smart_configuration(ctx: Kt2Context, root: str, domain: str) -> dict:
    """TOP-KT-016: every key the table asks for, no registration or revocation endpoint."""
    return {
        "issuer": urls.oauth_base(root, domain),
        "jwks_uri": urls.jwks_url(root, domain),
        "authorization_endpoint": urls.authorize_url(root, domain),
        "token_endpoint": urls.token_url(root, domain),
        "introspection_endpoint": urls.introspection_url(root, domain),
        "management_endpoint": urls.management_url(root),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ctx.settings.signing_algorithms),
        "scopes_supported": ["openid", "launch", "fhirUser", "system/*.cruds", "system/*.cruds?resource-origin="],
        "response_types_supported": ["code"],
        "capabilities": CAPABILITIES,
        "code_challenge_methods_supported": ["S256"],
    }


def oauth_error(error: OAuthError) -> Response:
    return JSONResponse(error.to_json(), status_code=error.status, headers={**NO_STORE, **error.headers})


class AuthEndpoints:
    def __init__(self, ctx: Kt2Context, keys: DomainKeys, tokens: TokenService, launches: Launches,
                 introspection: Introspection) -> None:
        self.ctx = ctx
        self.keys = keys
        self.tokens = tokens
        self.launches = launches
        self.introspection = introspection
        self.domains = {d.name for d in ctx.data.domains}

    def routes(self) -> list[Route]:
        api = urls.API + "/{domain}"
        every = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]   # wrong methods get OAuth JSON, not HTML
        return [
            Route(api + "/fhir/r4/.well-known/smart-configuration", self._wrap(self.discovery, "GET"), methods=every),
            Route(api + "/oauth2/jwks", self._wrap(self.jwks, "GET"), methods=every),
            Route(api + "/oauth2/token", self._wrap(self.token, "POST", step="token"), methods=every),
            Route(api + "/oauth2/authorize", self._wrap(self.authorize, "GET", "POST", step="authorize"),
                  methods=every),
            Route(api + "/oauth2/introspect", self._wrap(self.introspect, "POST", step="introspect"), methods=every),
            Route(api + "/oauth2/idp-callback", self._wrap(self.callback, "GET", step="idp login"), methods=every),
            Route(api + "/oauth2/{rest:path}", self._wrap(self.unknown, "GET", "POST"), methods=every),
        ]

    def _wrap(self, handler, *allowed: str, step: str | None = None):
        """`step`: the user-authentication step the endpoint is (token, authorize, ...): a refusal that the
        services did not write an AuditEvent for yet (a missing parameter, an unknown grant type or client)
        gets one here, so every request of that step is in the log."""
        allowed_set = {*allowed, "HEAD"} if "GET" in allowed else set(allowed)

        async def endpoint(request: Request) -> Response:
            domain = request.path_params["domain"]
            try:
                if domain not in self.domains:
                    raise OAuthError(404, "invalid_request", f"unknown domain {domain[:64]!r}")
                if request.method not in allowed_set:
                    raise OAuthError(405, "invalid_request", f"{request.method} is not allowed here (use "
                                                             f"{' or '.join(allowed)})", {"Allow": ", ".join(allowed)})
                root = self.ctx.root(str(request.base_url))
                try:
                    return await handler(request, domain, root)
                except OAuthError as error:
                    if step is not None and not error.audited:
                        self.launches.events.record(domain, root, trace_of(request), step, False,
                                                    f"{error.error}: {error.description}",
                                                    client_id=self._known_client(domain, request))
                    raise
            except OAuthError as error:
                return oauth_error(error)
            except ClientDisconnect:  # the client left while sending its form: nothing to answer
                return oauth_error(OAuthError(400, "invalid_request", "the request was not received completely"))
            except Exception:  # a bug of ours: logged, answered without internals
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return oauth_error(OAuthError(500, "server_error", "internal server error"))
        return endpoint

    def _known_client(self, domain: str, request: Request) -> str | None:
        """The client_id a refused authorize request names, when it is an instance of the domain (for the
        AuditEvent's agent; anything else stays out of the log)."""
        client_id = request.query_params.get("client_id")
        if client_id and self.ctx.registry is not None and self.ctx.registry.instance(domain, client_id):
            return client_id
        return None

    async def unknown(self, request: Request, domain: str, root: str) -> Response:
        raise OAuthError(404, "invalid_request", f"no OAuth endpoint at {request.url.path[:200]}")

    async def discovery(self, request: Request, domain: str, root: str) -> Response:
        return JSONResponse(smart_configuration(self.ctx, root, domain))

    async def jwks(self, request: Request, domain: str, root: str) -> Response:
        return JSONResponse(self.keys.jwks(domain, include_private=self.ctx.fault("jwks-private-parts")),
                            headers={"Cache-Control": "public, max-age=30"})

    async def _form(self, request: Request) -> dict[str, str]:
        kind, _ = media_params(request.headers.get("content-type", ""))
        if kind != "application/x-www-form-urlencoded":
            raise OAuthError(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        raw = await read_limited(request, MAX_FORM_BYTES, lambda: OAuthError(
            400, "invalid_request", f"the form is larger than {MAX_FORM_BYTES} bytes"))
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise OAuthError(400, "invalid_request", "the form is not valid UTF-8 form encoding") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            if name in form and name in ("grant_type", "client_assertion", "client_assertion_type", "code", "token"):
                raise OAuthError(400, "invalid_request", f"the parameter {name} is given more than once")
            form[name] = value
        return form

    async def token(self, request: Request, domain: str, root: str) -> Response:
        form = await self._form(request)
        grant = form.get("grant_type")
        trace = trace_of(request)
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        if grant == "client_credentials":
            body = await self.tokens.client_credentials(domain, root, form, trace)
        elif grant == "authorization_code":
            body = await self.launches.exchange(domain, root, form, trace)
        else:
            raise OAuthError(400, "unsupported_grant_type",
                             "grant_type must be client_credentials or authorization_code")
        return JSONResponse(body, headers=NO_STORE)

    async def authorize(self, request: Request, domain: str, root: str) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await self._form(request))
        redirect = await self.launches.authorize(domain, root, params, trace_of(request))
        return RedirectResponse(redirect.location, status_code=302, headers=NO_STORE)

    async def callback(self, request: Request, domain: str, root: str) -> Response:
        redirect = self.launches.callback(domain, root, request.query_params.get("request", ""),
                                          request.query_params.get("code", ""), trace_of(request))
        return RedirectResponse(redirect.location, status_code=302, headers=NO_STORE)

    async def introspect(self, request: Request, domain: str, root: str) -> Response:
        body = await self.introspection.introspect(domain, root, await self._form(request), trace_of(request))
        return JSONResponse(body, headers=NO_STORE)

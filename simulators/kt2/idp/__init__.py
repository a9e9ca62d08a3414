"""Simulated identity providers: the users of the data file, logged in with one request, no browser needed.

The real voorziening sends the user to an OIDC identity provider (DigiD, an employer's IdP, Keycloak) and
compares the identity it returns with the FHIR resource the HTI `sub` names.  Here an IdP is a page that
lists its users (`.../idp/{idp}/authorize?request=<id>`) and a login URL
(`.../idp/{idp}/login?request=<id>&username=<user>`, GET or POST) that redirects back to the authorisation
server's callback.  Mistakes (unknown session, user or IdP) are a plain 400 HTML page.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl, urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from simulators.common.bodies import read_limited
from simulators.kt2 import urls
from simulators.kt2.auth.sessions import Sessions
from simulators.kt2.context import Kt2Context

MAX_FORM_BYTES = 65_536


class _TooLarge(Exception):
    """A login form over MAX_FORM_BYTES (read_limited stops reading as soon as it is)."""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=nl><head><meta charset=utf-8><title>{escape(title)}</title>"
                        f"</head><body><h1>{escape(title)}</h1>{body}</body></html>", status_code=status,
                        headers={"Cache-Control": "no-store"})


class IdentityProviders:
    def __init__(self, ctx: Kt2Context, sessions: Sessions) -> None:
        self.ctx = ctx
        self.sessions = sessions

    def routes(self) -> list[Route]:
        base = urls.API + "/{domain}/idp/{idp}"
        every = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return [Route(base + "/authorize", self._only(self.authorize, "GET"), methods=every),
                Route(base + "/login", self._only(self.login, "GET", "POST"), methods=every),
                Route(base + "/{rest:path}", self._only(self._unknown, "GET", "POST"), methods=every)]

    @staticmethod
    def _only(handler, *allowed: str):
        async def endpoint(request: Request) -> Response:
            if request.method not in (*allowed, "HEAD"):
                return _page("Niet toegestaan", f"<p>{escape(request.method)} is not allowed here.</p>", 405)
            return await handler(request)
        return endpoint

    async def _unknown(self, request: Request) -> Response:
        return _page("Onbekende pagina", "<p>No such page at this identity provider.</p>", 404)

    def _lookup(self, request: Request, params: dict[str, str]):
        domain, idp_id = request.path_params["domain"], request.path_params["idp"]
        idp = next((i for i in self.ctx.data.identity_providers if i.id == idp_id and i.domain == domain), None)
        if idp is None:
            return None, None, _page("Onbekende identity provider", f"<p>No identity provider {escape(idp_id)} in "
                                                                     f"domain {escape(domain)}.</p>", 400)
        session = self.sessions.get(params.get("request", ""))
        if session is None or session.domain != domain or session.idp != idp.id:
            return None, None, _page("Onbekende aanvraag", "<p>Unknown or expired login request.</p>", 400)
        return idp, session, None

    async def authorize(self, request: Request) -> Response:
        idp, session, problem = self._lookup(request, dict(request.query_params))
        if problem:
            return problem
        users = [u for u in self.ctx.data.users if u.idp == idp.id]
        items = "".join(f'<li><a href="login?{escape(urlencode({"request": session.id, "username": u.username}))}">'
                        f"{escape(u.name or u.username)}</a> ({escape(u.username)})</li>" for u in users)
        return _page(idp.name or idp.id, f"<p>Kies een gebruiker om in te loggen.</p><ul>{items}</ul>")

    async def login(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            try:
                raw = await read_limited(request, MAX_FORM_BYTES, _TooLarge)
            except _TooLarge:
                return _page("Te groot", "<p>The form is too large.</p>", 413)
            except ClientDisconnect:
                return _page("Onvolledig", "<p>The form was not received completely.</p>", 400)
            try:
                params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except (UnicodeDecodeError, ValueError):
                return _page("Ongeldig formulier", "<p>The form is not valid.</p>", 400)
        idp, session, problem = self._lookup(request, params)
        if problem:
            return problem
        username = params.get("username", "")
        user = next((u for u in self.ctx.data.users if u.idp == idp.id and u.username == username), None)
        if user is None:
            return _page("Onbekende gebruiker", f"<p>{escape(idp.name or idp.id)} does not know user "
                                                f"{escape(username[:64])!s}.</p>", 400)
        code = self.sessions.logged_in(session.id, user.username, user.identifier)
        root = self.ctx.root(str(request.base_url))
        target = urls.oauth_base(root, session.domain) + "/idp-callback?" + urlencode({"request": session.id,
                                                                                         "code": code})
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})

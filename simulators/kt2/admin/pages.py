"""The web page for people under `/kt2/mgmt/` (seed 001 ch. 3-5): log-in, start screen per role, domain and
application details with their tabs, the connection-request and instance screens, and the outbox.

Cookie sessions (HttpOnly, SameSite=Strict, Secure when the root is https, Path = the management root) over
the same `Sessions` as the API.  Every POST form carries a CSRF token: an HMAC of the session token for the
logged-in forms, and for the log-in form a double-submit token bound to a short-lived pre-login cookie.  After
a successful POST the browser is redirected (303) to the result with a fixed notice code (`?melding=`), so no
submitted text is ever reflected from the URL.  A refused POST shows its form page again with the reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from simulators.kt2 import urls
from simulators.kt2.admin import instances, templates
from simulators.kt2.admin.accounts import Account
from simulators.kt2.admin.connections import Filing
from simulators.kt2.admin.errors import AdminError, bad_request, forbidden, not_found
from simulators.kt2.admin.http import Dispatch, form_body
from simulators.kt2.admin.sessions import Sessions, well_formed
from simulators.kt2.admin.templates import Markup, Page
from simulators.kt2.admin.views import Views, page_url

if TYPE_CHECKING:
    from simulators.kt2.admin.service import DomainAdmin

SESSION_COOKIE = "kt2mgmt_session"
LOGIN_COOKIE = "kt2mgmt_login"
LOGIN_COOKIE_SECONDS = 3600
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
NOTICES = {"aangevraagd": "De connectieaanvraag is ingediend; de domeinbeheerders zijn per e-mail geïnformeerd.",
           "geaccepteerd": "De connectieaanvraag is geaccepteerd; de applicatieinstantie is Actief.",
           "geweigerd": "De connectieaanvraag is geweigerd.",
           "status": "De status van de applicatieinstantie is gewijzigd.",
           "afgemeld": "U bent afgemeld."}
Logged = Callable[[Request, Account, str], Awaitable[Response]]


def _html(markup: Markup, status: int = 200) -> Response:
    return Response(str(markup).encode("utf-8"), status_code=status, media_type="text/html",
                    headers={"Content-Security-Policy": CSP})


class Pages:
    def __init__(self, admin: DomainAdmin) -> None:
        self.admin = admin
        self.ctx = admin.ctx
        self.views = Views(admin)

    # -- plumbing ---------------------------------------------------------------------------------------
    def page(self, request: Request, account: Account | None = None, token: str = "") -> Page:
        return Page(self.admin.root(request), account.to_json() if account else None,
                    Sessions.csrf_token(token) if token else "")

    def notice(self, request: Request) -> str | None:
        return NOTICES.get(request.query_params.get("melding", ""))

    def _cookie_options(self, request: Request) -> dict:
        root = self.admin.root(request)
        return {"path": urlsplit(urls.management_url(root)).path.rstrip("/") or "/", "httponly": True,
                "samesite": "strict", "secure": root.startswith("https:")}

    def redirect(self, request: Request, *parts: str, notice: str | None = None, query: str = "") -> Response:
        target = page_url(self.admin.root(request), *parts)
        params = "&".join(p for p in (query, f"melding={notice}" if notice else "") if p)
        return RedirectResponse(target + (f"?{params}" if params else ""), status_code=303)

    def render_error(self, request: Request, error: AdminError) -> Response:
        response = _html(templates.error_page(self.page(request), error.status, error.detail), error.status)
        error.headers.pop("WWW-Authenticate", None)  # a browser would show its own log-in box
        return response

    def logged_in(self, handler: Logged) -> Callable[[Request], Awaitable[Response]]:
        """Run `handler` with the session's account; without a valid session go to the log-in page."""
        async def wrapped(request: Request) -> Response:
            token = request.cookies.get(SESSION_COOKIE, "")
            try:
                account = self.admin.sessions.account(token)
            except AdminError:
                response = self.redirect(request, "login")
                if token:
                    response.delete_cookie(SESSION_COOKIE, **self._cookie_options(request))
                return response
            return await handler(request, account, token)
        return wrapped

    async def form(self, request: Request, token: str) -> dict[str, list[str]]:
        """The posted form, after checking its CSRF token against the session."""
        form = await form_body(request)
        submitted = form.get("csrf", [""])
        if len(submitted) != 1 or not Sessions.csrf_ok(token, submitted[0]):
            raise forbidden("the form has expired or was not sent from this page (CSRF check); reload the page")
        return form

    @staticmethod
    def field(form: dict[str, list[str]], name: str) -> str:
        values = form.get(name, [])
        if len(values) > 1:
            raise bad_request("invalid_form", f"the form field {name} was sent more than once")
        return values[0] if values else ""

    # -- log-in -----------------------------------------------------------------------------------------
    def _login_form(self, request: Request, *, status: int = 200, username: str = "", error: str | None = None,
                    flash: str | None = None) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        fresh = not well_formed(nonce)
        if fresh:
            nonce = secrets.token_urlsafe(24)
        response = _html(templates.login_page(self.page(request), Sessions.csrf_token(nonce), username=username,
                                              error=error, flash=flash), status)
        if fresh:
            response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_COOKIE_SECONDS, **self._cookie_options(request))
        return response

    async def login_form(self, request: Request) -> Response:
        return self._login_form(request, flash=self.notice(request))

    async def login(self, request: Request) -> Response:
        form = await form_body(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        submitted = form.get("csrf", [""])
        if not well_formed(nonce) or len(submitted) != 1 or not Sessions.csrf_ok(nonce, submitted[0]):
            return self._login_form(request, status=403, error="Het aanmeldformulier is verlopen. Probeer het "
                                                                "opnieuw (cookies moeten aan staan).")
        username = self.field(form, "username").strip()
        password = self.field(form, "password")
        if not username or not password or len(username) > 256 or len(password) > 1024:
            return self._login_form(request, status=422, username=username[:256],
                                    error="Vul uw gebruikersnaam en wachtwoord in.")
        try:
            account = self.admin.accounts.authenticate(username, password)
        except AdminError as error:
            message = ("Uw account is geblokkeerd na te veel onjuiste wachtwoorden. Een domeinbeheerder kan het "
                       "deblokkeren." if error.status == 423 else "Onjuiste gebruikersnaam of wachtwoord.")
            return self._login_form(request, status=error.status, username=username, error=message)
        token = self.admin.sessions.open(account)
        response = self.redirect(request)
        response.set_cookie(SESSION_COOKIE, token, max_age=self.admin.sessions.lifetime,
                            **self._cookie_options(request))
        response.delete_cookie(LOGIN_COOKIE, **self._cookie_options(request))
        return response

    async def logout(self, request: Request, account: Account, token: str) -> Response:
        await self.form(request, token)
        self.admin.sessions.close(token)
        response = self.redirect(request, "login", notice="afgemeld")
        response.delete_cookie(SESSION_COOKIE, **self._cookie_options(request))
        return response

    # -- screens ----------------------------------------------------------------------------------------
    async def start(self, request: Request, account: Account, token: str) -> Response:
        root = self.admin.root(request)
        domains = [self.views.domain(d, account, root) for d in self.ctx.data.domains if account.manages_domain(d.name)]
        apps = [self.views.application(a, account, root) for a in self.ctx.data.applications
                if account.manages_application(a.id)]
        return _html(templates.start_page(self.page(request, account, token), domains, apps,
                                          flash=self.notice(request)))

    @staticmethod
    def _tab(request: Request, choices: tuple[tuple[str, str], ...]) -> str:
        tab = request.query_params.get("tab", choices[0][0])
        return tab if tab in dict(choices) else choices[0][0]

    async def domain(self, request: Request, account: Account, token: str) -> Response:
        name = request.path_params["domain"]
        domain = self.ctx.data.domain(name)
        if domain is None:
            raise not_found(f"no domain {name!r}")
        if not account.manages_domain(name):
            raise forbidden(f"you are not a domain admin of {name!r}")
        root = self.admin.root(request)
        found = [self.views.instance(r, root) for r in self.admin.registry.visible(account, domain=name)]
        reqs = [self.views.request(r, root) for r in self.admin.connections.visible(account, domain=name)]
        return _html(templates.domain_page(self.page(request, account, token), self.views.domain(domain, account, root),
                                           self._tab(request, templates.DOMAIN_TABS), found, reqs,
                                           flash=self.notice(request)))

    def _application_screen(self, request: Request, account: Account, token: str, app_id: str, *, tab: str,
                            status: int = 200, form: dict[str, str] | None = None,
                            error: str | None = None) -> Response:
        app = self.ctx.data.application(app_id)
        if app is None:
            raise not_found(f"no application {app_id!r}")
        if not account.manages_application(app.id):
            raise forbidden(f"you do not administer application {app.id!r}")
        root = self.admin.root(request)
        found = [self.views.instance(r, root) for r in self.admin.registry.visible(account, application=app.id)]
        reqs = [self.views.request(r, root) for r in self.admin.connections.visible(account, application=app.id)]
        domains = [self.views.domain(d, account, root) for d in self.ctx.data.domains]
        return _html(templates.application_page(self.page(request, account, token),
                                                self.views.application(app, account, root), tab, found, reqs, domains,
                                                form=form, flash=self.notice(request), error=error), status)

    async def application(self, request: Request, account: Account, token: str) -> Response:
        return self._application_screen(request, account, token, request.path_params["application"],
                                        tab=self._tab(request, templates.APPLICATION_TABS))

    async def file_request(self, request: Request, account: Account, token: str) -> Response:
        form = await self.form(request, token)
        values = {k: self.field(form, k) for k in ("application", "domain", "name", "jwks_uri", "redirect_uris",
                                                     "launch_url")}
        filing = Filing(values["application"], values["domain"], values["jwks_uri"], values["name"] or None,
                        tuple(u.strip() for u in values["redirect_uris"].splitlines() if u.strip()),
                        values["launch_url"] or None)
        try:
            filed = self.admin.connections.file(account, filing, self.admin.root(request))
        except AdminError as error:
            if error.status != 422:
                raise
            return self._application_screen(request, account, token, values["application"], tab="new",
                                            status=error.status, form=values, error=error.detail)
        return self.redirect(request, "connection-requests", filed.id, notice="aangevraagd")

    def _request_screen(self, request: Request, account: Account, token: str, *, status: int = 200,
                        error: str | None = None) -> Response:
        found = self.admin.connections.lookup(account, request.path_params["id"])
        return _html(templates.request_page(self.page(request, account, token),
                                            self.views.request(found, self.admin.root(request)),
                                            can_decide=account.manages_domain(found.domain),
                                            roles=[r.name for r in self.ctx.data.roles], flash=self.notice(request),
                                            error=error), status)

    async def request_detail(self, request: Request, account: Account, token: str) -> Response:
        return self._request_screen(request, account, token)

    async def _decide(self, request: Request, account: Account, token: str, field: str, notice: str,
                      decide: Callable[[str], object]) -> Response:
        form = await self.form(request, token)
        value = self.field(form, field)
        try:
            decide(value)
        except AdminError as error:
            if error.status not in (409, 422, 502, 503):
                raise
            return self._request_screen(request, account, token, status=error.status, error=error.detail)
        return self.redirect(request, "connection-requests", request.path_params["id"], notice=notice)

    async def accept(self, request: Request, account: Account, token: str) -> Response:
        root = self.admin.root(request)
        return await self._decide(request, account, token, "role", "geaccepteerd", lambda role: self.admin.connections
                                  .accept(account, request.path_params["id"], role, root))

    async def reject(self, request: Request, account: Account, token: str) -> Response:
        root = self.admin.root(request)
        return await self._decide(request, account, token, "reason", "geweigerd", lambda reason: self.admin.connections
                                  .reject(account, request.path_params["id"], reason, root))

    def _instance_screen(self, request: Request, account: Account, token: str, *, status: int = 200,
                         error: str | None = None) -> Response:
        record = self.admin.registry.lookup(account, request.path_params["client_id"])
        return _html(templates.instance_page(self.page(request, account, token),
                                             self.views.instance(record, self.admin.root(request), details=True),
                                             can_change=account.manages_domain(record.domain),
                                             labels=instances.STATUS_LABELS, flash=self.notice(request),
                                             error=error), status)

    async def instance(self, request: Request, account: Account, token: str) -> Response:
        return self._instance_screen(request, account, token)

    async def instance_status(self, request: Request, account: Account, token: str) -> Response:
        form = await self.form(request, token)
        status, reason = self.field(form, "status"), self.field(form, "reason")
        try:
            self.admin.registry.change_status(account, request.path_params["client_id"], status, reason)
        except AdminError as error:
            if error.status not in (409, 422, 502, 503):
                raise
            return self._instance_screen(request, account, token, status=error.status, error=error.detail)
        return self.redirect(request, "instances", request.path_params["client_id"], notice="status")

    async def outbox(self, request: Request, account: Account, token: str) -> Response:
        mails = [self.admin.outbox.to_json(m) for m in self.admin.outbox.addressed_to(account.email, 100)]
        return _html(templates.outbox_page(self.page(request, account, token), account.email, mails))

    async def stylesheet(self, request: Request) -> Response:
        return Response(templates.CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})

    async def legacy_entry(self, request: Request) -> Response:
        """The real beheerapplicatie's address (`/kt2/mgmt/csp/index.csp`, seed 001 §3.1) leads to the start."""
        return self.redirect(request)

    async def unknown(self, request: Request) -> Response:
        raise not_found("there is no such page")


def page_routes(admin: DomainAdmin) -> list[BaseRoute]:
    pages = Pages(admin)
    logged = pages.logged_in

    def route(path: str, **handlers) -> Route:
        return Route(path, Dispatch(pages.render_error, **handlers))

    unknown = {m: pages.unknown for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
    return [
        route("/", GET=logged(pages.start)),
        route("/login", GET=pages.login_form, POST=pages.login),
        route("/logout", POST=logged(pages.logout)),
        route("/csp/index.csp", GET=pages.legacy_entry),
        route("/static/admin.css", GET=pages.stylesheet),
        route("/domains/{domain}", GET=logged(pages.domain)),
        route("/applications/{application}", GET=logged(pages.application)),
        route("/connection-requests", POST=logged(pages.file_request)),
        route("/connection-requests/{id}", GET=logged(pages.request_detail)),
        route("/connection-requests/{id}/accept", POST=logged(pages.accept)),
        route("/connection-requests/{id}/reject", POST=logged(pages.reject)),
        route("/instances/{client_id}", GET=logged(pages.instance)),
        route("/instances/{client_id}/status", POST=logged(pages.instance_status)),
        route("/outbox", GET=logged(pages.outbox)),
        route("/{rest:path}", **unknown),
    ]

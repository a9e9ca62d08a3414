"""KT2 domain admin web page over plain HTTP: log-in form with CSRF, cookie flags, the screens per role, deciding
and status changes through the forms, escaping, and HTML error pages (the Chromium test is
test_kt2_admin_browser.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from kt2_admin_support import (  # noqa: F401
    MGMT,
    PASSWORDS,
    AdminHarness,
    admin,
    no_unhandled_errors,
    test_data,
)

CSRF_RE = re.compile(r'name="csrf" value="([^"]*)"')
# markup of the templates themselves that shows up escaped: a template bug (double escaping)
ESCAPED_MARKUP = re.compile(r"&lt;/?(dl|dt|dd|tr|td|th|table|nav|section|div|span|code|a|p|h2|form|br)[ >&]")


class Person:
    """A browser without JavaScript: a cookie jar, forms with their CSRF token."""

    def __init__(self, admin: AdminHarness) -> None:
        self.admin = admin
        self.http = httpx.Client(base_url=admin.url, timeout=10.0, follow_redirects=False)

    def get(self, path: str, **kw) -> httpx.Response:
        response = self.http.get(MGMT + path, **kw)
        assert not ESCAPED_MARKUP.search(response.text), ESCAPED_MARKUP.search(response.text)
        return response

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        found = CSRF_RE.findall(page.text)
        assert found, page.text
        return html.unescape(found[-1])

    def post(self, path: str, form: dict, csrf_from: str | None = None) -> httpx.Response:
        data = dict(form)
        if csrf_from is not None:
            data["csrf"] = self.csrf(csrf_from)
        return self.http.post(MGMT + path, data=data)

    def log_in(self, username: str) -> httpx.Response:
        response = self.post("/login", {"username": username, "password": PASSWORDS[username]}, csrf_from="/login")
        assert response.status_code == 303, response.text
        return response

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def person(admin: AdminHarness) -> Iterator[Person]:
    someone = Person(admin)
    yield someone
    someone.close()


def text_of(response: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.text))


def test_start_without_session_goes_to_the_login_form(person: Person) -> None:
    response = person.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == f"{person.admin.url}{MGMT}/login"
    form = person.get("/login")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    for label in ("Gebruikersnaam", "Wachtwoord", "Aanmelden"):
        assert label in form.text
    assert "script-src" not in form.headers["content-security-policy"]
    assert "default-src 'none'" in form.headers["content-security-policy"]
    assert form.headers["x-frame-options"] == "DENY"


def test_login_sets_a_strict_http_only_cookie(person: Person) -> None:
    response = person.log_in("alpha-admin")
    assert response.headers["location"] == f"{person.admin.url}{MGMT}/"
    cookie = [c for c in response.headers.get_list("set-cookie") if c.startswith("kt2mgmt_session=")]
    assert len(cookie) == 1
    flags = cookie[0].lower()
    assert "httponly" in flags and "samesite=strict" in flags and f"path={MGMT}" in flags
    assert "secure" not in flags                       # plain http on loopback
    start = person.get("/")
    assert start.status_code == 200
    assert "Mijn domeinen" in start.text and "ktbench-alpha" in start.text and "ktbench-beta" not in start.text


def test_the_cookie_is_secure_behind_an_https_public_base(admin: AdminHarness, person: Person) -> None:
    admin.use(public_base="https://kt2.example.test")
    form = person.get("/login")
    nonce = next(c for c in form.headers.get_list("set-cookie") if c.startswith("kt2mgmt_login="))
    assert "secure" in nonce.lower()
    # an http client does not send Secure cookies back: hand it over as a browser on https would
    response = person.http.post(MGMT + "/login", headers={"Cookie": nonce.split(";")[0]},
                                data={"username": "alpha-admin", "password": PASSWORDS["alpha-admin"],
                                      "csrf": html.unescape(CSRF_RE.findall(form.text)[0])})
    assert response.status_code == 303
    assert response.headers["location"] == "https://kt2.example.test/kt2/mgmt/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("kt2mgmt_session="))
    assert "secure" in cookie.lower()


def test_wrong_password_on_the_form(person: Person) -> None:
    csrf = person.csrf("/login")
    response = person.http.post(MGMT + "/login", data={"username": "alpha-admin", "password": "nope-Q7", "csrf": csrf})
    assert response.status_code == 401
    assert "Onjuiste gebruikersnaam of wachtwoord" in response.text and "nope-Q7" not in response.text
    assert "kt2mgmt_session" not in response.headers.get("set-cookie", "")


def test_blocked_account_on_the_form(admin: AdminHarness, person: Person) -> None:
    admin.use(test_data(login_attempts=2))
    for _ in range(2):
        csrf = person.csrf("/login")
        last = person.http.post(MGMT + "/login", data={"username": "beta-admin", "password": "x", "csrf": csrf})
    assert last.status_code == 423 and "geblokkeerd" in last.text
    csrf = person.csrf("/login")
    right = person.http.post(MGMT + "/login", data={"username": "beta-admin", "password": PASSWORDS["beta-admin"],
                                                    "csrf": csrf})
    assert right.status_code == 423


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "garbage"])
def test_login_form_needs_its_csrf_token(person: Person, csrf: str | None) -> None:
    person.get("/login")  # the pre-login cookie
    data = {"username": "alpha-admin", "password": PASSWORDS["alpha-admin"]}
    if csrf is not None:
        data["csrf"] = csrf
    response = person.http.post(MGMT + "/login", data=data)
    assert response.status_code == 403 and "verlopen" in response.text
    assert person.get("/").status_code == 303


def test_login_form_without_the_pre_login_cookie_is_refused(person: Person) -> None:
    csrf = person.csrf("/login")
    person.http.cookies.clear()
    response = person.http.post(MGMT + "/login", data={"username": "alpha-admin",
                                                       "password": PASSWORDS["alpha-admin"], "csrf": csrf})
    assert response.status_code == 403


def test_domain_screen_with_its_tabs(admin: AdminHarness, person: Person) -> None:
    filed = admin.filed(name="Module <b>vet</b>")
    person.log_in("alpha-admin")
    instances = person.get("/domains/ktbench-alpha")
    assert instances.status_code == 200
    assert "Applicatieinstanties" in instances.text and "Connectieaanvragen" in instances.text
    assert "alpha-portal" in instances.text and "In onderhoud" in instances.text
    requests = person.get("/domains/ktbench-alpha", params={"tab": "requests"})
    assert filed["id"] in requests.text and "In behandeling" in requests.text
    assert "Module &lt;b&gt;vet&lt;/b&gt;" in requests.text and "<b>vet</b>" not in requests.text
    assert person.get("/domains/ktbench-beta").status_code == 403
    assert person.get("/domains/nope").status_code == 404
    assert person.get("/domains/ktbench-alpha", params={"tab": "<script>"}).status_code == 200


def test_accept_through_the_form(admin: AdminHarness, person: Person) -> None:
    filed = admin.filed()
    person.log_in("alpha-admin")
    page = f"/connection-requests/{filed['id']}"
    detail = person.get(page)
    for label in ("Geaccepteerd", "Geweigerd", "eHealth Module", "Rol"):
        assert label in detail.text
    response = person.post(page + "/accept", {"role": "eHealth Module"}, csrf_from=page)
    assert response.status_code == 303
    assert response.headers["location"] == f"{admin.url}{MGMT}{page}?melding=geaccepteerd"
    result = person.get(page + "?melding=geaccepteerd")
    client_id = admin.api("GET", f"/connection-requests/{filed['id']}", "alpha-admin").json()["client_id"]
    assert client_id and client_id in result.text
    assert "De connectieaanvraag is geaccepteerd" in result.text
    assert admin.registry_status(client_id) == "active"


def test_a_refused_form_shows_the_reason_and_stores_nothing(admin: AdminHarness, person: Person) -> None:
    filed = admin.filed()
    person.log_in("alpha-admin")
    page = f"/connection-requests/{filed['id']}"
    before = admin.snapshot()
    no_role = person.post(page + "/accept", {"role": ""}, csrf_from=page)
    assert no_role.status_code == 422 and "role must be one of" in text_of(no_role)
    no_reason = person.post(page + "/reject", {"reason": " "}, csrf_from=page)
    assert no_reason.status_code == 422 and "reason is required" in text_of(no_reason)
    assert admin.snapshot() == before


def test_reject_through_the_form(admin: AdminHarness, person: Person) -> None:
    filed = admin.filed()
    person.log_in("alpha-admin-2")
    page = f"/connection-requests/{filed['id']}"
    response = person.post(page + "/reject", {"reason": "Geen contract <script>alert(1)</script>"}, csrf_from=page)
    assert response.status_code == 303
    result = person.get(page)
    assert "Geweigerd" in result.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in result.text
    assert "<script>" not in result.text
    again = person.post(page + "/accept", {"role": "eHealth Module"}, csrf_from="/domains/ktbench-alpha")
    assert again.status_code == 409


@pytest.mark.parametrize("csrf", [None, "", "x" * 64])
def test_logged_in_forms_need_the_csrf_token(admin: AdminHarness, person: Person, csrf: str | None) -> None:
    filed = admin.filed()
    person.log_in("alpha-admin")
    form = {"role": "eHealth Module"} | ({} if csrf is None else {"csrf": csrf})
    response = person.http.post(f"{MGMT}/connection-requests/{filed['id']}/accept", data=form)
    assert response.status_code == 403
    assert admin.api("GET", f"/connection-requests/{filed['id']}", "alpha-admin").json()["status"] == "pending"


def test_another_sessions_csrf_token_does_not_work(admin: AdminHarness, person: Person) -> None:
    filed = admin.filed()
    other = Person(admin)
    other.log_in("alpha-admin")
    stolen = other.csrf("/")
    other.close()
    person.log_in("alpha-admin")
    response = person.http.post(f"{MGMT}/connection-requests/{filed['id']}/accept",
                                data={"role": "eHealth Module", "csrf": stolen})
    assert response.status_code == 403


def test_status_change_through_the_form(admin: AdminHarness, person: Person) -> None:
    person.log_in("alpha-admin")
    page = "/instances/alpha-portal"
    detail = person.get(page)
    assert "Status wijzigen" in detail.text and "Reden" in detail.text and "Opslaan" in detail.text
    missing = person.post(page + "/status", {"status": "maintenance", "reason": ""}, csrf_from=page)
    assert missing.status_code == 422 and admin.registry_status("alpha-portal") == "active"
    done = person.post(page + "/status", {"status": "maintenance", "reason": "Update"}, csrf_from=page)
    assert done.status_code == 303 and admin.registry_status("alpha-portal") == "maintenance"
    shown = person.get(page)
    assert "In onderhoud" in shown.text and "Statusgeschiedenis" in shown.text and "Update" in shown.text
    person.post(page + "/status", {"status": "closed", "reason": "Einde"}, csrf_from=page)
    closed = person.get(page)
    assert "definitief" in closed.text and 'name="status"' not in closed.text
    refused = person.post(page + "/status", {"status": "active", "reason": "terug"}, csrf_from="/")
    assert refused.status_code == 409 and admin.registry_status("alpha-portal") == "closed"


def test_application_admin_files_through_the_form(admin: AdminHarness, person: Person) -> None:
    person.log_in("module-admin")
    start = person.get("/")
    assert "Mijn applicaties" in start.text and "ktbench-module" in start.text and "ktbench-portal" not in start.text
    page = "/applications/ktbench-module?tab=new"
    form = person.get(page)
    for label in ("Domein", "JWKS URI", "Redirect URI", "Launch URL", "Aanvragen"):
        assert label in form.text
    fields = {"application": "ktbench-module", "domain": "ktbench-beta", "name": "",
              "jwks_uri": "https://module.example.test/jwks",
              "redirect_uris": "https://module.example.test/a\r\n\r\nhttps://module.example.test/b\r\n",
              "launch_url": "https://module.example.test/launch"}
    bad = person.post("/connection-requests", fields | {"jwks_uri": "http://evil.example.test/<x>"}, csrf_from=page)
    assert bad.status_code == 422 and "https" in text_of(bad) and "&lt;x&gt;" in bad.text  # kept in the field
    response = person.post("/connection-requests", fields, csrf_from=page)
    assert response.status_code == 303 and "melding=aangevraagd" in response.headers["location"]
    listed = admin.api("GET", "/connection-requests", "module-admin").json()["connection_requests"]
    assert len(listed) == 1 and listed[0]["redirect_uris"] == ["https://module.example.test/a",
                                                                "https://module.example.test/b"]
    assert person.get("/applications/ktbench-portal").status_code == 403
    assert person.get("/applications/ktbench-module", params={"tab": "requests"}).status_code == 200


def test_domain_admin_cannot_file_through_the_form(admin: AdminHarness, person: Person) -> None:
    person.log_in("alpha-admin")
    response = person.post("/connection-requests", {"application": "ktbench-module", "domain": "ktbench-alpha",
                                                    "jwks_uri": "https://x.example.test/jwks"}, csrf_from="/")
    assert response.status_code == 403
    assert admin.api("GET", "/connection-requests", "alpha-admin").json()["connection_requests"] == []


def test_outbox_page_and_logout(admin: AdminHarness, person: Person) -> None:
    admin.filed()
    person.log_in("alpha-admin")
    outbox = person.get("/outbox")
    assert "Nieuwe connectieaanvraag voor domein ktbench-alpha op ktbench" in outbox.text
    response = person.post("/logout", {}, csrf_from="/")
    assert response.status_code == 303 and response.headers["location"].endswith("/login?melding=afgemeld")
    assert person.get("/").status_code == 303


@pytest.mark.parametrize("cookie", ["garbage", "", "x" * 43, "\u00e9t\u00e9", "a" * 5000, '"quoted"'])
def test_bad_cookies_lead_to_the_login_form(person: Person, cookie: str) -> None:
    raw = f"kt2mgmt_session={cookie}".encode()
    response = person.http.get(MGMT + "/domains/ktbench-alpha", headers={"Cookie": raw})
    assert response.status_code == 303 and response.headers["location"].endswith("/login")
    post = person.http.post(MGMT + "/logout", headers={"Cookie": raw}, data={"csrf": "x"})
    assert post.status_code == 303


def test_expired_session_cookie(admin: AdminHarness, person: Person) -> None:
    person.log_in("alpha-admin")
    admin.ctx.clock.offset += admin.ctx.settings.admin_session_seconds + 1
    assert person.get("/").status_code == 303


def test_error_pages_are_html(person: Person) -> None:
    missing = person.get("/no/such/page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Niet gevonden" in missing.text
    wrong = person.http.delete(MGMT + "/login")
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"] and "POST" in wrong.headers["allow"]
    form = person.http.post(MGMT + "/login", content=b'{"username": "x"}', headers={"Content-Type": "application/json"})
    assert form.status_code == 415 and form.headers["content-type"].startswith("text/html")
    person.log_in("alpha-admin")
    hidden = person.get("/instances/beta-module")
    assert hidden.status_code == 404 and "Traceback" not in hidden.text


def test_legacy_entry_and_stylesheet(person: Person) -> None:
    legacy = person.get("/csp/index.csp")
    assert legacy.status_code == 303 and legacy.headers["location"].endswith(f"{MGMT}/")
    css = person.get("/static/admin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and "body" in css.text


def test_everything_shown_is_escaped(admin: AdminHarness, person: Person) -> None:
    evil = '"><script>alert(1)</script>'
    filed = admin.filed(name=evil, redirect_uris=["https://x.example.test/?q=<script>"],
                        launch_url="https://x.example.test/'onmouseover='x")
    accepted = admin.accept(filed["id"]).json()
    person.log_in("alpha-admin")
    for path in (f"/connection-requests/{filed['id']}", f"/instances/{accepted['client_id']}",
                 "/domains/ktbench-alpha", "/domains/ktbench-alpha?tab=requests", "/outbox"):
        page = person.get(path)
        assert page.status_code == 200, path
        assert "<script>" not in page.text, path
        assert "'onmouseover='" not in page.text, path
    # escaped once: shown as typed, not as entity soup
    assert html.escape(evil) in person.get(f"/connection-requests/{filed['id']}").text

"""The web page's HTML: Python string templates, every value escaped unless it is already `Markup`.

No JavaScript, one small style sheet (served at `static/admin.css`, so the Content-Security-Policy can forbid
inline styles and every script).  Labels are the seed's Dutch ones (seed 001 ch. 3-5): "Aanmelden",
"Applicatieinstanties", "Connectieaanvragen", "Geaccepteerd", "Geweigerd", "Aanvragen", "Opslaan".  The
templates render the API's JSON shapes (`views`), so the page shows what the API answers.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from string import Template
from typing import Any

from simulators.kt2.admin.views import page_url

TIME_SUFFIX = " UTC"


class Markup(str):
    """Text that is already HTML (escaped or built from escaped parts); `+` escapes a plain str operand."""

    def __add__(self, other: object) -> Markup:
        return Markup(str.__add__(self, esc(other)))

    def __radd__(self, other: object) -> Markup:
        return Markup(str.__add__(esc(other), self))


def esc(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: Template, **values: Any) -> Markup:
    return Markup(template.substitute({key: esc(value) for key, value in values.items()}))


def join(parts: Iterable[Any]) -> Markup:
    return Markup("".join(esc(p) for p in parts))


def wrap(open_tag: str, inner: Any, close_tag: str) -> Markup:
    """`inner` (escaped unless Markup) between two literal tags of this module."""
    return Markup(open_tag) + esc(inner) + Markup(close_tag)


def when(instant: str | None) -> str:
    """An API instant (2025-01-02T03:04:05.678Z) as people read it: 2025-01-02 03:04:05 UTC."""
    return "" if not instant else instant[:19].replace("T", " ") + TIME_SUFFIX


CSS = """
:root { --ink: #1d2733; --muted: #5b6776; --line: #d5dbe3; --brand: #005a8c; --bg: #f4f6f9; --ok: #1e7b34;
        --warn: #9a5b00; --bad: #a8261b; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 "DejaVu Sans", Arial, sans-serif; color: var(--ink); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.5rem; background: var(--brand);
             color: #fff; }
header.top a { color: #fff; }
header.top .brand { font-weight: bold; font-size: 1.1rem; text-decoration: none; }
header.top .env { background: rgba(255,255,255,.2); border-radius: 3px; padding: 0 .4rem; font-size: .8rem; }
header.top .who { margin-left: auto; }
header.top form { display: inline; margin: 0; }
header.top button { background: transparent; color: #fff; border: 1px solid #fff; }
main { max-width: 72rem; margin: 1.5rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 1rem 1.25rem;
               margin-bottom: 1rem; }
table { width: 100%; border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #e9edf2; font-weight: 600; }
td.mono, dd.mono, code { font-family: "DejaVu Sans Mono", monospace; font-size: .85rem; word-break: break-all; }
dl.facts { display: grid; grid-template-columns: 12rem 1fr; gap: .35rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
nav.tabs { display: flex; gap: .25rem; border-bottom: 2px solid var(--brand); margin: 1rem 0 0; }
nav.tabs a { padding: .45rem 1rem; text-decoration: none; color: var(--brand); border: 1px solid var(--line);
             border-bottom: none; border-radius: 4px 4px 0 0; background: #fff; }
nav.tabs a.current { background: var(--brand); color: #fff; }
.tab-body { background: #fff; border: 1px solid var(--line); border-top: none; padding: 1rem; }
a.button, button { display: inline-block; padding: .35rem .9rem; border-radius: 3px; border: 1px solid var(--brand);
                   background: var(--brand); color: #fff; text-decoration: none; font: inherit; cursor: pointer; }
button.secondary { background: #fff; color: var(--bad); border-color: var(--bad); }
form.stack label { display: block; margin: .6rem 0 .2rem; font-weight: 600; }
form.stack input[type=text], form.stack input[type=password], form.stack input[type=url], form.stack select,
form.stack textarea { width: 100%; max-width: 36rem; padding: .4rem; border: 1px solid var(--line);
                      border-radius: 3px; font: inherit; }
form.stack textarea { min-height: 4.5rem; }
form.stack .actions { margin-top: .8rem; }
.decide { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.status { display: inline-block; white-space: nowrap; padding: 0 .5rem; border-radius: 3px; font-size: .85rem;
          font-weight: 600; border: 1px solid currentColor; }
.status-active, .status-accepted { color: var(--ok); }
.status-maintenance, .status-pending { color: var(--warn); }
.status-closed, .status-rejected { color: var(--bad); }
.flash { padding: .6rem 1rem; border-radius: 4px; margin-bottom: 1rem; background: #e6f4ea;
         border: 1px solid #a8d5b5; }
.error { padding: .6rem 1rem; border-radius: 4px; margin-bottom: 1rem; background: #fdecea;
         border: 1px solid #f1b0a8; color: var(--bad); }
.muted { color: var(--muted); }
pre.mail { white-space: pre-wrap; background: #fafbfc; border: 1px solid var(--line); padding: .75rem;
           font-size: .85rem; }
.login { max-width: 26rem; margin: 3rem auto; }
footer { text-align: center; color: var(--muted); font-size: .8rem; margin: 2rem 0; }
"""

_LAYOUT = Template("""<!DOCTYPE html>
<html lang="nl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title - Koppeltaal beheerapplicatie</title>
<link rel="stylesheet" href="$css">
</head>
<body>
<header class="top"><a class="brand" href="$home">Koppeltaal beheerapplicatie</a>
<span class="env">ktbench</span>$user</header>
<main>
$notices<h1>$heading</h1>
$content
</main>
<footer>ktbench referentievoorziening &middot; gesimuleerde beheerapplicatie (geen echte gegevens)</footer>
</body>
</html>
""")
_USER = Template("""<span class="who">$name ($kind)</span> <a href="$outbox">Berichten</a>
<form method="post" action="$logout"><input type="hidden" name="csrf" value="$csrf">
<button type="submit">Afmelden</button></form>""")


class Page:
    """What every page needs: the root for links, who is logged in and the CSRF token of their forms."""

    def __init__(self, root: str, account: dict[str, Any] | None = None, csrf: str = "") -> None:
        self.root = root
        self.account = account
        self.csrf = csrf

    def url(self, *parts: str) -> str:
        return page_url(self.root, *parts)

    def hidden_csrf(self) -> Markup:
        return render(Template('<input type="hidden" name="csrf" value="$csrf">'), csrf=self.csrf)

    def document(self, title: str, content: Markup, *, heading: str | None = None, flash: str | None = None,
                 error: str | None = None) -> Markup:
        user = Markup("")
        if self.account is not None:
            user = render(_USER, name=self.account["name"], kind=self.account["kind_label"], outbox=self.url("outbox"),
                          logout=self.url("logout"), csrf=self.csrf)
        notices = join([render(Template('<div class="flash" role="status">$m</div>\n'), m=flash) if flash else "",
                        render(Template('<div class="error" role="alert">$m</div>\n'), m=error) if error else ""])
        return render(_LAYOUT, title=title, heading=heading or title, css=self.url("static", "admin.css"),
                      home=self.url(), user=user, notices=notices, content=content)


# -- small parts ----------------------------------------------------------------------------------------
def status_badge(code: str, label: str) -> Markup:
    return render(Template('<span class="status status-$code">$label</span>'), code=code, label=label)


def facts(rows: Iterable[tuple[str, Any]]) -> Markup:
    item = Template("<dt>$k</dt><dd>$v</dd>")
    return wrap('<dl class="facts">', join(render(item, k=k, v=v) for k, v in rows), "</dl>")


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]], empty: str) -> Markup:
    rows = list(rows)
    if not rows:
        return render(Template('<p class="muted">$m</p>'), m=empty)
    head = join(render(Template("<th>$h</th>"), h=h) for h in headers)
    body = join(wrap("<tr>", join(render(Template("<td>$c</td>"), c=c) for c in row), "</tr>") for row in rows)
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def link(href: str, text: str, css: str = "button") -> Markup:
    return render(Template('<a class="$css" href="$href">$text</a>'), css=css, href=href, text=text)


def lines(values: Iterable[str]) -> Markup:
    return Markup("<br>".join(esc(v) for v in values)) or Markup('<span class="muted">-</span>')


def tabs(page: Page, base: tuple[str, ...], current: str, choices: Iterable[tuple[str, str]]) -> Markup:
    item = Template('<a class="$css" href="$href?tab=$tab">$label</a>')
    return wrap('<nav class="tabs">', join(render(item, css="current" if tab == current else "", tab=tab,
                                                  href=page.url(*base), label=label) for tab, label in choices),
                "</nav>")


def options(choices: Iterable[tuple[str, str]], selected: str = "") -> Markup:
    item = Template('<option value="$v"$sel>$label</option>')
    return join(render(item, v=v, label=label, sel=Markup(" selected") if v == selected else "")
                for v, label in choices)


# -- pages ----------------------------------------------------------------------------------------------
_LOGIN = Template("""<section class="card login">
<form class="stack" method="post" action="$action">
<input type="hidden" name="csrf" value="$csrf">
<label for="username">Gebruikersnaam</label>
<input type="text" id="username" name="username" value="$username" autocomplete="username" required autofocus>
<label for="password">Wachtwoord</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="actions"><button type="submit" id="login">Aanmelden</button></div>
</form>
<p class="muted">Wachtwoord vergeten of account geblokkeerd? Een domeinbeheerder kan uw account deblokkeren
(in de echte voorziening: support@itzos.com).</p>
</section>""")


def login_page(page: Page, csrf: str, *, username: str = "", error: str | None = None,
               flash: str | None = None) -> Markup:
    content = render(_LOGIN, action=page.url("login"), csrf=csrf, username=username)
    return page.document("Aanmelden", content, heading="Aanmelden bij de beheerapplicatie", error=error, flash=flash)


def start_page(page: Page, domains: list[dict], applications: list[dict], *, flash: str | None = None) -> Markup:
    account = page.account or {}
    if account.get("kind") == "domain-admin":
        rows = [(d["name"], d["title"], d["environment"], d.get("instances", ""), d.get("pending_requests", ""),
                 link(page.url("domains", d["name"]), "Openen")) for d in domains]
        content = Markup("<h2>Mijn domeinen</h2>") + table(
            ("Domein", "Omschrijving", "Omgeving", "Applicatieinstanties", "Open aanvragen", ""), rows,
            "U bent van geen enkel domein beheerder.")
    else:
        rows = [(a["id"], a["name"], a["vendor"], link(page.url("applications", a["id"]), "Openen"))
                for a in applications]
        content = Markup("<h2>Mijn applicaties</h2>") + table(("Applicatie", "Naam", "Leverancier", ""), rows,
                                                                "U bent van geen enkele applicatie beheerder.")
    return page.document("Startscherm", content, heading=f"Welkom, {account.get('name', '')}", flash=flash)


def instances_table(page: Page, instances: list[dict], *, with_domain: bool = False) -> Markup:
    headers = ["Naam", "Applicatie", *(["Domein"] if with_domain else []), "Client-id", "Rol", "Status", ""]
    rows = [(i["name"], i["application_name"], *([i["domain"]] if with_domain else []),
             Markup(f'<code>{esc(i["client_id"])}</code>'), i["role"], status_badge(i["status"], i["status_label"]),
             link(page.url("instances", i["client_id"]), "Details")) for i in instances]
    return table(headers, rows, "Er zijn geen applicatieinstanties.")


def requests_table(page: Page, requests: list[dict]) -> Markup:
    rows = [(when(r["filed_at"]), r["application_name"], r["domain"], r["name"],
             status_badge(r["status"], r["status_label"]), r["filed_by"],
             link(page.url("connection-requests", r["id"]), "Inzien")) for r in requests]
    return table(("Ingediend", "Applicatie", "Domein", "Naam", "Status", "Ingediend door", ""), rows,
                 "Er zijn geen connectieaanvragen.")


DOMAIN_TABS = (("instances", "Applicatieinstanties"), ("requests", "Connectieaanvragen"))


def domain_page(page: Page, domain: dict, tab: str, instances: list[dict], requests: list[dict],
                *, flash: str | None = None) -> Markup:
    details = facts([("Naam", domain["name"]), ("Omschrijving", domain["title"]), ("Omgeving", domain["environment"]),
                     ("FHIR base URL", Markup(f'<code>{esc(domain["fhir_base"])}</code>')),
                     ("Token endpoint", Markup(f'<code>{esc(domain["token_endpoint"])}</code>'))])
    body = instances_table(page, instances) if tab == "instances" else requests_table(page, requests)
    content = join([Markup('<section class="card">'), details, Markup("</section>"),
                    tabs(page, ("domains", domain["name"]), tab, DOMAIN_TABS),
                    Markup('<div class="tab-body">'), body, Markup("</div>")])
    return page.document(f"Domein {domain['name']}", content, flash=flash)


APPLICATION_TABS = (("instances", "Applicatieinstanties"), ("requests", "Connectieaanvragen"),
                    ("new", "Nieuwe connectieaanvraag"))
_FILING = Template("""<form class="stack" method="post" action="$action">
$csrf<input type="hidden" name="application" value="$application">
<label for="domain">Domein</label>
<select id="domain" name="domain" required>$domains</select>
<label for="name">Naam applicatieinstantie (optioneel)</label>
<input type="text" id="name" name="name" value="$name" placeholder="$placeholder">
<label for="jwks_uri">JWKS URI</label>
<input type="url" id="jwks_uri" name="jwks_uri" value="$jwks_uri" required placeholder="https://.../jwks.json">
<label for="redirect_uris">Redirect URI's (één per regel)</label>
<textarea id="redirect_uris" name="redirect_uris">$redirect_uris</textarea>
<label for="launch_url">Launch URL</label>
<input type="url" id="launch_url" name="launch_url" value="$launch_url" placeholder="https://.../launch">
<div class="actions"><button type="submit" id="file">Aanvragen</button></div>
</form>""")


def application_page(page: Page, app: dict, tab: str, instances: list[dict], requests: list[dict],
                     domains: list[dict], *, form: dict[str, str] | None = None, flash: str | None = None,
                     error: str | None = None) -> Markup:
    form = form or {}
    details = facts([("Applicatie", app["id"]), ("Naam", app["name"]), ("Leverancier", app["vendor"])])
    if tab == "instances":
        body = instances_table(page, instances, with_domain=True)
    elif tab == "requests":
        body = requests_table(page, requests)
    elif app.get("administered"):
        body = render(_FILING, action=page.url("connection-requests"), csrf=page.hidden_csrf(),
                      application=app["id"], domains=options([(d["name"], f"{d['name']} ({d['title']})")
                                                              for d in domains], form.get("domain", "")),
                      name=form.get("name", ""), placeholder=app["name"], jwks_uri=form.get("jwks_uri", ""),
                      redirect_uris=form.get("redirect_uris", ""), launch_url=form.get("launch_url", ""))
    else:
        body = Markup('<p class="muted">Alleen applicatiebeheerders van deze applicatie dienen aanvragen in.</p>')
    content = join([Markup('<section class="card">'), details, Markup("</section>"),
                    tabs(page, ("applications", app["id"]), tab, APPLICATION_TABS),
                    Markup('<div class="tab-body">'), body, Markup("</div>")])
    return page.document(f"Applicatie {app['name']}", content, flash=flash, error=error)


_DECIDE = Template("""<h2>Besluit</h2>
<div class="decide">
<section class="card"><form class="stack" method="post" action="$accept">$csrf
<label for="role">Rol</label>
<select id="role" name="role" required><option value="">-- kies een rol --</option>$roles</select>
<div class="actions"><button type="submit" id="accept">Geaccepteerd</button></div>
</form></section>
<section class="card"><form class="stack" method="post" action="$reject">$csrf
<label for="reason">Reden van weigering</label>
<textarea id="reason" name="reason" required></textarea>
<div class="actions"><button type="submit" class="secondary" id="reject">Geweigerd</button></div>
</form></section>
</div>""")


def request_page(page: Page, request: dict, *, can_decide: bool, roles: list[str], flash: str | None = None,
                 error: str | None = None) -> Markup:
    rows: list[tuple[str, Any]] = [
        ("Status", status_badge(request["status"], request["status_label"])),
        ("Domein", request["domain"]), ("Applicatie", f"{request['application_name']} ({request['application']})"),
        ("Naam", request["name"]), ("JWKS URI", Markup(f'<code>{esc(request["jwks_uri"])}</code>')),
        ("Redirect URI's", lines(request["redirect_uris"])), ("Launch URL", request["launch_url"] or "-"),
        ("Ingediend door", request["filed_by"]), ("Ingediend op", when(request["filed_at"]))]
    if request["status"] != "pending":
        rows += [("Besluit door", request["decided_by"] or "-"), ("Besluit op", when(request["decided_at"]))]
    if request["status"] == "accepted":
        rows += [("Rol", request["role"]),
                 ("Client-id", Markup(f'<code id="client-id">{esc(request["client_id"])}</code>')),
                 ("Applicatieinstantie", link(page.url("instances", request["client_id"]), "Details", "plain"))]
    if request["status"] == "rejected":
        rows.append(("Reden", request["reason"]))
    content = Markup('<section class="card">') + facts(rows) + Markup("</section>")
    if can_decide and request["status"] == "pending":
        content += render(_DECIDE, accept=page.url("connection-requests", request["id"], "accept"),
                          reject=page.url("connection-requests", request["id"], "reject"), csrf=page.hidden_csrf(),
                          roles=options((r, r) for r in roles))
    back = ("domains", request["domain"]) if (page.account or {}).get("kind") == "domain-admin" else \
        ("applications", request["application"])
    content += Markup("<p>") + link(page.url(*back) + "?tab=requests", "Terug naar de connectieaanvragen", "plain") \
        + Markup("</p>")
    return page.document("Connectieaanvraag", content, heading=f"Connectieaanvraag {request['name']}", flash=flash,
                         error=error)


_STATUS_FORM = Template("""<h2>Status wijzigen</h2>
<section class="card"><form class="stack" method="post" action="$action">$csrf
<label for="status">Nieuwe status</label>
<select id="status" name="status" required>$choices</select>
<label for="reason">Reden</label>
<textarea id="reason" name="reason" required></textarea>
<div class="actions"><button type="submit" id="save">Opslaan</button></div>
</form></section>""")


def instance_page(page: Page, instance: dict, *, can_change: bool, labels: dict[str, str], flash: str | None = None,
                  error: str | None = None) -> Markup:
    rows = [("Status", status_badge(instance["status"], instance["status_label"])),
            ("Client-id", Markup(f'<code id="client-id">{esc(instance["client_id"])}</code>')),
            ("Applicatie", f"{instance['application_name']} ({instance['application']})"),
            ("Domein", instance["domain"]), ("Rol", instance["role"]),
            ("JWKS URI", Markup(f'<code>{esc(instance["jwks_uri"] or "-")}</code>')),
            ("Redirect URI's", lines(instance["redirect_uris"])), ("Launch URL", instance["launch_url"] or "-"),
            ("Device", Markup(f'<code>{esc(instance["device_url"])}</code>')),
            ("Geregistreerd op", when(instance.get("created_at")))]
    content = Markup('<section class="card">') + facts(rows) + Markup("</section>")
    targets = instance.get("allowed_status_changes", [])
    if can_change and targets:
        content += render(_STATUS_FORM, action=page.url("instances", instance["client_id"], "status"),
                          csrf=page.hidden_csrf(), choices=options((t, labels[t]) for t in targets))
    elif can_change:
        content += Markup('<p class="muted">De status "Afgesloten" is definitief.</p>')
    history = [(when(h["at"]), h["from_label"] or "-", h["to_label"], h["by"], h["reason"])
               for h in instance.get("history", [])]
    content += Markup("<h2>Statusgeschiedenis</h2>") + table(("Datum", "Van", "Naar", "Door", "Reden"), history,
                                                             "Geen wijzigingen.")
    return page.document("Applicatieinstantie", content, heading=f"Applicatieinstantie {instance['name']}",
                         flash=flash, error=error)


_MAIL = Template("""<section class="card"><h2>$subject</h2>
<p class="muted">Verzonden $sent aan $to</p><pre class="mail">$body</pre></section>""")


def outbox_page(page: Page, address: str, mails: list[dict]) -> Markup:
    content = render(Template('<p class="muted">E-mails aan $address (gesimuleerd: er wordt niets verzonden).</p>'),
                     address=address)
    content += join(render(_MAIL, subject=m["subject"], sent=when(m["sent_at"]), to=", ".join(m["to"]), body=m["body"])
                    for m in mails) or Markup('<p class="muted">Geen berichten.</p>')
    return page.document("Berichten", content)


ERROR_HEADINGS = {400: "Ongeldig verzoek", 401: "Niet aangemeld", 403: "Geen toegang", 404: "Niet gevonden",
                  405: "Methode niet toegestaan", 409: "Conflict", 413: "Verzoek te groot",
                  415: "Verkeerd formaat", 422: "Ongeldige invoer", 423: "Account geblokkeerd",
                  502: "De FHIR store weigerde", 503: "Niet beschikbaar"}


def error_page(page: Page, status: int, detail: str) -> Markup:
    heading = ERROR_HEADINGS.get(status, "Er ging iets mis")
    content = render(Template('<section class="card"><p>$detail</p><p>$home</p></section>'), detail=detail,
                     home=link(page.url(), "Naar het startscherm", "plain"))
    return page.document(heading, content)

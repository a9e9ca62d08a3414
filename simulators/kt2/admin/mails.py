"""The e-mails of the connection-request flow, in Dutch plain text (seed 001 §4.6, §5.5, §5.6).

Subjects are exactly the seed's: "Nieuwe connectieaanvraag voor domein <naam> op <omgeving>" to the domain's
admins, "Connectieaanvraag geaccepteerd" (naming the client id) and "Connectieaanvraag geweigerd" (with the
reason) to the application's admins.  Bodies name the request, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.kt2 import urls


@dataclass(frozen=True)
class RequestFacts:
    """What every mail about one connection request names."""

    request_id: str
    domain: str
    domain_title: str
    environment: str
    application: str
    application_name: str
    instance_name: str
    jwks_uri: str
    redirect_uris: tuple[str, ...]
    launch_url: str | None
    link: str                    # the request on the web page


_SIGNATURE = "Met vriendelijke groet,\n\nKoppeltaal beheerapplicatie (ktbench referentievoorziening)\n"


def _summary(facts: RequestFacts) -> str:
    lines = [f"Aanvraagnummer:        {facts.request_id}",
             f"Domein:                {facts.domain} ({facts.domain_title or facts.domain}) op {facts.environment}",
             f"Applicatie:            {facts.application_name} ({facts.application})",
             f"Applicatieinstantie:   {facts.instance_name}",
             f"JWKS URI:              {facts.jwks_uri}"]
    if facts.redirect_uris:
        lines.append("Redirect URI's:        " + "\n                       ".join(facts.redirect_uris))
    if facts.launch_url:
        lines.append(f"Launch URL:            {facts.launch_url}")
    return "\n".join(lines)


def request_filed(facts: RequestFacts, filer_name: str) -> tuple[str, str]:
    subject = f"Nieuwe connectieaanvraag voor domein {facts.domain} op {facts.environment}"
    body = (f"Beste domeinbeheerder,\n\n"
            f"{filer_name} heeft een connectieaanvraag ingediend voor uw domein {facts.domain}.\n\n"
            f"{_summary(facts)}\n\n"
            f"U kunt de aanvraag inzien en accepteren of weigeren in de beheerapplicatie:\n{facts.link}\n\n"
            f"{_SIGNATURE}")
    return subject, body


def request_accepted(facts: RequestFacts, client_id: str, role: str, root: str) -> tuple[str, str]:
    body = (f"Beste applicatiebeheerder,\n\n"
            f"Uw connectieaanvraag voor domein {facts.domain} op {facts.environment} is geaccepteerd.\n"
            f"De applicatieinstantie is Actief met de rol \"{role}\".\n\n"
            f"Toegekend client-id: {client_id}\n\n"
            f"{_summary(facts)}\n\n"
            f"FHIR base URL:         {urls.fhir_base(root, facts.domain)}\n"
            f"Token endpoint:        {urls.token_url(root, facts.domain)}\n"
            f"Device:                Device/{client_id}\n\n"
            f"De aanvraag in de beheerapplicatie:\n{facts.link}\n\n"
            f"{_SIGNATURE}")
    return "Connectieaanvraag geaccepteerd", body


def request_rejected(facts: RequestFacts, reason: str) -> tuple[str, str]:
    body = (f"Beste applicatiebeheerder,\n\n"
            f"De connectieaanvraag voor domein {facts.domain} op {facts.environment} is geweigerd.\n\n"
            f"Reden: {reason}\n\n"
            f"{_summary(facts)}\n\n"
            f"De aanvraag in de beheerapplicatie:\n{facts.link}\n\n"
            f"{_SIGNATURE}")
    return "Connectieaanvraag geweigerd", body

"""Before any KT1 scenario runs: is the target reachable, is it a KT1 server, does it accept every role?

A user's set-up mistake (a wrong password, the FHIR base pasted where the server root belongs, a web server
that is no Koppeltaal server at all) must not come out as "80 scenarios failed": the preflight turns it into a
configuration verdict with one sentence per problem (`ktbench run` exit 2, or 3 when unreachable).  It judges
nothing about conformance: a Conformance statement with the wrong fhirVersion still passes here and fails
KT1-META-CONFORMANCE in the suite; credentials are only "refused" on 401/403, any other answer is the suite's
to judge.  A 401 later in the run, after the preflight passed, is the target's failure.
"""

from __future__ import annotations

import json

import httpx

from ktbench.core.generation import PreflightProblem
from ktbench.fhir.dstu1.constants import FHIR_BASE_PATH, MESSAGE_HEADER_SEARCH_PATH, METADATA_PATH
from ktbench.targets.model import Target

TIMEOUT = 10.0


def normalise_url(url: str) -> str:
    """`ktbench serve kt1` prints the FHIR base (`.../FHIR/Koppeltaal`); the bench works with the root."""
    trimmed = url.rstrip("/")
    if trimmed.lower().endswith(FHIR_BASE_PATH.lower()):
        trimmed = trimmed[: -len(FHIR_BASE_PATH)]
    return trimmed


def _is_conformance(response: httpx.Response) -> bool:
    text = response.text.lstrip()
    if text.startswith("<"):
        return "<Conformance" in text[:2000]
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("resourceType") == "Conformance"


def preflight(target: Target) -> list[PreflightProblem]:
    with httpx.Client(timeout=min(TIMEOUT, target.request_timeout_seconds), verify=target.tls.httpx_verify(),
                      cert=target.tls.httpx_cert(), follow_redirects=False) as client:
        metadata_url = target.url + METADATA_PATH
        try:
            answer = client.get(metadata_url, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            return [PreflightProblem("unreachable", f"the target {target.url} cannot be reached "
                                     f"({type(exc).__name__}: {exc or 'no detail'}); check the URL and that it runs")]
        if answer.status_code != 200 or not _is_conformance(answer):
            kind = answer.headers.get("content-type", "no content type")
            return [PreflightProblem("protocol", f"{target.url} does not answer a KT1 Conformance statement at "
                                     f"{METADATA_PATH} (HTTP {answer.status_code}, {kind}): give the Koppeltaal "
                                     "server's root URL (with or without /FHIR/Koppeltaal) as the target")]
        problems = []
        for role, creds in sorted(target.roles.items()):
            try:
                answer = client.get(target.url + MESSAGE_HEADER_SEARCH_PATH,
                                    params={"_summary": "true", "_count": "1"}, auth=creds.basic_auth())
            except httpx.TransportError as exc:
                problems.append(PreflightProblem("unreachable", f"role {role}: the target stopped answering "
                                                 f"({type(exc).__name__})"))
                continue
            if answer.status_code in (401, 403):
                problems.append(PreflightProblem(
                    "credentials", f"role {role}: the target refused the credentials of user {creds.username!r} "
                    f"(HTTP {answer.status_code}); check [targets.{target.name}.roles.{role}] username and password"))
        return problems

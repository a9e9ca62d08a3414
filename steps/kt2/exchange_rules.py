"""Transport rules every KT2 exchange with the voorziening must follow, judged at the end of each scenario.

Clients depend on headers and minted URLs as much as on bodies: a FHIR client picks its parser by
Content-Type and follows the Location, Bundle links and fullUrls the store mints.  So for every answer the
target gave in a scenario:

- KT2-MEDIA-ANSWER: FHIR answers with a body are `application/fhir+json` (errors included; TOP-KT-002
  eis 6-8), the smart-configuration is `application/json` (TOP-KT-016), and JSON answers of the OAuth
  endpoints are labelled JSON;
- KT2-URL-MINTED: Location of a create, every Bundle link and every entry fullUrl is absolute and starts with
  the FHIR base the client used (redirects of the launch flow are judged by the launch scenarios).

Only the voorziening's answers count (its origin); the bench's own simulators are never judged here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from ktbench.core.errors import RequirementFailed
from ktbench.core.events import HttpExchange
from ktbench.http.client import origin_of
from ktbench.targets.model import Target

MEDIA = "KT2-MEDIA-ANSWER"
MINTED = "KT2-URL-MINTED"
REQUIREMENTS = (MEDIA, MINTED)


def _body(exchange: HttpExchange) -> Any:
    text = exchange.response_body.lstrip()
    if not text.startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _fhir_base_of(url: str, base: str) -> str | None:
    """The FHIR base (of the target's domain or another) an exchange went to, or None for non-FHIR URLs."""
    path = urlsplit(url).path
    marker = "/fhir/r4"
    if url.startswith(base + "/") or url == base:
        return base
    index = path.find(marker)
    if index < 0:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{path[: index + len(marker)]}"


def minted_urls(exchange: HttpExchange) -> Iterator[tuple[str, str]]:
    location = exchange.header("location")
    if location and exchange.method == "POST" and exchange.status == 201:
        yield "Location", location
    content_location = exchange.header("content-location")
    if content_location:
        yield "Content-Location", content_location
    body = _body(exchange)
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return
    for link in body.get("link") or []:
        if isinstance(link, dict) and isinstance(link.get("url"), str):
            yield f"the Bundle's {link.get('relation')} link", link["url"]
    for entry in body.get("entry") or []:
        if isinstance(entry, dict) and isinstance(entry.get("fullUrl"), str):
            yield "an entry's fullUrl", entry["fullUrl"]


def _media_problem(exchange: HttpExchange, fhir: bool) -> str | None:
    if exchange.method in ("HEAD", "OPTIONS") or 300 <= (exchange.status or 0) < 400 or not exchange.response_body:
        return None
    content_type = (exchange.header("content-type") or "").lower()
    path = urlsplit(exchange.url).path
    if path.endswith("/.well-known/smart-configuration"):
        return None if content_type.startswith("application/json") else \
            f"the smart-configuration is labelled {content_type or 'nothing'!r}, not application/json"
    if fhir:
        return None if content_type.startswith("application/fhir+json") else \
            f"a FHIR answer is labelled {content_type or 'nothing'!r}, not application/fhir+json"
    if _body(exchange) is not None and "json" not in content_type:
        return f"a JSON answer is labelled {content_type or 'nothing'!r}"
    return None


def check(exchanges: Sequence[HttpExchange], target: Target) -> BaseException | None:
    origin = origin_of(target.url)
    base = target.url.rstrip("/")
    for exchange in exchanges:
        if exchange.status is None or origin_of(exchange.url) != origin:
            continue
        what = f"{exchange.method} {urlsplit(exchange.url).path} (HTTP {exchange.status})"
        used = _fhir_base_of(exchange.url, base)
        problem = _media_problem(exchange, used is not None and "/oauth2/" not in exchange.url)
        if problem:
            return RequirementFailed(MEDIA, f"{what}: {problem}")
        if used is None:
            continue
        for where, url in minted_urls(exchange):
            if not url.startswith(used + "/"):
                return RequirementFailed(MINTED, f"{what}: {where} {url!r} does not start with {used}/ (the FHIR "
                                         "base the client used); a client following it would lose its way")
    return None

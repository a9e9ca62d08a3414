"""Transport rules every KT1 exchange with the target must follow, judged at the end of each scenario.

Real clients depend on headers and minted URLs as much as on bodies: the Python connector refuses any answer
that is not labelled application/json, and follows the links the server mints (bundle links, MessageHeader
self links, Content-Location, the launch's `iss`).  So for every answer the target gave in a scenario:

- KT1-META-JSON-CONTENT-TYPE: a JSON Content-Type on every answer that is not XML by request - error answers
  and empty ones included (redirects excepted);
- KT1-URL-MINTED: every URL the server mints for itself starts with the address the client used, or with the
  target's declared public base (`[targets.NAME] public_base`).

Only the target's own answers are judged (not the bench's webhook receiver); URLs that name the senders'
resources (data references) are the senders', not the server's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ktbench.core.errors import RequirementFailed
from ktbench.core.events import HttpExchange
from ktbench.http.client import origin_of
from ktbench.targets.model import Target

CONTENT_TYPE = "KT1-META-JSON-CONTENT-TYPE"
MINTED = "KT1-URL-MINTED"
REQUIREMENTS = (CONTENT_TYPE, MINTED)


def _server_minted(entry: dict[str, Any]) -> bool:
    """MessageHeaders and the ActivityDefinitions of Other/_search are the server's; every other entry (the
    resources a message carries, UserMessages and statuses included) is named by its sender."""
    kind = (entry.get("content") or {}).get("resourceType")
    return kind == "MessageHeader" or (kind == "Other" and "/Other/ActivityDefinition:" in str(entry.get("id")))


def _asked_xml(exchange: HttpExchange) -> bool:
    wanted = " ".join(filter(None, (exchange.header("accept", response=False),
                                    exchange.header("content-type", response=False)))).lower()
    return "xml" in wanted or "_format=xml" in exchange.url.lower()


def _body(exchange: HttpExchange) -> Any:
    try:
        return json.loads(exchange.response_body) if exchange.response_body.lstrip().startswith("{") else None
    except ValueError:
        return None


def minted_urls(exchange: HttpExchange) -> Iterator[tuple[str, str]]:
    """(where, url) for every URL the server minted for itself in this answer."""
    path = urlsplit(exchange.url).path
    location = exchange.header("location")
    if location and path.endswith("/Launch"):
        for iss in parse_qs(urlsplit(location).query).get("iss", []):
            yield "the launch redirect's iss", iss
    elif location and 200 <= (exchange.status or 0) < 300:
        yield "Location", location
    content_location = exchange.header("content-location")
    if content_location:
        yield "Content-Location", content_location
    body = _body(exchange)
    if not isinstance(body, dict):
        return
    if body.get("resourceType") == "Conformance":
        for rest in body.get("rest") or []:
            for ext in ((rest or {}).get("security") or {}).get("extension") or []:
                if isinstance(ext, dict) and isinstance(ext.get("valueUri"), str):
                    yield "the Conformance OAuth URI", ext["valueUri"]
        return
    for link in body.get("link") or []:
        if isinstance(link, dict) and isinstance(link.get("href"), str):
            yield f"the bundle's {link.get('rel')} link", link["href"]
    for entry in body.get("entry") or []:
        if not isinstance(entry, dict) or not _server_minted(entry):
            continue
        if isinstance(entry.get("id"), str) and "://" in entry["id"]:
            yield "an entry id", entry["id"]
        for link in entry.get("link") or []:
            if isinstance(link, dict) and link.get("rel") == "self" and isinstance(link.get("href"), str):
                yield "an entry's self link", link["href"]


def check(exchanges: Sequence[HttpExchange], target: Target) -> BaseException | None:
    origin = origin_of(target.url)
    base = (target.setting("public_base") or target.url).rstrip("/")
    declared = " (the declared public_base)" if target.setting("public_base") else " (the address the bench used)"
    for exchange in exchanges:
        if exchange.status is None or origin_of(exchange.url) != origin:
            continue
        what = f"{exchange.method} {urlsplit(exchange.url).path} (HTTP {exchange.status})"
        content_type = (exchange.header("content-type") or "").lower()
        if not 300 <= exchange.status < 400 and exchange.method not in ("OPTIONS", "HEAD") \
                and not _asked_xml(exchange) and not content_type.startswith("application/json"):
            return RequirementFailed(CONTENT_TYPE, f"{what} was answered with Content-Type "
                                     f"{exchange.header('content-type')!r}; every answer that is not XML by request, "
                                     "errors and empty ones included, must be application/json")
        for where, url in minted_urls(exchange):
            if not url.startswith(base + "/"):
                return RequirementFailed(MINTED, f"{what}: {where} {url!r} does not start with {base}{declared}; "
                                         f"a client following it would leave the server it talks to")
    return None

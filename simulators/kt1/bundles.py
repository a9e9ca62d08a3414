"""Building DSTU1 bundles (Atom feeds in JSON form) the way real KT1 servers shape them.

Shapes follow captured server replies: `totalResults` is a string, `link` is
always an array, entries carry `id`, `updated`, a self link and `content`.
"""

from __future__ import annotations

import uuid
from typing import Any

from ktbench.fhir.dstu1.constants import (
    DOMAIN_TAG_PREFIX,
    MESSAGE_TAG_TERM,
    SECURITY_TAG_SCHEME,
    TAG_SCHEME,
)
from simulators.kt1.errors import bad_request


def domain_category(domain: str) -> dict[str, str]:
    return {"term": DOMAIN_TAG_PREFIX + domain, "label": domain, "scheme": SECURITY_TAG_SCHEME}


def message_category() -> dict[str, str]:
    return {"term": MESSAGE_TAG_TERM, "scheme": TAG_SCHEME}


def feed(*, title: str, updated: str, base: str, self_link: str, entries: list[dict[str, Any]],
         total: int | None = None, extra_links: list[dict[str, str]] | None = None,
         categories: list[dict[str, str]] | None = None, with_entry_key: bool = True) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": "urn:uuid:" + str(uuid.uuid4()),
        "title": title,
        "updated": updated,
        "author": [{"name": "ktbench KT1 reference server"}],
        "totalResults": str(len(entries) if total is None else total),
        "link": [{"rel": "fhir-base", "href": base + "/FHIR/Koppeltaal"},
                 {"rel": "self", "href": self_link}] + list(extra_links or []),
    }
    if categories:
        bundle["category"] = categories
    if entries or with_entry_key:
        bundle["entry"] = entries
    return bundle


def entry(*, entry_id: str, self_link: str | None, content: dict[str, Any], updated: str,
          title: str | None = None, categories: list[dict[str, str]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if title:
        item["title"] = title
    item["id"] = entry_id
    item["updated"] = updated
    if self_link:
        item["link"] = [{"rel": "self", "href": self_link}]
    if categories:
        item["category"] = categories
    item["content"] = content
    return item


def as_list(value: Any, where: str) -> list[Any]:
    """A repeating element of an incoming body: absent means empty, anything but an array is a 400."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{where} must be an array", "structure")
    return value



"""Resource links in KT1: a resource is named by its history-less URL; a version rides after `/_history/`.

Clients send links with any host (the Python connector rewrites hosts), so
identity comparisons use these helpers rather than raw string equality.
"""

from __future__ import annotations

from urllib.parse import urlsplit

HISTORY = "/_history/"


def strip_history(url: str) -> str:
    """`…/Patient/1/_history/7` -> `…/Patient/1`."""
    head, sep, _ = url.partition(HISTORY)
    return head if sep else url


def version_of(url: str) -> str | None:
    """The version after `/_history/`, or None when the link is history-less (or the version is empty)."""
    _, sep, tail = url.partition(HISTORY)
    if not sep:
        return None
    return tail or None


def with_version(url: str, version: str) -> str:
    return f"{strip_history(url)}{HISTORY}{version}"


def path_of(url: str) -> str:
    """The path of an absolute or relative URL: the only part of a server-minted link clients rely on."""
    return urlsplit(url).path if "://" in url else url.split("?", 1)[0]


def last_segment(url: str) -> str:
    return strip_history(url).rstrip("/").rsplit("/", 1)[-1]


def entry_self_link(entry: dict) -> str | None:
    """The `self` href of a bundle entry, or None.

    Tolerates `link` sent as a single object instead of an array (the Kick-ASS JS game does that), so the
    server, the validator and the actors all read the same link from the same entry.
    """
    links = entry.get("link")
    if isinstance(links, dict):
        links = [links]
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "self" and isinstance(link.get("href"), str):
            return link["href"]
    return None

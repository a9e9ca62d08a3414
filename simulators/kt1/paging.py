"""Paging links of the KT1 server's searches (Atom-style `rel`/`href`), built once for every search.

A page is `page=N` on the search URL with the other parameters kept and `_count` fixed; links: self, first,
last, next (unless the last page, or `with_next` is off), previous.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

_DROPPED = ("page", "_format", "_")


def page_links(url: str, params: Mapping[str, str], page: int, count: int, total: int, *,
               with_next: bool = True, with_previous: bool = True) -> tuple[str, list[dict[str, str]]]:
    """(self href, [first, last, next?, previous?]) for page `page` of `total` results, `count` a page."""
    query = {k: v for k, v in params.items() if k not in _DROPPED}
    query["_count"] = str(count)

    def link(rel: str, number: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{url}?{urlencode({**query, 'page': str(number)})}"}

    last = max(1, -(-total // count))
    links = [link("first", 1), link("last", last)]
    if page < last and with_next:
        links.append(link("next", page + 1))
    if page > 1 and with_previous:
        links.append(link("previous", page - 1))
    return link("self", page)["href"], links

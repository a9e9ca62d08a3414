"""searchset and history Bundles, assembled from stored JSON bytes without parsing them again.

Every searchset has `total`, a `self` link and, when more results exist, absolute `next` (and `previous`)
links under the public base; entries have `fullUrl` and `search.mode` (match or include).
"""

from __future__ import annotations

from urllib.parse import urlencode

from simulators.kt2.fhir.instants import instant
from simulators.kt2.http import dumps
from simulators.kt2.ids import new_uuid


def _page_url(base: str, rtype: str, params: list[tuple[str, str]], offset: int | None) -> str:
    items = list(params)
    if offset:
        items.append(("_offset", str(offset)))
    query = urlencode(items)
    return f"{base}/{rtype}" + (f"?{query}" if query else "")


def paging_links(base: str, rtype: str, params: list[tuple[str, str]], total: int, offset: int, count: int,
                 relative: bool = False) -> list[dict]:
    links = [{"relation": "self", "url": _page_url(base, rtype, params, offset)}]
    link_base = "" if relative else base
    if count and offset + count < total:
        url = _page_url(link_base, rtype, params, offset + count)
        links.append({"relation": "next", "url": url.lstrip("/") if relative else url})
    if count and offset > 0:
        links.append({"relation": "previous", "url": _page_url(base, rtype, params, max(0, offset - count))})
    return links


def _head(kind: str, now_ms: int, total: int | None, links: list[dict]) -> bytes:
    head: dict = {"resourceType": "Bundle", "id": new_uuid(), "meta": {"lastUpdated": instant(now_ms)},
                  "type": kind}
    if total is not None:
        head["total"] = total
    head["link"] = links
    return dumps(head)[:-1]


def searchset(base: str, now_ms: int, total: int | None, links: list[dict],
              entries: list[tuple[str, str, bytes, str]]) -> bytes:
    """`entries`: (type, id, body, mode)."""
    parts = [b'{"fullUrl":' + dumps(f"{base}/{rtype}/{rid}") + b',"resource":' + body +
             b',"search":{"mode":"' + mode.encode() + b'"}}' for rtype, rid, body, mode in entries]
    tail = (b',"entry":[' + b",".join(parts) + b"]") if parts else b""
    return _head("searchset", now_ms, total, links) + tail + b"}"


_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


def history(base: str, rtype: str, now_ms: int, total: int, links: list[dict], rows: list,
            drop_deletes: bool = False) -> bytes:
    """`rows`: (id, version, updated_ms, method, body) newest first."""
    parts = []
    for rid, version, updated_ms, method, body in rows:
        if drop_deletes and body is None:
            continue
        url = rtype if method == "POST" else f"{rtype}/{rid}"
        entry = b'{"fullUrl":' + dumps(f"{base}/{rtype}/{rid}")
        if body is not None:
            entry += b',"resource":' + body
        entry += b',"request":' + dumps({"method": method, "url": url})
        entry += b',"response":' + dumps({"status": _STATUS[method], "etag": f'W/"{version}"',
                                          "lastModified": instant(updated_ms)}) + b"}"
        parts.append(entry)
    tail = (b',"entry":[' + b",".join(parts) + b"]") if parts else b""
    return _head("history", now_ms, total, links) + tail + b"}"

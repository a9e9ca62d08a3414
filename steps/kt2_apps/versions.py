"""Which version of a resource was current when the application sent a PUT: read from the recording.

The voorziening answers every create, read and update with an ETag (W/"<version>"); the version current
just before a PUT is the ETag of the latest successful exchange on that resource before it, whoever sent it.
"""

from __future__ import annotations

from ktbench.http.inbound import InboundExchange
from steps.kt2_apps.world import fhir_path, json_of


def resource_of(item: InboundExchange) -> str | None:
    """"Type/id" an exchange was about: the path's, or for a create the id of the created resource."""
    path = fhir_path(item).split("?")[0]
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and not parts[1].startswith("_"):
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 1 and item.method == "POST" and item.status == 201:
        made = json_of(item.response_body)
        if made.get("id"):
            return f"{parts[0]}/{made['id']}"
    return None


def version_before(log_items: list[InboundExchange], put: InboundExchange) -> str | None:
    """The ETag version of `put`'s resource current just before it (None: never seen)."""
    target = resource_of(put)
    current = None
    for item in log_items:
        if item.seq >= put.seq:
            break
        if 200 <= item.status < 300 and resource_of(item) == target and item.method in ("GET", "POST", "PUT"):
            etag = item.header("etag", response=True)
            if etag:
                current = etag.removeprefix("W/").strip('"')
    return current

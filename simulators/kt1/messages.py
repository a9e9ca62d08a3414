"""MessageHeader `_search` and the ProcessingStatus PUT: the claim cycle of a KT1 mailbox.

A recipient claims its oldest New message (`GetNextNewAndClaim`), processes it
and acks Success, Failed (+exception) or New.  Claims that are not acked in
time fall back to New; after too many expired claims the message is parked as
MaximumRetriesExceeded.  Searches never cross the caller's own mailbox.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import urlencode

from ktbench.fhir.dstu1.constants import (
    CLAIM_QUERY,
    EXT_IS_EXPIRED,
    EXT_PROCESSING_STATUS,
    EXT_PS_EXCEPTION,
    EXT_PS_LAST_CHANGED,
    EXT_PS_STATUS,
    MESSAGE_EVENTS,
    MESSAGE_HEADER_PATH,
    MESSAGE_HEADER_SEARCH_PATH,
    PROCESSING_STATUSES,
)
from ktbench.fhir.dstu1.links import HISTORY, strip_history, version_of
from simulators.kt1 import bundles
from simulators.kt1.caller import Caller
from simulators.kt1.context import Kt1Context
from simulators.kt1.errors import bad_request, not_found
from simulators.kt1.http import MAX_ID, whole_number
from simulators.kt1.paging import page_links
from simulators.kt1.store import dumps, loads

MAX_COUNT = 1000
DEFAULT_COUNT = 50
# Statuses a client may set with a PUT; the others are the server's to give.
CLIENT_STATUSES = ("New", "Claimed", "Success", "Failed")
_KNOWN_PARAMS = {"_query", "_summary", "_count", "_id", "patient", "event", "processingstatus", "page",
                 "_format", "_"}


def normalise_params(items: list[tuple[str, str]]) -> dict[str, str]:
    """Search parameter names are case-insensitive (a JS client sends `processingStatus`)."""
    params: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key not in _KNOWN_PARAMS:
            raise bad_request(f"Unknown search parameter '{name}'", "not-supported")
        if key in params and params[key] != value:
            raise bad_request(f"Search parameter '{name}' given twice", "invalid")
        params[key] = value
    return params


def search(ctx: Kt1Context, caller: Caller, items: list[tuple[str, str]], base: str) -> dict[str, Any]:
    params = normalise_params(items)
    event = params.get("event")
    if event is not None and event not in MESSAGE_EVENTS:
        raise bad_request(f"Unknown event '{event}'", "code-unknown")
    status = params.get("processingstatus")
    if status is not None:
        status = _canonical_status(status)
    query = params.get("_query")
    if query is not None:
        if query != CLAIM_QUERY:
            raise bad_request(f"Unknown named query '{query}'", "not-supported")
        if status is not None:
            raise bad_request("ProcessingStatus cannot be combined with the named query "
                              f"{CLAIM_QUERY}", "invalid")
        return claim_next(ctx, caller, params.get("patient"), event, base)
    if "_id" in params:
        return by_id(ctx, caller, params["_id"], base)
    return summary(ctx, caller, params, event, status, base)


def _canonical_status(value: str) -> str:
    for status in PROCESSING_STATUSES:
        if status.lower() == value.lower():
            return status
    raise bad_request(f"Unknown ProcessingStatus '{value}'", "code-unknown")


def _patient_filter(ctx: Kt1Context, caller: Caller, patient: str | None) -> str | None:
    """A Bearer token narrows every search to its own patient."""
    if caller.via_token and not ctx.fault("bearer-any-patient"):
        if patient is not None and strip_history(patient) != caller.patient:
            return "\x00no-such-patient"
        return caller.patient
    return strip_history(patient) if patient else None


def expire_claims(ctx: Kt1Context) -> None:
    """Claims older than the timeout fall back to New (or MaximumRetriesExceeded)."""
    if ctx.fault("claim-never-expires"):
        return
    deadline = ctx.now() - ctx.settings.claim_timeout_seconds
    rows = ctx.store.all("SELECT id, claim_expiries FROM messages WHERE status = 'Claimed' AND claimed_at < ?",
                         (deadline,))
    if not rows:
        return
    stamp = ctx.instant()
    for row in rows:
        expiries = row["claim_expiries"] + 1
        give_up = expiries >= ctx.settings.max_claim_expiries and not ctx.fault("no-max-retries")
        ctx.store.update_message(row["id"], status="MaximumRetriesExceeded" if give_up else "New",
                                 claim_expiries=expiries, claimed_at=None, last_changed=stamp,
                                 version=ctx.next_version())


def claim_next(ctx: Kt1Context, caller: Caller, patient: str | None, event: str | None,
               base: str) -> dict[str, Any]:
    with ctx.store.transaction():
        expire_claims(ctx)
        sql = "SELECT * FROM messages WHERE domain = ? AND recipient = ? AND status = 'New'"
        args: list[Any] = [caller.domain, caller.app.id]
        wanted_patient = _patient_filter(ctx, caller, patient)
        if wanted_patient is not None:
            sql += " AND patient = ?"
            args.append(wanted_patient)
        if event is not None:
            sql += " AND event = ?"
            args.append(event)
        row = ctx.store.one(sql + " ORDER BY id LIMIT 1", tuple(args))
        if row is not None and not ctx.fault("double-claim"):
            stamp = ctx.instant()
            claimed = {"status": "Claimed", "claimed_at": ctx.now(), "last_changed": stamp,
                       "version": ctx.next_version()}
            ctx.store.update_message(row["id"], **claimed)
            row = {**dict(row), **claimed}  # the row as stored now, without reading it back
    self_link = base + MESSAGE_HEADER_SEARCH_PATH + "?_query=" + CLAIM_QUERY
    if row is None:
        return bundles.feed(title="No new messages", updated=ctx.instant(), base=base, self_link=self_link,
                            entries=[], with_entry_key=not ctx.fault("empty-claim-without-entry"))
    result = message_bundle(ctx, row, base, self_link)
    if ctx.fault("claim-next-link"):
        result["link"].append({"rel": "next", "href": self_link + "&page=2"})
    return result


def by_id(ctx: Kt1Context, caller: Caller, raw_id: str, base: str) -> dict[str, Any]:
    message_id = parse_message_id(raw_id)
    self_link = base + MESSAGE_HEADER_SEARCH_PATH + "?" + urlencode({"_id": raw_id})
    with ctx.store.transaction():
        expire_claims(ctx)
        row = _visible(ctx, caller, message_id)
    if row is None:
        return bundles.feed(title="Message not found", updated=ctx.instant(), base=base, self_link=self_link,
                            entries=[])
    return message_bundle(ctx, row, base, self_link)


def parse_message_id(raw: str) -> int:
    """`17`, `<any host>/FHIR/Koppeltaal/MessageHeader/17` and `…/17/_history/<v>` all name message 17."""
    candidate = strip_history(raw.strip()).rstrip("/").rsplit("/", 1)[-1]
    number = whole_number(candidate)
    if number is None:
        raise bad_request(f"'{raw}' is not a MessageHeader id or URL", "invalid")
    return number


def _visible(ctx: Kt1Context, caller: Caller, message_id: int) -> sqlite3.Row | None:
    row = ctx.store.message(message_id)
    if row is None or row["domain"] != caller.domain or row["recipient"] != caller.app.id:
        return None
    wanted = _patient_filter(ctx, caller, None)
    if wanted is not None and row["patient"] != wanted:
        return None
    return row


def summary(ctx: Kt1Context, caller: Caller, params: dict[str, str], event: str | None,
            status: str | None, base: str) -> dict[str, Any]:
    count = _count(params.get("_count"))
    page = _page(params.get("page"))
    if ctx.fault("status-filter-ignored"):
        status = None
    where = "domain = ? AND recipient = ?"
    args: list[Any] = [caller.domain, caller.app.id]
    wanted_patient = _patient_filter(ctx, caller, params.get("patient"))
    if wanted_patient is not None:
        where += " AND patient = ?"
        args.append(wanted_patient)
    if event is not None:
        where += " AND event = ?"
        args.append(event)
    if status is not None:
        where += " AND status = ?"
        args.append(status)
    with ctx.store.transaction():
        expire_claims(ctx)
        total = ctx.store.one(f"SELECT COUNT(*) AS n FROM messages WHERE {where}", tuple(args))["n"]
        if ctx.fault("paging-ignored"):
            rows = ctx.store.all(f"SELECT * FROM messages WHERE {where} ORDER BY id DESC", tuple(args))
        else:
            rows = ctx.store.all(f"SELECT * FROM messages WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                                 (*args, count, min((page - 1) * count, MAX_ID)))  # pages past the end are empty
    self_link, links = page_links(f"{base}{MESSAGE_HEADER_SEARCH_PATH}", params, page, count, total,
                                  with_next=not ctx.fault("paging-ignored"))
    return bundles.feed(title="Search on MessageHeader", updated=ctx.instant(), base=base,
                        self_link=self_link, entries=[header_entry(ctx, r, base) for r in rows],
                        total=total, extra_links=links)


def _count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_COUNT
    number = whole_number(raw)
    if number is None:
        raise bad_request(f"_count must be a whole number, got '{raw}'", "invalid")
    return max(1, min(MAX_COUNT, number))


def _page(raw: str | None) -> int:
    if raw is None:
        return 1
    number = whole_number(raw)
    if number is None or number < 1:
        raise bad_request(f"page must be a whole number from 1, got '{raw}'", "invalid")
    return number


def header_url(base: str, message_id: int) -> str:
    return f"{base}{MESSAGE_HEADER_PATH}/{message_id}"


def header_content(row: sqlite3.Row, local_time_format: bool = False) -> dict[str, Any]:
    header = loads(row["header"])
    last_changed = row["last_changed"]
    if local_time_format:  # fault last-changed-not-instant: a .NET DateTime.ToString() instead of an instant
        last_changed = last_changed[:19].replace("-", "/").replace("T", " ")
    status_ext = [{"url": EXT_PS_STATUS, "valueCode": row["status"]},
                  {"url": EXT_PS_LAST_CHANGED, "valueInstant": last_changed}]
    if row["exception"]:
        status_ext.append({"url": EXT_PS_EXCEPTION, "valueString": row["exception"]})
    header.setdefault("extension", [])
    header["extension"] = header["extension"] + [
        {"url": EXT_PROCESSING_STATUS, "extension": status_ext},
        {"url": EXT_IS_EXPIRED, "valueBoolean": row["status"] == "MaximumRetriesExceeded"},
    ]
    return header


def header_entry(ctx: Kt1Context, row: sqlite3.Row, base: str) -> dict[str, Any]:
    url = header_url(base, row["id"])
    content = header_content(row, ctx.fault("last-changed-not-instant"))
    return bundles.entry(title=f"MessageHeader with IID={row['id']}", entry_id=url,
                         self_link=f"{url}{HISTORY}{row['version']}", content=content, updated=row["last_changed"])


def message_bundle(ctx: Kt1Context, row: sqlite3.Row, base: str, self_link: str) -> dict[str, Any]:
    """The complete message: header entry (its self link is the ack URL) plus every resource entry."""
    entries = [header_entry(ctx, row, base)] + loads(row["entries"])
    return bundles.feed(title=f"Message {row['identifier']}", updated=row["last_changed"], base=base,
                        self_link=self_link, entries=entries,
                        categories=[bundles.domain_category(row["domain"]), bundles.message_category()])


def acknowledge(ctx: Kt1Context, caller: Caller, path_tail: str, body: dict[str, Any], base: str) -> dict:
    """PUT …/MessageHeader/<id>[/_history/<v>]: only ProcessingStatus and its exception change."""
    message_id = parse_message_id(path_tail)
    if version_of(path_tail) is None and ctx.fault("reject-historyless-ack"):
        raise not_found("MessageHeader updates need a versioned URL")
    if body.get("resourceType") != "MessageHeader":
        raise bad_request("The body of a ProcessingStatus update must be a MessageHeader", "structure")
    status, exception = _status_from(body)
    with ctx.store.transaction():
        row = _visible(ctx, caller, message_id)
        if row is None:
            raise not_found(f"MessageHeader {message_id} not found")
        stamp = ctx.instant()
        changes: dict[str, Any] = {
            "status": status,
            "exception": exception if status == "Failed" else None,
            "last_changed": stamp,
            "version": ctx.next_version(),
            "claimed_at": ctx.now() if status == "Claimed" else None,
        }
        if ctx.fault("ack-overwrites-header"):
            stored = {k: v for k, v in body.items() if k != "extension"}
            changes["header"] = dumps(stored)
        ctx.store.update_message(message_id, **changes)
        row = {**dict(row), **changes}  # the row as stored now, without reading it back
    return header_content(row, ctx.fault("last-changed-not-instant"))


def _status_from(body: dict[str, Any]) -> tuple[str, str | None]:
    for ext in bundles.as_list(body.get("extension"), "MessageHeader.extension"):
        if isinstance(ext, dict) and ext.get("url") == EXT_PROCESSING_STATUS:
            status = exception = None
            for sub in bundles.as_list(ext.get("extension"), "MessageHeader#ProcessingStatus.extension"):
                if not isinstance(sub, dict):
                    continue
                if sub.get("url") == EXT_PS_STATUS:
                    status = sub.get("valueCode")
                elif sub.get("url") == EXT_PS_EXCEPTION:
                    exception = sub.get("valueString")
            if status not in CLIENT_STATUSES:
                raise bad_request(f"ProcessingStatus '{status}' cannot be set by a client; "
                                  f"use one of {', '.join(CLIENT_STATUSES)}", "code-unknown")
            if exception is not None and not isinstance(exception, str):
                raise bad_request("ProcessingStatusException must be a string", "structure")
            return status, exception
    raise bad_request("The MessageHeader has no ProcessingStatus extension", "required")

"""ActivityDefinitions, which KT1 carries as `Other` resources with code ActivityDefinition.

Served per domain from `Other/_search?code=ActivityDefinition`; archived ones
only with `includearchived=yes`.  Create (POST) and update (PUT on the
versioned link) answer with `Content-Location`, the only way the Python
connector learns the new versioned link.
"""

from __future__ import annotations

import copy
import sqlite3
from typing import Any

from ktbench.fhir.dstu1.constants import (
    ACTIVITY_KINDS,
    AD_IDENTIFIER_SYSTEM,
    AD_PREFIX,
    LAUNCH_TYPES,
    NAMESPACE,
    OTHER_PATH,
    OTHER_SEARCH_PATH,
    OTHER_USAGE_SYSTEM,
    PROFILE_TAG_SCHEME,
    TEXT_WRONG_VERSION,
)
from ktbench.fhir.dstu1.links import HISTORY, version_of
from simulators.kt1 import bundles
from simulators.kt1.caller import Caller
from simulators.kt1.context import Kt1Context
from simulators.kt1.data import SeedActivity
from simulators.kt1.errors import FhirError, bad_request, conflict, not_found
from simulators.kt1.http import MAX_ID, whole_number
from simulators.kt1.paging import page_links
from simulators.kt1.store import dumps, loads

ACTIVITY_KIND_SYSTEM = NAMESPACE + "ActivityKind"
_KIND_DISPLAY = {"ELearning": "E-Learning"}
_SEARCH_PARAMS = {"code", "includearchived", "_count", "page", "_format", "_"}


def seed(ctx: Kt1Context) -> None:
    """Store the data file's ActivityDefinitions once (a file database keeps later edits)."""
    with ctx.store.transaction():
        for ad in ctx.data.activities:
            exists = ctx.store.one("SELECT 1 FROM activities WHERE domain = ? AND identifier = ?",
                                   (ad.domain, ad.identifier))
            if not exists:
                content = seed_content(ad)
                ctx.store.execute(
                    "INSERT INTO activities(domain, identifier, version, archived, content) VALUES (?,?,?,?,?)",
                    (ad.domain, ad.identifier, ctx.next_version(), int(ad.archived), dumps(content)))


def seed_content(ad: SeedActivity) -> dict[str, Any]:
    ext = [
        {"url": AD_PREFIX + "ActivityDefinitionIdentifier", "valueString": ad.identifier},
        {"url": AD_PREFIX + "Application", "valueResource": {"display": ad.application}},
        {"url": AD_PREFIX + "ActivityKind", "valueCoding": {
            "system": ACTIVITY_KIND_SYSTEM, "code": ad.kind, "display": _KIND_DISPLAY.get(ad.kind, ad.kind)}},
        {"url": AD_PREFIX + "ActivityName", "valueString": ad.name},
    ]
    if ad.description:
        ext.append({"url": AD_PREFIX + "ActivityDescription", "valueString": ad.description})
    ext += [
        {"url": AD_PREFIX + "LaunchType", "valueCode": ad.launch_type},
        {"url": AD_PREFIX + "IsActive", "valueBoolean": ad.active},
        {"url": AD_PREFIX + "IsDomainSpecific", "valueBoolean": ad.domain_specific},
        {"url": AD_PREFIX + "IsArchived", "valueBoolean": ad.archived},
    ]
    return {
        "resourceType": "Other",
        "code": {"coding": [{"system": OTHER_USAGE_SYSTEM, "code": "ActivityDefinition",
                             "display": "ActivityDefinition"}]},
        "extension": ext,
    }


def _ext(content: dict[str, Any], name: str) -> dict[str, Any] | None:
    for ext in bundles.as_list(content.get("extension"), "Other.extension"):
        if isinstance(ext, dict) and ext.get("url") == AD_PREFIX + name:
            return ext
    return None


def check_activity(content: dict[str, Any]) -> tuple[str, bool]:
    """Validate a posted ActivityDefinition; returns (identifier, archived)."""
    if content.get("resourceType") != "Other":
        raise bad_request("An ActivityDefinition is sent as an Other resource", "structure")
    codings = (content.get("code") or {}).get("coding") if isinstance(content.get("code"), dict) else None
    if not isinstance(codings, list) or not any(
            isinstance(c, dict) and c.get("system") == OTHER_USAGE_SYSTEM and c.get("code") == "ActivityDefinition"
            for c in codings):
        raise bad_request("Other.code must be ActivityDefinition", "code-unknown")
    ident = _ext(content, "ActivityDefinitionIdentifier")
    if ident is None or not isinstance(ident.get("valueString"), str) or not ident["valueString"]:
        raise bad_request("ActivityDefinition#ActivityDefinitionIdentifier is required", "required")
    name = _ext(content, "ActivityName")
    if name is None or not isinstance(name.get("valueString"), str) or not name["valueString"]:
        raise bad_request("ActivityDefinition#ActivityName is required", "required")
    kind = _ext(content, "ActivityKind")
    code = (kind or {}).get("valueCoding", {}).get("code") if isinstance((kind or {}).get("valueCoding"),
                                                                         dict) else None
    if code not in ACTIVITY_KINDS:
        raise bad_request(f"ActivityDefinition#ActivityKind must be one of {', '.join(ACTIVITY_KINDS)}",
                          "code-unknown")
    launch = _ext(content, "LaunchType")
    if launch is not None and launch.get("valueCode") not in LAUNCH_TYPES:
        raise bad_request(f"ActivityDefinition#LaunchType must be one of {', '.join(LAUNCH_TYPES)}",
                          "code-unknown")
    for flag in ("IsActive", "IsDomainSpecific", "IsArchived"):
        ext = _ext(content, flag)
        if ext is not None and not isinstance(ext.get("valueBoolean"), bool):
            raise bad_request(f"ActivityDefinition#{flag} must be a valueBoolean", "structure")
    archived = _ext(content, "IsArchived")
    return ident["valueString"], bool(archived and archived["valueBoolean"])


def _served_content(row: sqlite3.Row) -> dict[str, Any]:
    content = loads(row["content"])
    content["id"] = str(row["id"])
    content["identifier"] = [{"system": AD_IDENTIFIER_SYSTEM, "value": row["identifier"]}]
    kind = (_ext(content, "ActivityKind") or {}).get("valueCoding", {}).get("code", "")
    # JSON narrative the way real KT1 servers write it: `<div>` without the implied XHTML namespace
    # (the XML codec adds it), so JSON -> XML -> JSON gives the same text back.
    content["text"] = {"status": "generated",
                       "div": f"<div>ActivityDefinition with type={_xml_escape(kind)} "
                              f"and Identifier={_xml_escape(row['identifier'])}</div>"}
    return content


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def activity_url(base: str, row_id: int) -> str:
    return f"{base}{OTHER_PATH}/ActivityDefinition:{row_id}"


def activity_entry(ctx: Kt1Context, row: sqlite3.Row, base: str) -> dict[str, Any]:
    url = activity_url(base, row["id"])
    return bundles.entry(
        title=f"Other resource with subtype=ActivityDefinition and IID={row['id']}", entry_id=url,
        self_link=f"{url}{HISTORY}{row['version']}", content=_served_content(row), updated=ctx.instant(),
        categories=[{"term": f"{base}/FHIR/Koppeltaal/Profile/ActivityDefinition",
                     "label": "Koppeltaal ActivityDefinition profile", "scheme": PROFILE_TAG_SCHEME}])


def search(ctx: Kt1Context, caller: Caller, items: list[tuple[str, str]], base: str) -> dict[str, Any]:
    params: dict[str, str] = {}
    for name, value in items:
        if name.lower() not in _SEARCH_PARAMS:
            raise bad_request(f"Unknown search parameter '{name}'", "not-supported")
        params[name.lower()] = value
    if params.get("code") != "ActivityDefinition":
        raise bad_request("Other/_search needs code=ActivityDefinition", "not-supported")
    include = params.get("includearchived", "no").lower()
    if include not in ("yes", "no", "true", "false"):
        raise bad_request("includearchived must be yes or no", "invalid")
    with_archived = include in ("yes", "true") or ctx.fault("archived-activities-listed")
    count = whole_number(params.get("_count", "100"))
    page_n = whole_number(params.get("page", "1"))
    if count is None or page_n is None or page_n < 1:
        raise bad_request("_count and page must be whole numbers", "invalid")
    count_n = max(1, min(1000, count))
    where = "domain = ?" + ("" if with_archived else " AND archived = 0")
    with ctx.store.transaction():
        total = ctx.store.one(f"SELECT COUNT(*) AS n FROM activities WHERE {where}", (caller.domain,))["n"]
        rows = ctx.store.all(f"SELECT * FROM activities WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                             (caller.domain, count_n, min((page_n - 1) * count_n, MAX_ID)))
    self_link, links = page_links(f"{base}{OTHER_SEARCH_PATH}", params, page_n, count_n, total,
                                  with_previous=False)
    return bundles.feed(title="Search on resources in collection 'Other'", updated=ctx.instant(), base=base,
                        self_link=self_link, entries=[activity_entry(ctx, r, base) for r in rows],
                        total=total, extra_links=links)


def _stored(ctx: Kt1Context, caller: Caller, body: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    identifier, archived = check_activity(body)
    content = copy.deepcopy(body)
    for key in ("id", "identifier", "text", "meta"):
        content.pop(key, None)
    # The server names the owning application: the instance that publishes the definition.
    app_ext = _ext(content, "Application")
    if app_ext is None:
        content.setdefault("extension", []).append({"url": AD_PREFIX + "Application",
                                                    "valueResource": {"display": caller.app.id}})
    else:
        value = app_ext.get("valueResource") if isinstance(app_ext.get("valueResource"), dict) else {}
        app_ext["valueResource"] = {**value, "display": caller.app.id}
    return identifier, archived, content


def create(ctx: Kt1Context, caller: Caller, body: dict[str, Any], base: str) -> tuple[dict, dict[str, str]]:
    identifier, archived, content = _stored(ctx, caller, body)
    with ctx.store.transaction():
        if ctx.store.one("SELECT 1 FROM activities WHERE domain = ? AND identifier = ?",
                         (caller.domain, identifier)):
            raise FhirError.one(409, f"An ActivityDefinition with identifier '{identifier}' already exists",
                                "duplicate")
        version = ctx.next_version()
        cur = ctx.store.execute(
            "INSERT INTO activities(domain, identifier, version, archived, content) VALUES (?,?,?,?,?)",
            (caller.domain, identifier, version, int(archived), dumps(content)))
        row = ctx.store.one("SELECT * FROM activities WHERE id = ?", (cur.lastrowid,))
    return _served_content(row), _location(ctx, base, row)


def update(ctx: Kt1Context, caller: Caller, tail: str, body: dict[str, Any], base: str) -> tuple[dict, dict]:
    row_id = _parse_tail(tail)
    version = version_of(tail)
    identifier, archived, content = _stored(ctx, caller, body)
    with ctx.store.transaction():
        row = ctx.store.one("SELECT * FROM activities WHERE id = ? AND domain = ?", (row_id, caller.domain))
        if row is None:
            raise not_found(f"ActivityDefinition:{row_id} not found")
        if version is not None and version != row["version"]:
            raise conflict(TEXT_WRONG_VERSION, activity_url(base, row_id) + HISTORY + version)
        if identifier != row["identifier"]:
            clash = ctx.store.one("SELECT 1 FROM activities WHERE domain = ? AND identifier = ? AND id != ?",
                                  (caller.domain, identifier, row_id))
            if clash:
                raise FhirError.one(409, f"An ActivityDefinition with identifier '{identifier}' already exists",
                                    "duplicate")
        ctx.store.execute("UPDATE activities SET identifier = ?, version = ?, archived = ?, content = ? "
                          "WHERE id = ?", (identifier, ctx.next_version(), int(archived), dumps(content), row_id))
        row = ctx.store.one("SELECT * FROM activities WHERE id = ?", (row_id,))
    return _served_content(row), _location(ctx, base, row)


def read(ctx: Kt1Context, caller: Caller, tail: str) -> dict[str, Any]:
    row_id = _parse_tail(tail)
    row = ctx.store.one("SELECT * FROM activities WHERE id = ? AND domain = ?", (row_id, caller.domain))
    if row is None:
        raise not_found(f"ActivityDefinition:{row_id} not found")
    return _served_content(row)


def _parse_tail(tail: str) -> int:
    head = tail.split(HISTORY, 1)[0].strip("/")
    prefix = "ActivityDefinition:"
    number = whole_number(head[len(prefix):]) if head.startswith(prefix) else None
    if number is None:
        raise not_found(f"No Other resource at '{tail}'")
    return number


def _location(ctx: Kt1Context, base: str, row: sqlite3.Row) -> dict[str, str]:
    if ctx.fault("no-content-location"):
        return {}
    return {"Content-Location": f"{activity_url(base, row['id'])}{HISTORY}{row['version']}"}

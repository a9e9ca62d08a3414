"""POST /Mailbox: accept a message bundle under the KT1.3.5 versioning rules and route copies.

Checks run in the documented order (focal without version, focal with a
wrong version, stale non-focal resources) and answer 409 with the exact texts
real clients compare against.  Acceptance is one transaction: versions,
resources and every recipient's copy are stored together or not at all.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from ktbench.fhir.dstu1.constants import (
    DOMAIN_TAG_PREFIX,
    EXT_IS_EXPIRED,
    EXT_PATIENT,
    EXT_PROCESSING_STATUS,
    MAILBOX_PATH,
    MESSAGE_EVENTS,
    MESSAGE_EVENTS_SYSTEM,
    OTHER_RESOURCE_USAGES,
    OTHER_USAGE_SYSTEM,
    SUPPORTED_RESOURCE_TYPES,
    TEXT_NO_FOCAL_VERSION,
    TEXT_WRONG_VERSION,
)
from ktbench.fhir.dstu1.links import (
    entry_self_link,
    strip_history,
    version_of,
    with_version,
)
from simulators.kt1 import bundles
from simulators.kt1.caller import Caller
from simulators.kt1.context import Kt1Context
from simulators.kt1.data import Application
from simulators.kt1.errors import FhirError, Issue, bad_request, conflict, forbidden
from simulators.kt1.store import dumps

WRONG_TEXT_FAULT = "Version conflict detected."


@dataclass
class ResourceEntry:
    url: str               # history-less URL: the resource's identity within the domain
    version: str | None    # version the sender claims to have seen
    rtype: str
    content: dict[str, Any]
    is_focal: bool = False


@dataclass
class ParsedMessage:
    header: dict[str, Any]
    identifier: str
    event: str
    patient: str | None
    resources: list[ResourceEntry]

    @property
    def focal(self) -> ResourceEntry:
        return next(r for r in self.resources if r.is_focal)


def parse_message(bundle: dict[str, Any], caller: Caller, ctx: Kt1Context) -> ParsedMessage:
    """Structural checks of a message bundle; raises 4xx FhirErrors, stores nothing."""
    if bundle.get("resourceType") != "Bundle":
        raise bad_request("A message must be a Bundle (feed)", "structure")
    _check_domain(bundle, caller, ctx)
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise bad_request("The message bundle has no entries", "structure")
    headers = []
    resources: list[ResourceEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(entries):
        if not isinstance(item, dict) or not isinstance(item.get("content"), dict):
            raise bad_request(f"entry[{i}] has no resource content", "structure")
        content = item["content"]
        rtype = content.get("resourceType")
        if not isinstance(rtype, str) or rtype not in SUPPORTED_RESOURCE_TYPES:
            raise FhirError.one(422, f"The resource type '{rtype}' is not supported", "not-supported")
        if rtype == "MessageHeader":
            headers.append(content)
            continue
        if rtype == "Other":
            _check_other_code(content, i)
        link = entry_self_link(item)
        entry_id = item.get("id")
        ident = entry_id if isinstance(entry_id, str) and entry_id else link
        if not ident:
            raise bad_request(f"entry[{i}] ({rtype}) has neither an id nor a self link", "structure")
        url = strip_history(ident)
        if url in seen:
            raise bad_request(f"entry[{i}]: resource {url} occurs twice in the message", "structure")
        seen.add(url)
        resources.append(ResourceEntry(url, version_of(link) if link else None, rtype, content))
    if len(headers) != 1:
        raise bad_request(f"A message needs exactly one MessageHeader, found {len(headers)}", "structure")
    header = headers[0]
    identifier = header.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        raise bad_request("MessageHeader.identifier is required", "required")
    event = _event_code(header)
    data = header.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict) \
            or not isinstance(data[0].get("reference"), str):
        raise bad_request("MessageHeader.data must reference the focal resource", "required")
    focal_ref = data[0]["reference"]
    focal_url = strip_history(focal_ref)
    for res in resources:
        if res.url == focal_url:
            res.is_focal = True
            res.version = version_of(focal_ref) or res.version
            break
    else:
        raise bad_request(f"The focal resource {focal_url} is not in the message", "structure")
    patient = _patient_ref(header)
    if caller.via_token and patient != caller.patient:
        raise forbidden("The access token does not grant access to this patient")
    return ParsedMessage(header, identifier, event, patient, resources)


def _check_domain(bundle: dict[str, Any], caller: Caller, ctx: Kt1Context) -> None:
    categories = bundle.get("category") or []
    if not isinstance(categories, list):
        raise bad_request("Bundle.category must be an array", "structure")
    for cat in categories:
        term = cat.get("term") if isinstance(cat, dict) else None
        if isinstance(term, str) and term.startswith(DOMAIN_TAG_PREFIX):
            named = term[len(DOMAIN_TAG_PREFIX):]
            if named != caller.domain and not ctx.fault("wrong-domain-accepted"):
                raise forbidden(f"The message is for domain '{named}', "
                                f"but the credentials belong to domain '{caller.domain}'")


def _check_other_code(content: dict[str, Any], index: int) -> None:
    codings = (content.get("code") or {}).get("coding") if isinstance(content.get("code"), dict) else None
    if not isinstance(codings, list):
        raise bad_request(f"entry[{index}]: Other resource without code", "required")
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") == OTHER_USAGE_SYSTEM:
            if coding.get("code") in OTHER_RESOURCE_USAGES:
                return
            raise FhirError.one(422, f"The resource type 'Other/{coding.get('code')}' is not supported",
                                "not-supported")
    raise bad_request(f"entry[{index}]: Other.code has no {OTHER_USAGE_SYSTEM} coding", "code-unknown")


def _event_code(header: dict[str, Any]) -> str:
    event = header.get("event")
    if not isinstance(event, dict) or event.get("system") != MESSAGE_EVENTS_SYSTEM:
        raise bad_request(f"MessageHeader.event must be a coding of {MESSAGE_EVENTS_SYSTEM}", "code-unknown")
    code = event.get("code")
    if code not in MESSAGE_EVENTS:
        raise bad_request(f"Unknown message event '{code}'", "code-unknown")
    return code


def _patient_ref(header: dict[str, Any]) -> str | None:
    for ext in bundles.as_list(header.get("extension"), "MessageHeader.extension"):
        if isinstance(ext, dict) and ext.get("url") == EXT_PATIENT:
            value = ext.get("valueResource")
            ref = value.get("reference") if isinstance(value, dict) else None
            if not isinstance(ref, str) or not ref:
                raise bad_request("MessageHeader#Patient needs a valueResource with a reference", "structure")
            return strip_history(ref)
    return None


def check_versions(ctx: Kt1Context, domain: str, msg: ParsedMessage) -> None:
    """The 1.3.5 versioning rules; runs inside the accepting transaction."""
    skip = ctx.fault("skip-version-check")
    wrong_text = WRONG_TEXT_FAULT if ctx.fault("wrong-conflict-text") else TEXT_WRONG_VERSION
    focal = msg.focal
    current = ctx.store.resource(domain, focal.url)
    if not skip:
        if current is not None and focal.version is None:
            raise conflict(WRONG_TEXT_FAULT if ctx.fault("wrong-conflict-text") else TEXT_NO_FOCAL_VERSION,
                           focal.url)
        if focal.version is not None and (current is None or current["version"] != focal.version):
            raise conflict(wrong_text, with_version(focal.url, focal.version))
    if ctx.fault("stale-non-focal-accepted"):
        return
    issues = []
    for res in msg.resources:
        if res.is_focal or res.version is None:
            continue  # a non-focal resource without a version is accepted (real servers only log it)
        row = ctx.store.resource(domain, res.url)
        if row is not None and row["version"] != res.version:
            issues.append(Issue(wrong_text, "conflict", resource=with_version(res.url, res.version)))
    if issues:
        raise FhirError(409, issues)


def recipients(ctx: Kt1Context, sender: Application, event: str) -> list[Application]:
    apps = ctx.data.applications if ctx.fault("cross-domain-leak") else ctx.data.in_domain(sender.domain)
    chosen = []
    for app in apps:
        if app.id == sender.id and ctx.fault("no-route-to-sender"):
            continue
        if event in app.events or (ctx.fault("route-to-unsubscribed") and app.domain == sender.domain):
            chosen.append(app)
    return chosen


def accept(ctx: Kt1Context, caller: Caller, bundle: dict[str, Any], base: str) -> tuple[dict, list[dict]]:
    """Check, version, store and route one message; returns the reply bundle and queued notifications."""
    msg = parse_message(bundle, caller, ctx)
    domain = caller.domain
    now = ctx.now()
    stamp = ctx.instant(now)
    notifications: list[dict] = []
    with ctx.store.transaction():
        check_versions(ctx, domain, msg)
        ordered = [msg.focal] + [r for r in msg.resources if not r.is_focal]
        minted: dict[str, str] = {}
        for res in ordered:
            minted[res.url] = ctx.next_version()
            ctx.store.put_resource(domain, res.url, res.rtype, minted[res.url], res.content)
        delivered_entries = [
            bundles.entry(entry_id=res.url, self_link=with_version(res.url, minted[res.url]),
                          content=res.content, updated=stamp)
            for res in msg.resources
        ]
        # serialised once for every recipient's copy
        header = dumps(_delivered_header(msg, minted))
        delivered_json = dumps(delivered_entries)
        for app in recipients(ctx, caller.app, msg.event):
            if not ctx.fault("no-replaced-by-new-version"):
                _supersede(ctx, app.domain, app.id, msg.focal.url, stamp)
            message_id = ctx.store.insert_message(
                domain=app.domain, recipient=app.id, sender=caller.app.id, event=msg.event,
                patient=msg.patient, focal=msg.focal.url, identifier=msg.identifier, status="New",
                last_changed=stamp, version=ctx.next_version(), created=now, header=header,
                entries=delivered_json)
            if app.webhook_url and not ctx.fault("no-webhook"):
                notifications.append({"app": app.id, "message_id": message_id, "event": msg.event,
                                      "identifier": msg.identifier})
    reply = _reply(ctx, msg, minted, ordered, base, stamp, domain)
    return reply, notifications


def _delivered_header(msg: ParsedMessage, minted: dict[str, str]) -> dict[str, Any]:
    header = dict(msg.header)  # only top-level keys are replaced below, and the copy is serialised at once
    header["data"] = [{"reference": with_version(msg.focal.url, minted[msg.focal.url])}]
    header["extension"] = [
        ext for ext in header.get("extension") or []
        if not (isinstance(ext, dict) and ext.get("url") in (EXT_PROCESSING_STATUS, EXT_IS_EXPIRED))
    ]
    if not header["extension"]:
        del header["extension"]
    return header


def _supersede(ctx: Kt1Context, domain: str, recipient: str, focal: str, stamp: str) -> None:
    rows = ctx.store.all(
        "SELECT id FROM messages WHERE domain = ? AND recipient = ? AND focal = ? AND status = 'New'",
        (domain, recipient, focal))
    for row in rows:
        ctx.store.update_message(row["id"], status="ReplacedByNewVersion", last_changed=stamp,
                                 version=ctx.next_version())


def _reply(ctx: Kt1Context, msg: ParsedMessage, minted: dict[str, str], ordered: list[ResourceEntry],
           base: str, stamp: str, domain: str) -> dict[str, Any]:
    reply_id = "urn:uuid:" + str(uuid.uuid4())
    identifier = msg.identifier
    if ctx.fault("reply-wrong-identifier"):
        identifier = "urn:uuid:" + str(uuid.uuid4())
    header = {
        "resourceType": "MessageHeader",
        "identifier": reply_id,
        "timestamp": stamp,
        "event": copy.deepcopy(msg.header["event"]),
        "response": {"identifier": identifier, "code": "ok"},
        "source": {"name": "", "software": "", "version": "", "endpoint": base + MAILBOX_PATH},
        "data": [{"reference": with_version(res.url, minted[res.url])} for res in ordered],
    }
    return bundles.feed(
        title="Mailbox reply", updated=stamp, base=base, self_link=base + MAILBOX_PATH,
        entries=[bundles.entry(entry_id=reply_id, self_link=None, content=header, updated=stamp)],
        categories=[bundles.domain_category(domain), bundles.message_category()])

"""Packing outgoing KT1 message bundles and reading delivered ones, the way the Python connector does.

Outgoing: the MessageHeader entry first (no link), then the focal resource,
then the other resources, each with `id` = history-less URL and a self link
that is versioned only when the sender knows a version; `MessageHeader.data`
carries the focal's (versioned) self link.  Incoming: a delivered message is
a bundle whose first MessageHeader entry carries the ack URL as its self link
and the ProcessingStatus extension.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ktbench.fhir.dstu1.constants import (
    DOMAIN_TAG_PREFIX,
    EXT_IS_EXPIRED,
    EXT_PATIENT,
    EXT_PROCESSING_STATUS,
    EXT_PS_EXCEPTION,
    EXT_PS_LAST_CHANGED,
    EXT_PS_STATUS,
    MESSAGE_EVENTS_SYSTEM,
    MESSAGE_TAG_TERM,
    SECURITY_TAG_SCHEME,
    TAG_SCHEME,
)
from ktbench.fhir.dstu1.links import entry_self_link, strip_history, version_of
from simulators.kt1.actors.kt1_resources import LocalResource

KEEP = object()  # "send the version the sender knows" (the normal case)


def now_instant() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def new_identifier() -> str:
    return str(uuid.uuid4())


def message_bundle(*, domain: str, event: str, identifier: str, focal: LocalResource,
                   others: list[LocalResource], patient_url: str | None, source: dict[str, str],
                   header_base: str, focal_version: Any = KEEP,
                   other_versions: dict[str, str | None] | None = None) -> dict[str, Any]:
    """A request bundle.  `focal_version`/`other_versions` override the known versions (None = omit)."""
    other_versions = other_versions or {}
    stamp = now_instant()
    focal_v = focal.version if focal_version is KEEP else focal_version

    def link(res: LocalResource, version: str | None) -> str:
        return f"{res.url}/_history/{version}" if version else res.url

    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "identifier": identifier,
        "timestamp": stamp,
        "event": {"system": MESSAGE_EVENTS_SYSTEM, "code": event, "display": event},
        "source": dict(source),
        "data": [{"reference": link(focal, focal_v)}],
    }
    if patient_url:
        header["extension"] = [{"url": EXT_PATIENT, "valueResource": {"reference": patient_url}}]
    entries: list[dict[str, Any]] = [{"id": f"{header_base}/MessageHeader/{uuid.uuid4().hex[:12]}",
                                      "content": header}]
    for res in [focal, *others]:
        version = focal_v if res is focal else other_versions.get(res.url, res.version)
        entries.append({"id": res.url, "link": [{"rel": "self", "href": link(res, version)}],
                        "content": copy.deepcopy(res.content)})
    return {
        "resourceType": "Bundle",
        "id": "urn:uuid:" + str(uuid.uuid4()),
        "updated": stamp,
        "category": [
            {"term": DOMAIN_TAG_PREFIX + domain, "label": domain, "scheme": SECURITY_TAG_SCHEME},
            {"term": MESSAGE_TAG_TERM, "scheme": TAG_SCHEME},
        ],
        "entry": entries,
    }




def bundle_link(bundle: dict[str, Any], rel: str) -> str | None:
    for item in bundle.get("link") or []:
        if isinstance(item, dict) and item.get("rel") == rel and isinstance(item.get("href"), str):
            return item["href"]
    return None


def processing_status(header: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(status, last changed, exception) from a MessageHeader's ProcessingStatus extension."""
    for ext in header.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == EXT_PROCESSING_STATUS:
            values: dict[str, Any] = {}
            for sub in ext.get("extension") or []:
                if isinstance(sub, dict):
                    values[sub.get("url")] = (sub.get("valueCode") or sub.get("valueInstant")
                                              or sub.get("valueString"))
            return values.get(EXT_PS_STATUS), values.get(EXT_PS_LAST_CHANGED), values.get(EXT_PS_EXCEPTION)
    return None, None, None


def patient_of(header: dict[str, Any]) -> str | None:
    for ext in header.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == EXT_PATIENT:
            ref = (ext.get("valueResource") or {}).get("reference")
            return strip_history(ref) if isinstance(ref, str) else None
    return None


def event_of(header: dict[str, Any]) -> str | None:
    event = header.get("event")
    return event.get("code") if isinstance(event, dict) else None


@dataclass
class HeaderSummary:
    """One MessageHeader entry of a search answer."""

    entry_id: str
    self_link: str | None
    header: dict[str, Any]

    @property
    def status(self) -> str | None:
        return processing_status(self.header)[0]

    @property
    def exception(self) -> str | None:
        return processing_status(self.header)[2]

    @property
    def event(self) -> str | None:
        return event_of(self.header)

    @property
    def identifier(self) -> str | None:
        value = self.header.get("identifier")
        return value if isinstance(value, str) else None

    @property
    def patient(self) -> str | None:
        return patient_of(self.header)

    @property
    def version(self) -> str | None:
        return version_of(self.self_link) if self.self_link else None


def header_summaries(bundle: dict[str, Any]) -> list[HeaderSummary]:
    found = []
    for entry in bundle.get("entry") or []:
        content = entry.get("content") if isinstance(entry, dict) else None
        if isinstance(content, dict) and content.get("resourceType") == "MessageHeader":
            found.append(HeaderSummary(str(entry.get("id", "")), entry_self_link(entry), content))
    return found


@dataclass
class DeliveredResource:
    url: str                 # history-less
    link: str | None         # versioned self link as delivered
    content: dict[str, Any]

    @property
    def version(self) -> str | None:
        return version_of(self.link) if self.link else None

    @property
    def rtype(self) -> str | None:
        return self.content.get("resourceType")


@dataclass
class DeliveredMessage:
    """A complete message bundle as the server hands it to a recipient."""

    bundle: dict[str, Any]
    summary: HeaderSummary
    resources: list[DeliveredResource] = field(default_factory=list)

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> DeliveredMessage | None:
        headers = header_summaries(bundle)
        if not headers:
            return None
        resources = []
        for entry in bundle.get("entry") or []:
            content = entry.get("content") if isinstance(entry, dict) else None
            if not isinstance(content, dict) or content.get("resourceType") == "MessageHeader":
                continue
            link = entry_self_link(entry)
            ident = entry.get("id") if isinstance(entry.get("id"), str) else link
            resources.append(DeliveredResource(strip_history(ident or ""), link, content))
        return cls(bundle, headers[0], resources)

    @property
    def header(self) -> dict[str, Any]:
        return self.summary.header

    @property
    def ack_url(self) -> str | None:
        return self.summary.self_link

    @property
    def historyless_url(self) -> str:
        return self.summary.entry_id or strip_history(self.summary.self_link or "")

    @property
    def event(self) -> str | None:
        return self.summary.event

    @property
    def status(self) -> str | None:
        return self.summary.status

    @property
    def identifier(self) -> str | None:
        return self.summary.identifier

    @property
    def patient(self) -> str | None:
        return self.summary.patient

    @property
    def focal_reference(self) -> str | None:
        data = self.header.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            ref = data[0].get("reference")
            return ref if isinstance(ref, str) else None
        return None

    @property
    def focal(self) -> DeliveredResource | None:
        ref = self.focal_reference
        if ref is None:
            return None
        return self.resource(strip_history(ref))

    def resource(self, url: str) -> DeliveredResource | None:
        url = strip_history(url)
        return next((r for r in self.resources if r.url == url), None)


def ack_body(header: dict[str, Any], status: str, exception: str | None = None) -> dict[str, Any]:
    """The connector's ack: the header as delivered, IsExpired dropped, ProcessingStatus replaced."""
    body = copy.deepcopy(header)
    kept = [ext for ext in body.get("extension") or []
            if not (isinstance(ext, dict) and ext.get("url") in (EXT_PROCESSING_STATUS, EXT_IS_EXPIRED))]
    status_ext: list[dict[str, Any]] = [{"url": EXT_PS_STATUS, "valueCode": status},
                                        {"url": EXT_PS_LAST_CHANGED, "valueInstant": now_instant()}]
    if exception is not None:
        status_ext.append({"url": EXT_PS_EXCEPTION, "valueString": exception})
    body["extension"] = kept + [{"url": EXT_PROCESSING_STATUS, "extension": status_ext}]
    return body


def contains(expected: Any, actual: Any, path: str = "") -> str | None:
    """None when every field of `expected` is present with the same value in `actual`, else where it differs.

    A server may add fields (or drop the connector's `refNNN` ids) but must not lose or change content.
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path or '/'}: expected an object, got {type(actual).__name__}"
        for key, value in expected.items():
            if key == "id" and path:  # the connector's bogus idrefs may be dropped
                continue
            if key not in actual:
                return f"{path}/{key}: missing"
            problem = contains(value, actual[key], f"{path}/{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {len(expected)} item(s), got {actual!r:.80}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            problem = contains(e, a, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if expected != actual:
        return f"{path}: expected {expected!r:.80}, got {actual!r:.80}"
    return None

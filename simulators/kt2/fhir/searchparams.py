"""The search parameters of the 11 KT2 types and how their values are taken out of a resource.

Values are extracted once, when a version is stored, into the `fhir_index` table (one row per value), so a
search is SQL over an index instead of a scan of JSON.  The KT SearchParameters (kt2-protocol.md §4.4:
resource-origin, publisherId, instantiates with its chains, traceId, requestId, correlationId) sit next to
the standard R4 ones real clients use.  `_id` and `_lastUpdated` are columns of `fhir_current`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.fhir.instants import parse_instant_ms

KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
ORIGIN_URL = KT + "resource-origin"
INSTANTIATES_URL = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
PUBLISHER_ID_URL = KT + "KT2PublisherId"
ENDPOINT_URL = KT + "KT2EndpointExtension"
TRACE_URLS = {"traceId": KT + "trace-id", "requestId": KT + "request-id", "correlationId": KT + "correlation-id"}
PERSONS = ("Patient", "Practitioner", "RelatedPerson")

# (param, sys, val, num): one index row of a resource
Row = tuple[str, str | None, Any, int | None]


@dataclass(frozen=True)
class Param:
    name: str
    kind: str                               # token | reference | string | uri | date
    extract: Callable[[dict], Iterator[Any]]
    targets: tuple[str, ...] = ()           # reference params: the types they point to
    definition: str | None = None           # canonical of a KT SearchParameter


def _walk(value: Any, names: tuple[str, ...]) -> list[Any]:
    """The values at a dotted path, lists flattened at every step (FHIRPath-style)."""
    current = [value]
    for name in names:
        found = []
        for item in current:
            if isinstance(item, list):
                for element in item:
                    if isinstance(element, dict) and name in element:
                        found.append(element[name])
            elif isinstance(item, dict) and name in item:
                found.append(item[name])
        if not found:
            return found
        current = found
    values = []
    for item in current:
        if isinstance(item, list):
            values.extend(item)
        elif item is not None:
            values.append(item)
    return values


def path(dotted: str) -> Callable[[dict], Iterator[Any]]:
    names = tuple(dotted.split("."))
    return lambda resource: _walk(resource, names)


def ext(url: str, key: str, base: str = "") -> Callable[[dict], Iterator[Any]]:
    names = tuple(base.split(".")) if base else ()

    def extract(resource: dict) -> Iterator[Any]:
        for holder in (_walk(resource, names) if names else [resource]):
            extensions = holder.get("extension") if isinstance(holder, dict) else None
            if isinstance(extensions, list):
                for item in extensions:
                    if isinstance(item, dict) and item.get("url") == url and key in item:
                        yield item[key]
    return extract


def _typed(dotted: str, rtype: str) -> Callable[[dict], Iterator[Any]]:
    """References at `dotted` that point to `rtype` (Task.for as `patient`)."""
    inner = path(dotted)
    return lambda resource: (r for r in inner(resource) if _ref_type(r) == rtype)


def _ref_type(ref: Any) -> str | None:
    text = ref.get("reference") if isinstance(ref, dict) else None
    return text.split("/")[-2] if isinstance(text, str) and "/" in text else None


def _names(resource: dict, part: str | None) -> Iterator[Any]:
    for name in _walk(resource, ("name",)):
        if not isinstance(name, dict):
            continue
        if part is None:
            yield from (name.get(k) for k in ("text", "family") if name.get(k))
            for key in ("given", "prefix", "suffix"):
                yield from _walk(name, (key,))
        else:
            yield from _walk(name, (part,))


def _telecom(system: str | None) -> Callable[[dict], Iterator[Any]]:
    def extract(resource: dict) -> Iterator[Any]:
        for item in _walk(resource, ("telecom",)):
            if isinstance(item, dict) and (system is None or item.get("system") == system):
                yield {"value": item.get("value"), "system": item.get("system") if system is None else None}
    return extract


def _kt(name: str) -> str:
    return f"http://koppeltaal.nl/fhir/SearchParameter/{name}"


def _common(rtype: str) -> list[Param]:
    params = [Param("resource-origin", "reference", ext(ORIGIN_URL, "valueReference"), ("Device",),
                    _kt("resource-origin-extension"))]
    if rtype not in ("AuditEvent", "Subscription"):
        params.append(Param("identifier", "token", path("identifier")))
    return params


def _person(rtype: str) -> list[Param]:
    return [Param("active", "token", path("active")),
            Param("name", "string", lambda r: _names(r, None)),
            Param("family", "string", lambda r: _names(r, "family")),
            Param("given", "string", lambda r: _names(r, "given")),
            Param("gender", "token", path("gender")),
            Param("email", "token", _telecom("email")),
            Param("telecom", "token", _telecom(None))]


_OWNERS = ("CareTeam", "Patient", "Practitioner", "RelatedPerson")
_SPECIFIC: dict[str, list[Param]] = {
    "ActivityDefinition": [
        Param("status", "token", path("status")),
        Param("url", "uri", path("url")),
        Param("publisherId", "token", ext(PUBLISHER_ID_URL, "valueId"), definition=_kt("publisherId-extension")),
        Param("name", "string", path("name")),
        Param("title", "string", path("title")),
        Param("topic", "token", path("topic")),
        Param("participant", "token", path("participant.type"), definition=_kt("participant")),
        Param("endpoint", "reference", ext(ENDPOINT_URL, "valueReference"), ("Endpoint",)),
    ],
    "AuditEvent": [
        Param("type", "token", path("type")),
        Param("subtype", "token", path("subtype")),
        Param("action", "token", path("action")),
        Param("outcome", "token", path("outcome")),
        Param("date", "date", path("recorded")),
        Param("entity", "reference", path("entity.what"), RESOURCE_TYPES),
        Param("agent", "reference", path("agent.who"), ("Device",)),
        *(Param(name, "token", ext(url, "valueId"), definition=_kt(url.rsplit("/", 1)[1]))
          for name, url in TRACE_URLS.items()),
    ],
    "CareTeam": [
        Param("status", "token", path("status")),
        Param("patient", "reference", _typed("subject", "Patient"), ("Patient",)),
        Param("subject", "reference", path("subject"), ("Patient",)),
        Param("participant", "reference", path("participant.member"), ("Practitioner", "RelatedPerson",
                                                                         "Patient", "Organization", "CareTeam")),
        Param("name", "string", path("name")),
    ],
    "Device": [
        Param("status", "token", path("status")),
        Param("device-name", "string", path("deviceName.name")),
        Param("organization", "reference", path("owner"), ("Organization",)),
    ],
    "Endpoint": [
        Param("status", "token", path("status")),
        Param("connection-type", "token", path("connectionType")),
        Param("name", "string", path("name")),
        Param("organization", "reference", path("managingOrganization"), ("Organization",)),
    ],
    "Organization": [
        Param("active", "token", path("active")),
        Param("name", "string", path("name")),
        Param("partof", "reference", path("partOf"), ("Organization",)),
    ],
    "Patient": [*_person("Patient"),
                Param("organization", "reference", path("managingOrganization"), ("Organization",))],
    "Practitioner": _person("Practitioner"),
    "RelatedPerson": [*_person("RelatedPerson"),
                      Param("patient", "reference", path("patient"), ("Patient",)),
                      Param("relationship", "token", path("relationship"))],
    "Subscription": [
        Param("status", "token", path("status")),
        Param("criteria", "string", path("criteria")),
        Param("type", "token", path("channel.type")),
        Param("url", "uri", path("channel.endpoint")),
    ],
    "Task": [
        Param("status", "token", path("status")),
        Param("intent", "token", path("intent")),
        Param("code", "token", path("code")),
        Param("patient", "reference", _typed("for", "Patient"), ("Patient",)),
        Param("subject", "reference", path("for"), ("Patient",)),
        Param("owner", "reference", path("owner"), _OWNERS),
        Param("requester", "reference", path("requester"), ("Practitioner",)),
        Param("part-of", "reference", path("partOf"), ("Task",)),
        Param("instantiates", "reference", ext(INSTANTIATES_URL, "valueReference"), ("ActivityDefinition",),
              _kt("task-instantiates")),
        Param("instantiates-canonical", "uri", path("instantiatesCanonical"), (),
              _kt("task-instantiates-canonical")),
    ],
}

PARAMS: dict[str, dict[str, Param]] = {
    rtype: {p.name: p for p in (*_common(rtype), *_SPECIFIC[rtype])} for rtype in RESOURCE_TYPES
}


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a string search value (FHIR string matching)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _token_rows(name: str, value: Any) -> Iterator[Row]:
    if isinstance(value, bool):
        yield name, None, "true" if value else "false", None
    elif isinstance(value, str):
        yield name, None, value, None
    elif isinstance(value, dict):
        if "coding" in value and isinstance(value["coding"], list):
            for coding in value["coding"]:
                yield from _token_rows(name, coding)
        code = value.get("code", value.get("value"))
        if isinstance(code, str) and code:
            system = value.get("system")
            yield name, system if isinstance(system, str) else "", code, None


def index_rows(rtype: str, resource: dict) -> list[Row]:
    """Every index row of one resource version (bad values simply index nothing: the validator judges)."""
    rows: list[Row] = []
    for param in PARAMS[rtype].values():
        for value in param.extract(resource):
            if param.kind == "token":
                rows.extend(_token_rows(param.name, value))
            elif param.kind == "reference":
                ref = value.get("reference") if isinstance(value, dict) else None
                if isinstance(ref, str) and ref:
                    rows.append((param.name, None, strip_version(ref), None))
            elif param.kind == "string" and isinstance(value, str):
                rows.append((param.name, value, fold(value), None))
            elif param.kind == "uri" and isinstance(value, str):
                rows.append((param.name, None, value, None))
            elif param.kind == "date" and isinstance(value, str):
                span = parse_instant_ms(value)
                if span is not None:
                    rows.append((param.name, None, value, span[0]))
    return rows


def strip_version(ref: str) -> str:
    head, sep, _ = ref.partition("/_history/")
    return head if sep else ref

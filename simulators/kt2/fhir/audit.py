"""AuditEvents the voorziening writes (kt2-protocol.md §4.5, §4.7), and the buffered sink that stores them.

Shapes follow the reference HAPI AuditEventBuilder: REST events (type audit-event-type#rest, subtype the
restful-interaction), transmit events per notification attempt (iso-21089-lifecycle#transmit) and user
authentication events of the authorisation server (DCM#110114).  For the latter the sources contradict
(§8.9); we follow the 2026 memo: one subtype DCM#110122 "Login" and an outcomeDesc starting with the step
(`token`, `introspect`, `authorize`, `idp call`, `idp login`), outcome 0 or 8.

Why buffered: every FHIR request writes an AuditEvent, so a read would cost a write transaction.  Events are
queued and stored in batches (when 256 are waiting, every half second, inside the next write transaction,
and always before anything reads AuditEvents), which keeps reads fast and AuditEvent searches consistent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from simulators.kt2.fhir.instants import instant, parse_instant_ms
from simulators.kt2.fhir.repository import NewVersion, Repository
from simulators.kt2.fhir.searchparams import ORIGIN_URL, TRACE_URLS, Row, strip_version
from simulators.kt2.http import dumps
from simulators.kt2.ids import new_uuid
from simulators.kt2.trace import TraceIds

PROFILE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2AuditEvent"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESOURCE_TYPES_CS = "http://hl7.org/fhir/resource-types"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ACTIONS = {"create": "C", "read": "R", "vread": "R", "update": "U", "delete": "D", "search-type": "E",
           "history-instance": "R", "history-type": "R", "capabilities": "R"}
_USER_ROLES = {"Patient": ("1", "Patient"), "RelatedPerson": ("6", "User"), "Practitioner": ("15", "Practitioner")}
FLUSH_AT = 256          # in-memory stores: write when this many wait
WAKE_AT = 16            # file stores: wake the writer thread when this many wait (else every 0.25 s)
BATCH = 128
log = logging.getLogger("ktbench.kt2.audit")


def outcome_code(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def device_ref(device: str) -> dict:
    return {"reference": device, "type": "Device"}


def _agent(who: dict, code: str, display: str, requestor: bool) -> dict:
    return {"type": {"coding": [_coding(DCM, code, display)]}, "who": who, "requestor": requestor}


def requester_agent(device: str | None) -> dict:
    who = device_ref(device) if device else {"display": "anonymous (no valid access token)"}
    return _agent(who, "110153", "Source Role ID", True)


def resource_entity(rtype: str, reference: str | None) -> dict:
    entity: dict[str, Any] = {}
    if reference:
        entity["what"] = {"reference": reference, "type": rtype}
    entity["type"] = _coding(RESOURCE_TYPES_CS, rtype, rtype)
    return entity


def query_entity(rtype: str, query: str) -> dict:
    return {"type": _coding(RESOURCE_TYPES_CS, rtype, rtype), "role": _coding(OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(query.encode("utf-8")).decode("ascii")}


def _extensions(origin: str | None, trace: TraceIds) -> list[dict]:
    extensions = []
    if origin:
        extensions.append({"url": ORIGIN_URL, "valueReference": device_ref(origin)})
    for name, value in (("traceId", trace.trace_id), ("requestId", trace.request_id),
                        ("correlationId", trace.correlation_id)):
        if value:
            extensions.append({"url": TRACE_URLS[name], "valueId": value})
    return extensions


def _source(site: str, observer: str) -> dict:
    return {"site": site, "observer": device_ref(observer),
            "type": [_coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4",
                             "Application Server")]}


def rest_event(*, interaction: str, requester: str | None, status: int, entities: list[dict], site: str,
               observer: str, trace: TraceIds, recorded: str, diagnostics: str | None = None) -> dict:
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "extension": _extensions(requester, trace),
        "type": _coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"),
        "subtype": [_coding("http://hl7.org/fhir/restful-interaction", interaction, interaction)],
        "action": ACTIONS[interaction],
        "recorded": recorded,
        "outcome": outcome_code(status),
    }
    if status >= 400:
        event["outcomeDesc"] = (diagnostics or f"HTTP {status}")[:1000]
        entities = [*entities, {"type": _coding(RESOURCE_TYPES_CS, "OperationOutcome", "OperationOutcome")}]
    event["agent"] = [requester_agent(requester)]
    event["source"] = _source(site, observer)
    event["entity"] = entities or [resource_entity("Resource", None)]
    return event


def without_credentials(url: str) -> str:
    """`url` without a `user:password@` part: AuditEvents are read by many, credentials must not be in them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rpartition("@")[2] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def transmit_event(*, trigger_device: str | None, subscriber: str | None, endpoint: str, resource_ref: str,
                   rtype: str, subscription_id: str, criteria: str, success: bool, description: str | None,
                   site: str, observer: str, trace: TraceIds, recorded: str) -> dict:
    agents = [requester_agent(trigger_device)]
    subscriber_agent = _agent(device_ref(subscriber) if subscriber else {"display": "subscriber"},
                              "110152", "Destination Role ID", False)
    subscriber_agent["network"] = {"address": without_credentials(endpoint)[:1000], "type": "5"}
    agents.append(subscriber_agent)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "extension": _extensions(trigger_device, trace),
        "type": _coding("http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "transmit",
                        "Transmit Record Lifecycle Event"),
        "action": "E", "recorded": recorded, "outcome": "0" if success else "4",
    }
    if not success:
        event["outcomeDesc"] = f"Failed to deliver webhook notification: {description or 'no answer'}"[:1000]
    event["agent"] = agents
    event["source"] = _source(site, observer)
    event["entity"] = [resource_entity(rtype, resource_ref),
                       {"what": {"reference": f"Subscription/{subscription_id}", "type": "Subscription"},
                        "type": _coding(RESOURCE_TYPES_CS, "Subscription", "Subscription"),
                        "role": _coding(OBJECT_ROLE, "9", "Subscriber"),
                        "query": base64.b64encode(criteria.encode("utf-8")).decode("ascii")}]
    return event


def auth_event(*, step: str, success: bool, description: str, client_id: str | None, user: str | None,
               idp: tuple[str, str] | None, site: str, observer: str, trace: TraceIds, recorded: str) -> dict:
    """A user authentication event; `description` must hold no secret (tokens, codes, assertions)."""
    device = f"Device/{client_id}" if client_id else None
    agents = [requester_agent(device)]
    if idp is not None:
        agents.append(_agent({"identifier": {"system": "urn:ktbench:identity-provider", "value": idp[0]},
                              "display": idp[1] or idp[0]}, "110152", "Destination Role ID", False))
    if user and user.split("/")[0] in _USER_ROLES:
        code, display = _USER_ROLES[user.split("/")[0]]
        entity = {"what": {"reference": user, "type": user.split("/")[0]},
                  "type": _coding(RESOURCE_TYPES_CS, user.split("/")[0], user.split("/")[0]),
                  "role": _coding(OBJECT_ROLE, code, display)}
    else:
        entity = resource_entity("Device", device)
    return {
        "resourceType": "AuditEvent",
        "extension": _extensions(device, trace),
        "type": _coding(DCM, "110114", "User Authentication"),
        "subtype": [_coding(DCM, "110122", "Login")],
        "action": "E", "recorded": recorded, "outcome": "0" if success else "8",
        "outcomeDesc": f"{step}: {description}"[:1000],
        "agent": agents, "source": _source(site, observer), "entity": [entity],
    }


_TRACE_PARAMS = {url: name for name, url in TRACE_URLS.items()}


def _coding_rows(name: str, coding: Any) -> list[Row]:
    if isinstance(coding, dict) and isinstance(coding.get("code"), str) and coding["code"]:
        system = coding.get("system")
        return [(name, system if isinstance(system, str) else "", coding["code"], None)]
    return []


def audit_index_rows(event: dict, recorded_ms: int | None = None) -> list[Row]:
    """The index rows of an AuditEvent the voorziening wrote, without the generic extraction: every event
    pays this, and the shapes are known (tests check it equals searchparams.index_rows)."""
    rows: list[Row] = []
    for ext in event.get("extension", ()):
        url = ext.get("url")
        if url == ORIGIN_URL:
            rows.append(("resource-origin", None, ext["valueReference"]["reference"], None))
        elif url in _TRACE_PARAMS:
            rows.append((_TRACE_PARAMS[url], None, ext["valueId"], None))
    rows += _coding_rows("type", event.get("type"))
    for coding in event.get("subtype", ()):
        rows += _coding_rows("subtype", coding)
    rows.append(("action", None, event["action"], None))
    rows.append(("outcome", None, event["outcome"], None))
    if recorded_ms is None:
        recorded_ms = parse_instant_ms(event["recorded"])[0]
    rows.append(("date", None, event["recorded"], recorded_ms))
    for entity in event.get("entity", ()):
        ref = entity.get("what", {}).get("reference")
        if ref:
            rows.append(("entity", None, strip_version(ref), None))
    for agent in event.get("agent", ()):
        ref = agent.get("who", {}).get("reference")
        if ref:
            rows.append(("agent", None, ref, None))
    return rows


class AuditLog:
    """The AuditSink: stores AuditEvents in batches (see the module docstring).

    With a file database the batches are written by a background thread over a second SQLite connection
    (WAL lets the request thread read meanwhile, and sqlite3 releases the GIL while it works), so an
    AuditEvent costs the request path little more than building it.  `:memory:` stores write them on the
    request thread: a second connection would see another database.
    """

    def __init__(self, repo: Repository, now_ms, writer: Repository | None = None) -> None:
        self.repo = repo
        self._now_ms = now_ms
        self._pending: list[NewVersion] = []
        self._cond = threading.Condition()
        self._writing = 0
        self._ticker: asyncio.Task | None = None
        self._writer = writer
        self._stop = False
        self._closed = False
        self._thread: threading.Thread | None = None
        if writer is not None:
            self._thread = threading.Thread(target=self._run, name="kt2-audit-writer", daemon=True)
            self._thread.start()

    def record(self, domain: str, event: dict[str, Any]) -> str:
        """Queue an AuditEvent; returns its id."""
        rid = new_uuid()
        if self._closed:
            return rid
        now = self._now_ms()
        stamp = instant(now)
        resource = {"resourceType": "AuditEvent", "id": rid,
                    "meta": {"versionId": "1", "lastUpdated": stamp, "profile": [PROFILE]},
                    **{k: v for k, v in event.items() if k not in ("resourceType", "id", "meta")}}
        resource["recorded"] = stamp
        origin = None
        for ext in resource.get("extension", ()):
            if ext.get("url") == ORIGIN_URL:
                origin = ext.get("valueReference", {}).get("reference")
        version = NewVersion(domain, "AuditEvent", rid, 1, now, "POST", dumps(resource), origin, resource, (),
                             audit_index_rows(resource, now))
        with self._cond:
            self._pending.append(version)
            waiting = len(self._pending)
            if self._writer is not None and waiting >= WAKE_AT:
                self._cond.notify_all()
        if self._writer is None:
            if waiting >= FLUSH_AT:
                self.flush()
            self._ensure_ticker()
        return rid

    def flush(self, timeout: float = 30.0) -> None:
        """Every AuditEvent recorded so far is stored when this returns."""
        if self._closed:
            return   # the database is closed (a ticker or notification task that outlived the server)
        if self._writer is None:
            with self._cond:
                batch, self._pending = self._pending, []
            if batch:
                with self.repo.store.transaction():
                    self.repo.write(batch)
            return
        if self.repo.store.in_transaction:
            log.error("AuditLog.flush() inside a write transaction would wait for itself; not waiting")
            return
        with self._cond:
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._pending and not self._writing, timeout)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Store what is queued and stop; AuditEvents recorded afterwards are dropped (the database closes)."""
        if self._closed:
            return
        if self._thread is not None:
            self.flush()
            with self._cond:
                self._stop = True
                self._cond.notify_all()
            self._thread.join(timeout=10)
            self._writer.store.close()
        else:
            self.flush()
        self._closed = True

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop, 0.25)
                if self._stop and not self._pending:
                    return
                batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
                self._writing += 1
            try:
                if batch:
                    with self._writer.store.transaction():
                        self._writer.write(batch)
            except Exception:  # logged; the events of a failed batch are lost, the server goes on
                log.exception("writing %d AuditEvents failed", len(batch))
            finally:
                with self._cond:
                    self._writing -= 1
                    self._cond.notify_all()

    def _ensure_ticker(self) -> None:
        if self._ticker is not None and not self._ticker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._ticker = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while self._pending and not self._closed:
            await asyncio.sleep(0.5)
            self.flush()

"""Subscriptions: which active Subscription a change matches, and delivering its notification (TOP-KT-006).

On every create/update, each active Subscription of the same domain whose criteria search matches the
changed resource (the search engine restricted with `_id`) AND whose owner (the subscriber: its
resource-origin) may read it under the scope the owner had when it created or last updated the Subscription
itself (subscription narrowing; an edit by another client keeps the subscriber's scope) is notified: a POST
with an empty body, `Content-Type: application/fhir+json; fhirVersion=4.0; charset=utf-8`, a new
X-Request-Id, X-Correlation-Id = the triggering request's id, the same X-Trace-Id and every channel.header.
Deliveries are asyncio tasks off the request path; failures are retried with back-off, every attempt writes
a transmit AuditEvent, and after the last failed attempt the Subscription gets status `error` with `error`
text (a later success sets it `active` again).  No notification on delete, none across domains.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.kt2.context import Kt2Context
from simulators.kt2.fhir import rules, search
from simulators.kt2.fhir.audit import transmit_event
from simulators.kt2.fhir.instants import instant
from simulators.kt2.fhir.repository import NewVersion, Repository
from simulators.kt2.http import dumps
from simulators.kt2.scopes import ScopeSet
from simulators.kt2.trace import TraceIds

log = logging.getLogger("ktbench.kt2.subscriptions")
NOTIFY_CONTENT_TYPE = "application/fhir+json; fhirVersion=4.0; charset=utf-8"
SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_subscription_owner (
    domain TEXT NOT NULL, id TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
    PRIMARY KEY (domain, id));
"""


@dataclass(frozen=True)
class Trigger:
    """Who changed what, for the notification's headers and AuditEvents."""

    domain: str
    rtype: str
    id: str
    version: int
    device: str | None
    trace: TraceIds
    site: str


@dataclass(frozen=True)
class Watch:
    id: str
    rtype: str
    criteria: str
    items: tuple[tuple[str, str], ...]
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    owner: str
    scope: str


class Notifier:
    def __init__(self, ctx: Kt2Context, repo: Repository, observer) -> None:
        self.ctx = ctx
        self.repo = repo
        self._observer = observer                 # domain -> the voorziening's Device reference
        self._watches: dict[str, list[Watch]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        ctx.store.ensure_schema(SCHEMA)

    def observer(self, domain: str) -> str:
        """The voorziening's own Device in `domain` ("Device/ktbench-voorziening-<domain>")."""
        return self._observer(domain)

    # -- bookkeeping --------------------------------------------------------------------------------------
    def owner_changed(self, domain: str, rid: str, client_id: str, scope: str) -> None:
        self.ctx.store.execute("INSERT INTO fhir_subscription_owner (domain, id, client_id, scope) VALUES (?,?,?,?) "
                               "ON CONFLICT (domain, id) DO UPDATE SET client_id=excluded.client_id, "
                               "scope=excluded.scope", (domain, rid, client_id, scope))
        self.forget(domain)

    def forget(self, domain: str) -> None:
        self._watches.pop(domain, None)

    def _load(self, domain: str) -> list[Watch]:
        watches = self._watches.get(domain)
        if watches is not None:
            return watches
        found = self.ctx.store.all(
            "SELECT c.id, v.body, o.client_id, o.scope FROM fhir_current c JOIN fhir_versions v ON "
            "v.domain=c.domain AND v.rtype=c.rtype AND v.id=c.id AND v.version=c.version "
            "LEFT JOIN fhir_subscription_owner o ON o.domain=c.domain AND o.id=c.id "
            "WHERE c.domain=? AND c.rtype='Subscription' AND c.deleted=0", (domain,))
        watches = []
        for rid, body, owner, scope in found:
            sub = json.loads(body)
            channel = sub.get("channel") or {}
            if sub.get("status") not in ("active", "error") or not isinstance(sub.get("criteria"), str):
                continue
            rtype, items = rules.split_criteria(sub["criteria"])
            headers = tuple((h.split(":", 1)[0].strip(), h.split(":", 1)[1].strip())
                            for h in channel.get("header", []) if isinstance(h, str) and ":" in h)
            watches.append(Watch(rid, rtype, sub["criteria"], tuple(items), channel.get("endpoint", ""), headers,
                                 owner or "", scope or ""))
        self._watches[domain] = watches
        return watches

    # -- matching -----------------------------------------------------------------------------------------
    def changed(self, trigger: Trigger) -> None:
        if trigger.rtype == "Subscription":
            self.forget(trigger.domain)
        watches = [w for w in self._load(trigger.domain) if w.rtype == trigger.rtype]
        if not watches:
            return
        for watch in watches:
            if self._matches(watch, trigger):
                self._schedule(watch, trigger)

    def _matches(self, watch: Watch, trigger: Trigger) -> bool:
        try:
            query = search.parse_query(watch.rtype, [*watch.items, ("_id", trigger.id)], default_count=1,
                                       max_count=1, criteria=True)
        except Exception:  # criteria were checked on write; a later change of the engine must not break writes
            return False
        origins = None
        if not self.ctx.fault("subscription-narrowing-missing"):
            scopes = ScopeSet(watch.scope)
            if not scopes.any(watch.rtype, "r"):
                return False
            origins = scopes.narrowing(watch.rtype, "r")
        return search.any_match(self.ctx.store, trigger.domain, query, origins)

    def _schedule(self, watch: Watch, trigger: Trigger) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("no event loop: the notification for %s/%s is not sent", trigger.rtype, trigger.id)
            return
        task = loop.create_task(self._deliver(watch, trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the deliveries under way (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    # -- delivery -----------------------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:  # a client is bound to its event loop
            settings = self.ctx.settings
            verify = ssl.create_default_context()
            if settings.trusted_ca_file:
                verify.load_verify_locations(settings.trusted_ca_file)
            self._client = httpx.AsyncClient(verify=verify, timeout=settings.notification_timeout_seconds,
                                             follow_redirects=False, trust_env=False,
                                             limits=httpx.Limits(max_keepalive_connections=0))
            self._client_loop = loop
        return self._client

    async def _deliver(self, watch: Watch, trigger: Trigger) -> None:
        settings = self.ctx.settings
        problem = None
        try:
            for attempt in range(settings.notification_attempts):
                trace = trigger.trace.child()
                headers = {"Content-Type": NOTIFY_CONTENT_TYPE}
                if not self.ctx.fault("notification-without-trace-headers"):
                    headers.update({"X-Request-Id": trace.request_id, "X-Correlation-Id": trace.correlation_id,
                                    "X-Trace-Id": trace.trace_id})
                headers.update(dict(watch.headers))
                try:
                    # the whole exchange within the timeout (httpx's holds per read only)
                    answer = await asyncio.wait_for(self._http().post(watch.endpoint, content=b"", headers=headers),
                                                    settings.notification_timeout_seconds)
                    problem = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
                except TimeoutError:
                    problem = f"no complete answer within {settings.notification_timeout_seconds:g} s"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {str(exc)[:200] or 'no answer'}"
                except Exception as exc:  # noqa: BLE001  an endpoint httpx cannot even try (a port out of range,
                    # a header it cannot encode) is a failed delivery like any other: recorded, retried, status
                    problem = f"the notification could not be sent ({type(exc).__name__})"
                self._audit(watch, trigger, trace, problem)
                if problem is None:
                    break
                if attempt + 1 < settings.notification_attempts:
                    await asyncio.sleep(settings.notification_backoff_seconds * 2 ** attempt)
            self._set_status(trigger.domain, watch.id, problem)
        except Exception:  # a bug of ours must not kill the loop; it is logged and seen by the tests
            log.exception("notification for Subscription/%s failed", watch.id)

    def _audit(self, watch: Watch, trigger: Trigger, trace: TraceIds, problem: str | None) -> None:
        if self.ctx.audit is None:
            return
        event = transmit_event(
            trigger_device=trigger.device, subscriber=f"Device/{watch.owner}" if watch.owner else None,
            endpoint=watch.endpoint, resource_ref=f"{trigger.rtype}/{trigger.id}/_history/{trigger.version}",
            rtype=trigger.rtype, subscription_id=watch.id, criteria=watch.criteria, success=problem is None,
            description=problem, site=trigger.site, observer=self._observer(trigger.domain), trace=trace,
            recorded=self.ctx.clock.instant())
        self.ctx.audit.record(trigger.domain, event)

    def _set_status(self, domain: str, rid: str, problem: str | None) -> None:
        """`error` + text after failed deliveries, back to `active` after a success (a system update)."""
        with self.ctx.store.transaction():
            found = self.repo.read_current(domain, "Subscription", rid)
            if found is None or found[0].deleted or found[1] is None:
                return
            current, body = found
            sub: dict[str, Any] = json.loads(body)
            if sub.get("status") == "off":
                return
            wanted = "error" if problem else "active"
            if sub.get("status") == wanted and (problem is None or sub.get("error") == problem):
                return
            sub["status"] = wanted
            if problem:
                sub["error"] = f"Notification failed after {self.ctx.settings.notification_attempts} attempt(s): "\
                               f"{problem}"
            else:
                sub.pop("error", None)
            now_ms = self.ctx.clock.now_ms()
            sub["meta"] = {**sub.get("meta", {}), "versionId": str(current.version + 1), "lastUpdated": instant(now_ms)}
            self.repo.write([NewVersion(domain, "Subscription", rid, current.version + 1, now_ms, "PUT", dumps(sub),
                                        current.origin, sub, tuple(
                                            t for t in (rules.origin_reference(sub),) if t))])
        self.forget(domain)

    async def aclose(self) -> None:
        await self.drain(timeout=2)
        if self._client is not None:
            await self._client.aclose()

"""What both simulated applications under test share: their web server and the driver trigger endpoint.

    GET  /                      who this is (the bench's reachability probe)
    POST /ktbench/trigger       a driver action (ktbench/driver/action.schema.json) -> a reply
    GET  /jwks                  the application's JWKS (public parts; the jwks-private-keys fault leaks more)
    POST /notify/{channel}      subscription notifications (recorded)

Actions are checked with the contract's own schema (400 with the problems when malformed) and carried out in
a worker thread: an action makes the application call the voorziening, which fetches the application's JWKS
from this same server meanwhile, so the event loop must stay free.  The reply is sent when the action is
over, so the bench sees all its traffic once the reply arrives.  Unknown work is answered `unsupported`;
an action that the voorziening refused halfway is answered `done` with what went wrong (the verdict comes
from the traffic, never from the reply).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ktbench.driver.contract import reply_for, schema_problems
from simulators.kt2.actors import resources
from simulators.kt2.actors.application import DiscoveryFailed, TokenRefused
from simulators.kt2.actors.keys import KeyRing

log = logging.getLogger("ktbench.kt2.apps")
MAX_BODY = 65_536
Handler = Callable[[dict[str, Any]], str]


RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"


class ActionFailed(Exception):
    """The application could not finish an action (the voorziening refused something); the detail says what."""


class SimulatedApp:
    role = ""

    def __init__(self, *, fhir_base: str, client_id: str, faults: frozenset[str] = frozenset(),
                 algorithm: str = "RS512") -> None:
        self.fhir_base = fhir_base
        self.client_id = client_id
        self.faults = frozenset(faults)
        self.keys = KeyRing.generated(algorithm)
        self.keys.published_private = "jwks-private-keys" in self.faults
        self.base_url = ""
        self.notifications: list[dict[str, Any]] = []
        self.channels: dict[str, tuple[str, str]] = {}     # notification channel -> (Subscription id, criteria)
        self._lock = threading.Lock()
        self.http = httpx.Client(timeout=10.0, follow_redirects=False)
        self.asgi = Starlette(routes=[
            Route("/", self._root, methods=["GET"]),
            Route("/ktbench/trigger", self._trigger, methods=["POST"]),
            Route("/jwks", self._jwks, methods=["GET"]),
            Route("/notify/{channel}", self._notify, methods=["POST"]),
            *self.extra_routes(),
        ])

    # -- what a subclass provides -------------------------------------------------------------------------
    def extra_routes(self) -> list[Route]:
        return []

    def handlers(self) -> dict[str, Handler]:
        return {}

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks"

    @property
    def trigger_url(self) -> str:
        return f"{self.base_url}/ktbench/trigger"

    def has(self, fault: str) -> bool:
        return fault in self.faults

    def outgoing(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource as this application writes it: the write faults both roles share bend it here
        (`self.client`, the subclass's FHIR client, names the application's Device)."""
        body = copy.deepcopy(resource)
        if self.has("no-meta-profile"):
            body.pop("meta", None)
        if self.has("sets-resource-origin"):
            body.setdefault("extension", []).append(
                {"url": RESOURCE_ORIGIN, "valueReference": resources.reference(self.client.device)})
        return body

    def close(self) -> None:
        self.http.close()

    # -- endpoints ------------------------------------------------------------------------------------------
    async def _root(self, request: Request) -> Response:
        return JSONResponse({"application": f"ktbench simulated KT2 {self.role} (under test)"})

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(self.keys.jwks(), headers={"Cache-Control": "max-age=60"})

    async def _notify(self, request: Request) -> Response:
        """A subscription notification: answered at once; then (in the background) the receive AuditEvent and the
        search of the Subscription's criteria with X-Correlation-Id = the notification's X-Request-Id
        (kt2-protocol.md §4.5)."""
        body = await request.body()
        channel = request.path_params["channel"]
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.notifications.append({"channel": channel, "bytes": len(body)})
            known = self.channels.get(channel)
        if known is None:
            return Response(status_code=404)
        return Response(status_code=200, background=BackgroundTask(run_in_threadpool, self._received, known,
                                                                   headers))

    # -- subscriptions ------------------------------------------------------------------------------------
    def subscription_body(self, criteria: str, channel: str) -> dict[str, Any]:
        return resources.subscription(criteria, f"{self.base_url}/notify/{channel}", reason=f"{self.role} under test")

    def subscribe(self, params: dict[str, Any]) -> str:
        channel = uuid.uuid4().hex[:12]
        body = self.subscription_body(params["criteria"], channel)
        stored = answer_json(self.client.create(self.outgoing(body)), "POST Subscription")
        with self._lock:
            self.channels[channel] = (stored["id"], params["criteria"])
        return f"created Subscription/{stored['id']}"

    def _received(self, known: tuple[str, str], headers: dict[str, str]) -> None:
        subscription_id, criteria = known
        request_id, trace_id = headers.get("x-request-id", ""), headers.get("x-trace-id", "")
        try:
            if not self.has("no-receive-audit"):
                correlation = "" if self.has("receive-audit-without-correlation") else request_id
                self.client.create(receive_audit_event(self.client.device, self.base_url, subscription_id,
                                                       request_id=correlation, trace_id=trace_id))
            rtype, _, query = criteria.partition("?")
            extra = {} if self.has("receive-audit-without-correlation") else {"X-Correlation-Id": request_id}
            if trace_id:
                extra["X-Trace-Id"] = trace_id
            self.client.search(rtype, parse_qsl(query, keep_blank_values=True), headers=extra)
        except Exception:  # noqa: BLE001  (a background task: nobody to answer; the bench judges the traffic)
            log.exception("processing a notification of Subscription/%s failed", subscription_id)

    async def _trigger(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"error": "too-large", "problems": [f"body over {MAX_BODY} bytes"]}, 413)
        try:
            action = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "invalid-json", "problems": ["the body is not JSON"]}, 400)
        problems = schema_problems(action, "action")
        if problems:
            return JSONResponse({"error": "invalid-action", "problems": problems}, 400)
        if action["role"] != self.role or action["generation"] != "kt2":
            reply = reply_for(action, "unsupported", f"this is a KT2 {self.role}, not a "
                                                     f"{action['generation']} {action['role']}")
            return JSONResponse(reply.to_json())
        if action["action"] == "ping":
            return JSONResponse(reply_for(action, "done", "pong").to_json())
        handler = self.handlers().get(action["action"])
        if handler is None:
            return JSONResponse(reply_for(action, "unsupported", f"a KT2 {self.role} does not "
                                                                 f"{action['action']}").to_json())
        try:
            detail = await run_in_threadpool(handler, action["params"])
        except (ActionFailed, DiscoveryFailed) as exc:
            detail = f"failed: {exc}"
        except TokenRefused as exc:
            detail = f"failed: no access token (HTTP {exc.response.status_code})"
        except httpx.HTTPError as exc:
            detail = f"failed: {type(exc).__name__}"
        except Exception:   # a bug of the simulated app: the reply still follows the contract
            log.exception("action %s failed", action["action"])
            detail = "failed: internal error of the simulated application"
        return JSONResponse(reply_for(action, "done", detail[:500]).to_json())


def answer_json(answer: httpx.Response, what: str, ok: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
    """The JSON object of a successful answer, else ActionFailed naming `what` and the status."""
    if answer.status_code not in ok:
        raise ActionFailed(f"{what} answered {answer.status_code}")
    try:
        data = answer.json()
    except ValueError:
        raise ActionFailed(f"{what} answered no JSON") from None
    if not isinstance(data, dict):
        raise ActionFailed(f"{what} answered no JSON object")
    return data


def first_entry(bundle: dict[str, Any], what: str) -> dict[str, Any]:
    entries = [e.get("resource") for e in bundle.get("entry") or [] if isinstance(e, dict)]
    entries = [e for e in entries if isinstance(e, dict)]
    if not entries:
        raise ActionFailed(f"no {what} found")
    return entries[-1]


LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
TRACE = "http://koppeltaal.nl/fhir/StructureDefinition/"


def now_instant() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def receive_audit_event(device: str, site: str, subscription_id: str, *, request_id: str,
                        trace_id: str) -> dict[str, Any]:
    """The AuditEvent a subscriber writes when a notification arrives (kt2-protocol.md §4.5: lifecycle `receive`,
    correlation-id = the notification's X-Request-Id, the same trace-id)."""
    body: dict[str, Any] = {
        "resourceType": "AuditEvent", "meta": {"profile": [TRACE + "KT2AuditEvent"]},
        "type": {"system": LIFECYCLE, "code": "receive", "display": "Receive/Retain Record Lifecycle Event"},
        "action": "E", "recorded": now_instant(), "outcome": "0",
        "agent": [{"type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150",
                                        "display": "Application"}]},
                   "who": resources.reference(device), "requestor": False}],
        "source": {"site": site, "observer": resources.reference(device)},
        "entity": [{"what": {"reference": f"Subscription/{subscription_id}"}}]}
    extensions = []
    if trace_id:
        extensions.append({"url": TRACE + "trace-id", "valueId": trace_id})
    if request_id:
        extensions.append({"url": TRACE + "correlation-id", "valueId": request_id})
    if extensions:
        body["extension"] = extensions
    return body

"""The simulated KT2 eHealth module under test: publishes its activity, receives launches, reports Task status
(the driver actions publish-activity and report-status; launches arrive at its launch URL).

    POST /launch      the portal's form POST (launch, iss): path A - the module introspects the HTI token at
                      the voorziening with its own client assertion, accepts it (200) only when it is active and
                      addressed to its own Device, then reads the Task with its own backend-services token;
                      every other launch is refused (403).
                      Path B (launch_path="B", the SMART app launch): the module answers 302 to the voorziening's
                      authorize with the launch, the fixed scope, a state, aud = iss and a PKCE S256 challenge
    GET  /callback    path B: the browser comes back with code and state; the module trades the code (with its
                      code_verifier and client assertion) for the id_token and the NOOP access token, then reads
                      the Task with its OWN backend-services token (never the NOOP one)

After every accepted launch the module writes the launch AuditEvent (type DCM#110100, subtype DCM#110120
"Application Start", trace-id = the HTI jti; kt2-protocol.md §2.6).  When a notification arrives (POST
/notify/{channel}) it writes the receive AuditEvent and searches the Subscription's criteria again with
X-Correlation-Id = the notification's X-Request-Id (§4.5).

It talks to the bench's voorziening with `AppModuleClient` (the bench's own module actor plus fault flags).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from simulators.kt2.actors import resources
from simulators.kt2.actors.application import DiscoveryFailed, PlainHttp, TokenRefused
from simulators.kt2.actors.module import SmartLaunch
from simulators.kt2.apps.base import (
    MAX_BODY,
    ActionFailed,
    Handler,
    SimulatedApp,
    answer_json,
)
from simulators.kt2.apps.client import AppModuleClient, version_of

ACTIVITY_SYSTEM = "http://module-under-test.ktbench.test/activities"


class SimulatedModule(SimulatedApp):
    role = "module"

    def __init__(self, *, launch_path: str = "A", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if launch_path not in ("A", "B"):
            raise ValueError(f"launch_path must be A or B, not {launch_path!r}")
        self.launch_path = launch_path
        self.flows: dict[str, SmartLaunch] = {}         # path B: state -> the launch waiting for its callback
        self.client = AppModuleClient("module-under-test", PlainHttp(self.http), self.fhir_base, self.client_id,
                                      self.keys)
        self.client.faults = self.faults
        self.accepted: set[str] = set()                 # launch tokens this module accepted (its sessions)
        self.launched: list[tuple[str, str]] = []       # (Task id, version read at launch)
        self._launch_lock = threading.Lock()

    @property
    def launch_url(self) -> str:
        return f"{self.base_url}/launch"

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    def extra_routes(self) -> list[Route]:
        return [Route("/launch", self._launch, methods=["POST"]), Route("/callback", self._callback, methods=["GET"])]

    def handlers(self) -> dict[str, Handler]:
        return {"publish-activity": self.publish_activity, "report-status": self.report_status,
                "subscribe": self.subscribe}

    # -- actions ----------------------------------------------------------------------------------------
    def publish_activity(self, params: dict[str, Any]) -> str:
        endpoint = answer_json(self.client.create(self.outgoing(resources.endpoint(self.launch_url,
                                                                                   "module under test"))),
                               "POST Endpoint")
        body = resources.activity_definition(endpoint["id"], title=params["title"], publisher_id=params["activity"])
        body["identifier"] = [resources.identifier(ACTIVITY_SYSTEM, params["activity"])]
        if self.has("ad-without-endpoint"):
            body["extension"] = [e for e in body["extension"] if not e["url"].endswith("KT2EndpointExtension")]
        stored = answer_json(self.client.create(self.outgoing(body)), "POST ActivityDefinition")
        return f"published ActivityDefinition/{stored['id']} with Endpoint/{endpoint['id']}"

    def report_status(self, params: dict[str, Any]) -> str:
        with self._launch_lock:
            if not self.launched:
                raise ActionFailed("no task was launched at this module")
            task_id, launch_version = self.launched[-1]
        read = self.client.read(f"Task/{task_id}")
        current = answer_json(read, f"GET Task/{task_id}", ok=(200,))
        version = version_of(current, read.headers.get("etag"))
        changed = copy.deepcopy(current)
        if self.has("drops-task-fields"):
            changed = {"resourceType": "Task", "id": task_id, "status": params["status"], "intent": "order"}
        changed["status"] = params["status"]
        if self.has("no-if-match"):
            sent = None
        elif self.has("stale-if-match"):
            sent = launch_version
        else:
            sent = version
        answer = self.client.update(changed, sent)
        return f"Task/{task_id} status {params['status']}: the voorziening answered {answer.status_code}"

    # -- the launch URL ---------------------------------------------------------------------------------
    async def _launch(self, request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _page(413, "Te groot")
        if not (request.headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
            return _page(415, "Een launch komt als formulier (POST)")
        try:
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return _page(400, "Ongeldig formulier")
        token, iss = form.get("launch", ""), form.get("iss", "")
        if not token or iss.rstrip("/") != self.fhir_base.rstrip("/"):
            return _page(400, "launch en iss (de FHIR-basis van dit domein) zijn nodig")
        try:
            return await run_in_threadpool(self._handle_launch, token)
        except (httpx.HTTPError, TokenRefused, DiscoveryFailed):
            return _page(503, "De voorziening is niet bereikbaar; probeer het later opnieuw")

    def _handle_launch(self, token: str) -> Response:
        with self._launch_lock:
            seen = token in self.accepted
        if seen and self.has("accepts-replayed-launch"):
            return _page(200, "Sessie hervat")
        if self.launch_path == "B":
            return self._authorize(token)
        if self.has("skips-introspection"):
            claims = _unverified_claims(token)
        else:
            answer = self.client.introspect(token)
            try:
                claims = answer.json() if answer.status_code == 200 else {}
            except ValueError:
                claims = {}
            if not isinstance(claims, dict):
                claims = {}
            if not self.has("ignores-inactive"):
                if claims.get("active") is not True or claims.get("aud") != self.client.device:
                    return _page(403, "Launch geweigerd")
            else:
                claims = {**_unverified_claims(token), **{k: v for k, v in claims.items() if k != "active"}}
        return self._open_session(token, claims.get("resource"), token if self.has("launch-token-as-bearer") else None)

    def _open_session(self, token: str, resource: Any, bearer: str | None) -> Response:
        """A verified launch: read the Task (own token unless a fault says otherwise), remember it, write the
        launch AuditEvent."""
        if not isinstance(resource, str) or not resource.startswith("Task/"):
            return _page(403, "Launch geweigerd: geen Task")
        read = self.client.read(resource, token=bearer)
        version = ""
        if read.status_code == 200:
            try:
                version = version_of(read.json(), read.headers.get("etag"))
            except ValueError:
                version = ""
        with self._launch_lock:
            self.accepted.add(token)
            self.launched.append((resource.split("/", 1)[1], version))
        self._launch_audit(token, resource, version)
        return _page(200, "Welkom bij de module")

    def _launch_audit(self, token: str, resource: str, version: str) -> None:
        if self.has("no-launch-audit"):
            return
        jti = _unverified_claims(token).get("jti")
        trace = uuid.uuid4().hex if self.has("launch-audit-wrong-trace") else (jti if isinstance(jti, str) else None)
        entity = f"{resource}/_history/{version}" if version else resource
        event = resources.application_audit_event(self.client.device, self.base_url, entity, trace_id=trace,
                                                  recorded=_now_instant())
        self.client.create(event)

    # -- path B: the SMART app launch --------------------------------------------------------------------
    def _authorize(self, token: str) -> Response:
        self.client.redirect_uri = self.redirect_uri
        flow = SmartLaunch(launch=token, iss=self.fhir_base)
        changes: dict[str, str | None] = {}
        if self.has("pkce-plain"):
            changes.update(code_challenge=flow.verifier, code_challenge_method="plain")
        if self.has("wrong-scope"):
            changes["scope"] = "launch openid fhirUser patient/*.read"
        with self._launch_lock:
            self.flows[flow.state] = flow
        url = self.client.endpoint("authorization_endpoint")
        return RedirectResponse(f"{url}?{urlencode(self.client.authorize_params(flow, **changes))}", status_code=302)

    async def _callback(self, request: Request) -> Response:
        code, state = request.query_params.get("code", ""), request.query_params.get("state", "")
        with self._launch_lock:
            flow = self.flows.pop(state, None)
        if flow is None:
            return _page(400, "Onbekende of verlopen aanmelding")
        if not code:
            return _page(403, "Aanmelden is niet gelukt")
        try:
            return await run_in_threadpool(self._finish, flow, code)
        except (httpx.HTTPError, TokenRefused, DiscoveryFailed):
            return _page(503, "De voorziening is niet bereikbaar; probeer het later opnieuw")

    def _finish(self, flow: SmartLaunch, code: str) -> Response:
        answer = self.client.exchange_code(flow, code)
        try:
            body = answer.json() if answer.status_code == 200 else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict) or not body.get("id_token"):
            return _page(403, "Aanmelden is niet gelukt")
        noop = body.get("access_token") if self.has("noop-on-store") else None
        resource = body.get("resource") or _unverified_claims(flow.launch).get("resource")
        return self._open_session(flow.launch, resource, noop if isinstance(noop, str) else None)


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT without checking anything (what the skips-introspection fault trusts)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _now_instant() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _page(status: int, text: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>{text}</title><p>{text}</p>", status_code=status)

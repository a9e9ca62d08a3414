"""The simulated KT1 eHealth module under test: claims its care plans, reports progress, takes part in SSO.

It offers the activities it was configured with, learns its assignments from the CarePlans it claims (acking
Failed with an exception when an activity of its own is unusable: no StartDate, the Python connector's
"Broken resource"), reports CarePlanActivityStatus updates that quote the version the server minted, and
serves the SSO endpoints a browser is sent to: `/launch` (check the issuer, redirect to Authorize with
`launch:<id>` and a state) and `/redirect` (check the state, trade the code for tokens with its own client
secret).  Messaging goes through `Kt1Module` (simulators/kt1/actors); fault flags bend one behaviour each.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ktbench.core.secret import Secret
from ktbench.driver.contract import Reply, reply_for
from ktbench.fhir.dstu1.constants import FHIR_BASE_PATH
from ktbench.targets.model import BasicCredential
from simulators.kt1.actors import DeliveredMessage, Kt1Module, LocalResource
from simulators.kt1.actors import kt1_resources as res
from simulators.kt1.actors.kt1_messages import KEEP
from simulators.kt1.actors.kt1_resources import CAREPLAN
from simulators.kt1.apps.mailbox import process_mailbox
from simulators.kt1.apps.portal import extension_value
from simulators.kt1.apps.transport import PlainHttp

LAUNCH_PATH = "/launch"
REDIRECT_PATH = "/redirect"


class SimulatedModule:
    def __init__(self, *, server_url: str, creds: BasicCredential, activities: tuple[str, ...],
                 faults: frozenset[str] = frozenset()) -> None:
        self.faults = faults
        self.server_url = server_url.rstrip("/")
        self.http = PlainHttp()
        self.kt1 = Kt1Module(http=self.http, server_url=server_url, creds=creds,
                             software="ktbench simulated eHealth module under test")
        self.offered = set(activities)
        self.assignments: dict[str, dict[str, Any]] = {}   # careplan activity id -> patient and careplan
        self.statuses: dict[str, LocalResource] = {}
        self.pending: dict[str, str] = {}                   # state -> launch id
        self.sessions: dict[str, dict[str, Any]] = {}       # code -> session (kept by one fault only)
        self.base = ""                                      # the module's own URL, set once it listens
        self.lock = threading.Lock()
        self.counter = 0

    def close(self) -> None:
        self.http.close()

    def fault(self, name: str) -> bool:
        return name in self.faults

    def handlers(self) -> dict[str, Any]:
        return {"process-mailbox": self.process_mailbox, "report-status": self.report_status}

    # -- mailbox -----------------------------------------------------------------------------------
    def process_mailbox(self, action: dict[str, Any]) -> Reply:
        return process_mailbox(self.kt1, action, self._handle,
                               search_instead_of_claim=self.fault("module-search-instead-of-claim"))

    def _handle(self, message: DeliveredMessage) -> None:
        problem = self._learn(message)
        if self.fault("module-no-ack"):
            return
        header = {"resourceType": "MessageHeader"} if self.fault("module-ack-drops-identifier") else None
        if problem is None or self.fault("module-acks-success-on-bad"):
            self.kt1.ack(message, "Success", header=header)
        else:
            exception = None if self.fault("module-failed-without-exception") else problem
            self.kt1.ack(message, "Failed", exception, header=header)

    def _learn(self, message: DeliveredMessage) -> str | None:
        """Take the module's assignments from a CarePlan; why it cannot (None: fine, or not for this module)."""
        if message.event != "CreateOrUpdateCarePlan":
            return None
        focal = message.focal
        if focal is None:
            return "Broken message: the focal CarePlan is missing"
        patient_url = ((focal.content.get("patient") or {}).get("reference")) or message.patient
        patient = message.resource(patient_url) if patient_url else None
        for activity in focal.content.get("activity") or []:
            if not isinstance(activity, dict):
                continue
            definition = extension_value(activity, CAREPLAN + "ActivityDefinition")
            if definition not in self.offered:
                continue
            ident = extension_value(activity, CAREPLAN + "ActivityIdentifier")
            start = next((e.get("valueDateTime") for e in activity.get("extension") or []
                          if isinstance(e, dict) and e.get("url") == CAREPLAN + "StartDate"), None)
            if not ident or not start:
                return (f"Broken resource '{focal.link or focal.url}': RequiredMissing: "
                        f"'{'startDate' if ident else 'identifier'}' required but missing.")
            self.assignments[ident] = {"patient_url": patient_url, "patient": patient, "definition": definition}
        return None

    # -- status reports ----------------------------------------------------------------------------
    def report_status(self, action: dict[str, Any]) -> Reply:
        params = action["params"]
        activity_id = params.get("activity") or next(reversed(self.assignments), None)
        assignment = self.assignments.get(activity_id or "")
        if assignment is None:
            return reply_for(action, "refused", f"no assignment of activity {activity_id!r} (process the "
                             "mailbox first)")
        self.counter += 1
        reported = f"internal-{self.counter}" if self.fault("module-status-wrong-activity") else activity_id
        content = res.activity_status(activity_id=reported, status=params["status"])
        resource = self.statuses.get(activity_id)
        if resource is None or self.fault("module-status-new-resource"):
            resource = LocalResource("Other", self.kt1.new_url("CarePlanActivityStatus", uuid.uuid4().hex[:16]),
                                     content)
            self.statuses[activity_id] = resource
        resource.content = content
        delivered = assignment["patient"]
        patient = LocalResource("Patient", assignment["patient_url"],
                                delivered.content if delivered else {"resourceType": "Patient"},
                                delivered.version if delivered else None)
        version = None if self.fault("module-status-without-version") else KEEP
        result = self.kt1.send("UpdateCarePlanActivityStatus", resource, [patient],
                               patient_url=assignment["patient_url"], focal_version=version,
                               other_versions={patient.url: None})
        if result.accepted:
            return reply_for(action, "done", f"reported {params['status']} for {activity_id}")
        return reply_for(action, "refused", f"the server refused the status: {result.answer.brief()[:300]}")

    # -- SSO ---------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [Route(LAUNCH_PATH, self._launch_endpoint, methods=["GET"]),
                Route(REDIRECT_PATH, self._redirect_endpoint, methods=["GET"])]

    async def _launch_endpoint(self, request: Request) -> Response:
        return await run_in_threadpool(self.launch, dict(request.query_params))

    async def _redirect_endpoint(self, request: Request) -> Response:
        return await run_in_threadpool(self.redirect, dict(request.query_params))

    def launch(self, query: dict[str, str]) -> Response:
        iss = query.get("iss", "")
        launch = query.get("launch") or query.get("launch_id") or ""
        if not launch or not iss:
            return JSONResponse({"error": "a launch needs iss and launch"}, status_code=400)
        if iss.rstrip("/") != self.server_url + FHIR_BASE_PATH and not self.fault("module-sso-trusts-any-iss"):
            return JSONResponse({"error": "this module does not know that Koppeltaal server"}, status_code=400)
        authorize = self.kt1.oauth_uris().get("authorize")
        if not authorize:
            return JSONResponse({"error": "the server advertises no authorize URI"}, status_code=502)
        state = secrets.token_urlsafe(16)
        with self.lock:
            self.pending[state] = launch
        scope = "patient/*.read" if self.fault("module-sso-no-launch-scope") else f"patient/*.read launch:{launch}"
        query_out = {"response_type": "code", "client_id": self.kt1.app_id, "redirect_uri": self.base + REDIRECT_PATH,
                     "scope": scope, "state": state}
        return RedirectResponse(f"{authorize}?{urlencode(query_out)}", status_code=302)

    def redirect(self, query: dict[str, str]) -> Response:
        code = query.get("code", "")
        state = query.get("state", "")
        with self.lock:
            if self.fault("module-sso-accepts-reused-code") and code in self.sessions:
                return JSONResponse({"signed_in": True, **self.sessions[code]})
            launch = self.pending.pop(state, None)
        if not code or launch is None:
            return JSONResponse({"error": "unknown or used state: start the launch again"}, status_code=400)
        if self.fault("module-sso-password-as-secret"):
            secret = self.kt1.creds.password
            creds = self.kt1.creds.model_copy(update={"client_secret": secret})
            tokens = type(self.kt1)(http=self.http, server_url=self.server_url, creds=creds).exchange_code(
                Secret(code), self.base + REDIRECT_PATH)
        else:
            tokens = self.kt1.exchange_code(Secret(code), self.base + REDIRECT_PATH)
        if tokens.answer.status != 200 or tokens.access_token is None:
            return JSONResponse({"error": "the server refused the authorization code"}, status_code=401)
        session = {"patient": tokens.fields.get("patient"), "resource": tokens.fields.get("resource")}
        with self.lock:
            self.sessions[code] = session
        return JSONResponse({"signed_in": True, **session})

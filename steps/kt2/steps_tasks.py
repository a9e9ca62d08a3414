"""Steps of the Task flow, subscriptions, AuditEvents and trace headers (features/kt2/tasks.feature,
subscriptions.feature, audit.feature).

The portal subscribes with an endpoint on the bench's actor host (one fresh channel per scenario) and waits on
the host's Inbox, never longer than the target's `notification_timeout_seconds`.  Where the voorziening cannot
reach the host (plain http, or a remote voorziening without `actors_public_base`) those scenarios are skipped.

AuditEvents are written asynchronously by some voorzieningen (HAPI: about two seconds later), so a search for
one is repeated until it appears or the same timeout passes.  The application that made the request reads its
own AuditEvents (AuditEvent R OWN in the role matrix: an AuditEvent's resource-origin is the requester); when
that finds nothing, a Beheerportaal instance (AuditEvent R ALL) is asked as well, registered once per process
when the bench has the admin accounts.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import ScenarioRequirements, precondition, require
from ktbench.http.client import json_dict
from simulators.kt2.actors import (
    FHIR_JSON,
    JWT_BEARER,
    Kt2Application,
    Kt2Portal,
    Received,
    resources,
)
from steps.kt2.bench import Kt2Bench, is_loopback
from steps.kt2.checks import (
    describe,
    etag_version,
    expect_status,
    is_outcome,
    outcome_text,
)
from steps.kt2.world import Kt2World

KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
TASK_CODES = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
TRACE_EXTENSIONS = {"requestId": "request-id", "traceId": "trace-id", "correlationId": "correlation-id"}
BEHEERPORTAAL_ROLE = "Beheerportaal"       # the role that reads every AuditEvent (role matrix: AuditEvent CR ALL)
NOT_NOTIFIED_GRACE = 0.3                   # seconds to wait for a notification that must not come, after the one
                                           # that must came (both were triggered before it)
POLL = 0.1

NOTIFY = "KT2-SUB-NOTIFY"
LIFECYCLE_REQ = "KT2-TASK-LIFECYCLE"
AUDIT_SEARCH = "KT2-AUDIT-SEARCH"
TRACE_REQS = {"X-Request-Id": "KT2-TRACE-REQUEST-ID", "X-Trace-Id": "KT2-TRACE-TRACE-ID",
              "X-Correlation-Id": "KT2-TRACE-CORRELATION"}

_beheerportalen: dict[int, Kt2Application] = {}
_beheer_lock = threading.Lock()


# -- small helpers -----------------------------------------------------------------------------------------------
def _new_id() -> str:
    return str(uuid.uuid4())


def _timeout(kt2: Kt2World) -> float:
    return float(kt2.bench.setting("notification_timeout_seconds", 10.0))


def _audit_delay(kt2: Kt2World) -> float:
    """How long an AuditEvent may take to become searchable (declared; the reference stores them before any
    AuditEvent read answers, HAPI about two seconds later)."""
    return float(kt2.bench.setting("audit_delay_seconds", 5.0))


def _local(reference: Any) -> str:
    """`Type/id` of a reference (absolute or versioned), "" for anything else."""
    if not isinstance(reference, str):
        return ""
    path = urlsplit(reference).path if reference.startswith(("http://", "https://")) else reference
    parts = [p for p in path.split("/") if p]
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


def _version_of(reference: Any) -> str | None:
    if isinstance(reference, str) and "/_history/" in reference:
        return reference.rsplit("/_history/", 1)[1].strip("/") or None
    return None


def _entries(answer: httpx.Response, rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in json_dict(answer).get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == rtype]


def _codes(codings: Any, system: str | None = None) -> set[str]:
    if isinstance(codings, dict):
        codings = [codings]
    return {str(c.get("code")) for c in codings or [] if isinstance(c, dict) and (system is None or c.get("system") == system)}


def _extension(resource: dict[str, Any], suffix: str) -> Any:
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith("/" + suffix):
            return ext.get("valueId", ext.get("valueString", ext.get("valueReference")))
    return None


def _instantiates(task: dict[str, Any]) -> list[str]:
    return [_local((e.get("valueReference") or {}).get("reference")) for e in task.get("extension") or []
            if isinstance(e, dict) and e.get("url") == INSTANTIATES]


def _status(resource: dict[str, Any]) -> Any:
    return resource.get("status")


def _meta_version(resource: dict[str, Any]) -> str:
    return str((resource.get("meta") or {}).get("versionId", ""))


# -- notifications ---------------------------------------------------------------------------------------------
def _notification_endpoint(kt2: Kt2World, app: Kt2Application) -> str:
    """A fresh notification URL of `app` on the actor host; skips when the voorziening cannot deliver there."""
    host = kt2.bench.host
    name = kt2.bench.target.name
    plain_loopback_allowed = kt2.bench.setting("loopback_http_notifications") and is_loopback(host.base_url) \
        and is_loopback(kt2.bench.fhir_base)
    if not host.base_url.startswith("https://") and not plain_loopback_allowed:
        pytest.skip("the bench's actor host serves plain http and KT2 subscription endpoints must be https: give "
                    f"[targets.{name}] actors_tls_cert and actors_tls_key (a certificate the voorziening trusts), or "
                    f"loopback_http_notifications = true for a loopback voorziening that accepts them")
    if is_loopback(host.base_url) and not is_loopback(kt2.bench.fhir_base):
        pytest.skip(f"the voorziening at {kt2.bench.fhir_base} cannot reach the bench's actor host on "
                    f"{host.base_url}: set [targets.{name}] actors_public_base to a tunnel to it")
    hosted = kt2.bench.hosted_name(app)
    if hosted not in host.apps:     # a pre-registered application: its notifications are received here all the same
        host.add(hosted, app.keys)
    channel = uuid.uuid4().hex
    kt2.notes["hosted"], kt2.notes["channel"] = hosted, channel
    return host.notification_url(hosted, channel)


def _is_mine(kt2: Kt2World):
    hosted, channel = kt2.notes.get("hosted"), kt2.notes.get("channel")
    return lambda r: r.kind == "notification" and r.app == hosted and r.channel == channel


def _wait_notifications(kt2: Kt2World, count: int, timeout: float | None = None) -> list[Received]:
    if "channel" not in kt2.notes:
        from ktbench.core.errors import BenchError

        raise BenchError("no earlier step subscribed a notification endpoint")
    return kt2.bench.host.inbox.wait(_is_mine(kt2), _timeout(kt2) if timeout is None else timeout, count)


def _notified(kt2: Kt2World, count: int = 1) -> list[Received]:
    """The first `count` notifications of the scenario's channel; too few is a failure of KT2-SUB-NOTIFY."""
    got = _wait_notifications(kt2, count)
    precondition(len(got) >= count, NOTIFY, f"the portal's subscription got {len(got)} notification(s) within "
                                            f"{_timeout(kt2):.0f} s, expected {count} (criteria "
                                            f"{kt2.resource('subscription').get('criteria')!r})")
    return got


def _subscribe(kt2: Kt2World, criteria: str, headers: tuple[str, ...] = ()) -> dict[str, Any]:
    portal = kt2.portal
    url = _notification_endpoint(kt2, portal)
    body = resources.subscription(criteria, url, headers, reason="ktbench: follow the Task flow")
    kt2.keep("subscription", portal.create(body), NOTIFY)
    subscription = kt2.resource("subscription")
    deadline = time.monotonic() + _timeout(kt2)
    while subscription.get("status") != "active" and time.monotonic() < deadline:   # HAPI activates asynchronously
        time.sleep(POLL)
        answer = portal.read(kt2.ref("subscription"))
        if answer.status_code == 200:
            subscription = kt2.resources["subscription"] = json_dict(answer)
    precondition(subscription.get("status") == "active", NOTIFY,
                 f"the portal's Subscription stays {subscription.get('status')!r}, never active "
                 f"({subscription.get('error', '')})")
    return subscription


# -- AuditEvents -----------------------------------------------------------------------------------------------
def _beheerportaal(bench: Kt2Bench) -> Kt2Application | None:
    if not bench.can_register():
        return None
    with _beheer_lock:
        if id(bench) not in _beheerportalen:
            _beheerportalen[id(bench)] = bench.registered(Kt2Portal, "beheerportaal", role_name=BEHEERPORTAAL_ROLE)
        return _beheerportalen[id(bench)]


def _audit_events(kt2: Kt2World, reader: Kt2Application, params: list[tuple[str, str]], wanted=bool,
                  ) -> tuple[list[dict[str, Any]], Kt2Application]:
    """AuditEvents matching `params`, as `reader` (its own) or else a Beheerportaal, until `wanted(events)` or
    the timeout; returns the last events seen and who read them."""
    readers: list[Kt2Application] = [reader]
    deadline = time.monotonic() + _audit_delay(kt2)
    problems: list[str] = []
    found: tuple[list[dict[str, Any]], Kt2Application] = ([], reader)
    answered = False
    while True:
        for who in readers:
            answer = who.search("AuditEvent", params)
            if answer.status_code != 200:
                problems.append(f"as the {who.name}: {describe(answer)} ({outcome_text(answer)})")
                continue
            answered = True
            events = _entries(answer, "AuditEvent")
            if events or not found[0]:
                found = (events, who)
            if wanted(events):
                return events, who
        if time.monotonic() >= deadline:
            break
        if len(readers) == 1:
            other = _beheerportaal(kt2.bench)
            if other is not None:
                readers.append(other)
        time.sleep(POLL)
    precondition(answered, AUDIT_SEARCH, f"searching AuditEvent?{'&'.join(f'{k}={v}' for k, v in params)} failed: "
                                         + "; ".join(problems[:2]))
    return found


def _by_request(kt2: Kt2World, reader: Kt2Application, request_id: str, req: str, what: str,
                kind: str | None = "rest") -> dict[str, Any]:
    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if _extension(e, "request-id") == request_id
                and (kind is None or kind in _codes(e.get("type")))]

    events, who = _audit_events(kt2, reader, [("requestId", request_id)], lambda found: bool(mine(found)))
    matching = mine(events)
    require(matching, req, f"no {kind or ''} AuditEvent of {what} (X-Request-Id {request_id}) within "
                           f"{_timeout(kt2):.0f} s (AuditEvent?requestId= found {len(events)} event(s))")
    kt2.notes["audit reader"] = who
    return matching[0]


def _agents(event: dict[str, Any]) -> list[str]:
    return [_local((a.get("who") or {}).get("reference")) for a in event.get("agent") or [] if isinstance(a, dict)]


def _entity_refs(event: dict[str, Any]) -> list[str]:
    return [str((e.get("what") or {}).get("reference", "")) for e in event.get("entity") or [] if isinstance(e, dict)]


# -- the Task flow ---------------------------------------------------------------------------------------------
@when("the module reads the task it was assigned")
def module_reads_task(kt2: Kt2World) -> None:
    kt2.remember("module's task", kt2.module.read(kt2.ref("task")))


@then("the module's copy of the task instantiates its ActivityDefinition for the patient")
def module_task_instantiates(kt2: Kt2World) -> None:
    req = "KT2-TASK-INSTANTIATES"
    answer = kt2.answers["module's task"]
    expect_status(answer, 200, req, "the module reading the portal's Task")
    task = json_dict(answer)
    definition = kt2.ref("definition")
    require(definition in _instantiates(task), req, f"the Task's instantiates extension names "
                                                    f"{_instantiates(task)}, not the module's {definition}")
    subject = _local((task.get("for") or {}).get("reference"))
    require(subject == kt2.ref("patient"), req, f"the Task is for {subject!r}, not {kt2.ref('patient')}")
    followed = kt2.module.read(definition)
    expect_status(followed, 200, req, f"the module following the Task's instantiates reference to {definition}")
    require(json_dict(followed).get("url") == kt2.resource("definition").get("url"), req,
            f"{definition} read through the Task is not the module's ActivityDefinition")


@then("the module's copy of the task is the portal's version 1 with status ready")
def module_task_version(kt2: Kt2World) -> None:
    req = "KT2-TASK-INSTANTIATES"
    task = json_dict(kt2.answers["module's task"])
    require(task.get("id") == kt2.resource("task")["id"] and _meta_version(task) == "1", req,
            f"the module reads Task/{task.get('id')} version {_meta_version(task)!r}, not the portal's version 1")
    require(_status(task) == "ready", req, f"the module sees status {_status(task)!r}, not the portal's ready")


@given("the portal subscribes to changes of the task on its notification endpoint")
def subscribe_task(kt2: Kt2World) -> None:
    _subscribe(kt2, f"Task?_id={kt2.resource('task')['id']}")


@given("the portal subscribes to completed tasks of the patient on its notification endpoint")
def subscribe_completed(kt2: Kt2World) -> None:
    _subscribe(kt2, f"Task?status=completed&patient={kt2.ref('patient')}")


@given(parsers.parse('the portal subscribes to changes of the task with the channel headers "{first}" and '
                     '"{second}"'))
def subscribe_with_headers(kt2: Kt2World, first: str, second: str) -> None:
    _subscribe(kt2, f"Task?_id={kt2.resource('task')['id']}", (first, second))


@given("the portal subscribes to the AuditEvents about the task on its notification endpoint")
def subscribe_audit(kt2: Kt2World) -> None:
    _subscribe(kt2, f"AuditEvent?entity={kt2.ref('task')}")


@given("the portal's notification endpoint answers 503 from now on")
def endpoint_fails(kt2: Kt2World) -> None:
    kt2.bench.host.answer_notifications(kt2.notes["hosted"], kt2.notes["channel"], [503] * 50)


@when(parsers.re(r"the module moves the task to (?P<status>[a-z-]+) with (?:If-Match|its own X-Request-Id and "
                 r"X-Trace-Id)"))
def module_moves(kt2: Kt2World, status: str) -> None:
    request_id, trace_id = _new_id(), _new_id()
    body = resources.changed(kt2.resource("task"), status=status)
    answer = kt2.module.update(body, kt2.version("task"), headers={"X-Request-Id": request_id,
                                                                     "X-Trace-Id": trace_id})
    moves = kt2.notes.setdefault("moves", [])
    moves.append({"status": status, "request_id": request_id, "trace_id": trace_id})
    kt2.remember(f"move {len(moves)}", answer)
    kt2.keep("task", answer, LIFECYCLE_REQ, (200,))


@then(parsers.parse("the task is stored as version {version:d} with status {status}"))
def task_stored(kt2: Kt2World, version: int, status: str) -> None:
    answer = kt2.answers[f"move {len(kt2.notes['moves'])}"]
    stored = kt2.resource("task")
    require(etag_version(answer) == str(version), LIFECYCLE_REQ,
            f"the update to {status} answered ETag {answer.headers.get('etag')!r}, not W/\"{version}\"")
    require(_meta_version(stored) == str(version) and _status(stored) == status, LIFECYCLE_REQ,
            f"the update answered version {_meta_version(stored)!r} with status {_status(stored)!r}, not "
            f"version {version} with {status}")
    read = kt2.module.read(kt2.ref("task"))
    expect_status(read, 200, LIFECYCLE_REQ, "the module reading the task back")
    body = json_dict(read)
    require(_meta_version(body) == str(version) and _status(body) == status, LIFECYCLE_REQ,
            f"reading the task back gives version {_meta_version(body)!r} with status {_status(body)!r}, not "
            f"version {version} with {status}")


@then(parsers.parse("the task's history holds ready, in-progress and {status} as versions 1 to 3"))
def task_history(kt2: Kt2World, status: str) -> None:
    answer = kt2.module.fhir("GET", f"{kt2.ref('task')}/_history")
    expect_status(answer, 200, LIFECYCLE_REQ, "the module reading the task's history")
    statuses = {_meta_version(t): _status(t) for t in _entries(answer, "Task")}
    wanted = {"1": "ready", "2": "in-progress", "3": status}
    require(all(statuses.get(v) == s for v, s in wanted.items()), LIFECYCLE_REQ,
            f"the task's history holds {dict(sorted(statuses.items()))}, expected {wanted}")


@then(parsers.parse("the portal is notified and reads version {version:d} of the task with status {status}"))
def portal_notified_reads(kt2: Kt2World, version: int, status: str) -> None:
    moves = len(kt2.notes.get("moves", []))
    got = _notified(kt2, moves)
    require(len(got) >= moves, NOTIFY, f"{len(got)} notification(s) for {moves} change(s) of the task")
    answer = kt2.portal.read(kt2.ref("task"))
    expect_status(answer, 200, NOTIFY, "the portal reading the task after the notification")
    body = json_dict(answer)
    require(_meta_version(body) == str(version) and _status(body) == status, NOTIFY,
            f"after the notification the portal reads version {_meta_version(body)!r} with status "
            f"{_status(body)!r}, not version {version} with {status}")


@then("the portal gets one notification, for the change to completed")
def one_notification(kt2: Kt2World) -> None:
    _notified(kt2, 1)
    extra = _wait_notifications(kt2, 2, NOT_NOTIFIED_GRACE)
    first = kt2.notes["moves"][0]["request_id"]
    wrong = [r for r in extra if r.headers.get("x-correlation-id") == first]
    require(not wrong, NOTIFY, "the change to in-progress, which the criteria Task?status=completed do not match, "
                               "was notified")
    require(len(extra) == 1, NOTIFY, f"{len(extra)} notifications for one matching change "
                                     f"(criteria {kt2.resource('subscription').get('criteria')!r})")


@when("the portal adds a view sub-task that is part of the task")
def portal_adds_view(kt2: Kt2World) -> None:
    body = resources.task(kt2.resource("patient")["id"], kt2.resource("definition")["id"], code="view",
                          part_of=kt2.resource("task")["id"])
    kt2.keep("view task", kt2.portal.create(body), "KT2-TASK-VIEW-SUBTASK")


def _is_view_of(kt2: Kt2World, task: dict[str, Any], req: str, who: str) -> None:
    codes = _codes((task.get("code") or {}).get("coding"), TASK_CODES)
    require("view" in codes, req, f"{who} the sub-task has codes {sorted(codes)}, not view")
    parents = [_local(p.get("reference")) for p in task.get("partOf") or [] if isinstance(p, dict)]
    require(kt2.ref("task") in parents, req, f"{who} the sub-task is part of {parents}, not {kt2.ref('task')}")


@then("the view sub-task is stored with code view and partOf the task")
def view_stored(kt2: Kt2World) -> None:
    _is_view_of(kt2, kt2.resource("view task"), "KT2-TASK-VIEW-SUBTASK", "as stored,")


@then("the module reads the view sub-task for the same patient and activity")
def module_reads_view(kt2: Kt2World) -> None:
    req = "KT2-TASK-VIEW-SUBTASK"
    answer = kt2.module.read(kt2.ref("view task"))
    expect_status(answer, 200, req, "the module reading the view sub-task")
    task = json_dict(answer)
    _is_view_of(kt2, task, req, "as the module reads it,")
    subject = _local((task.get("for") or {}).get("reference"))
    require(subject == kt2.ref("patient"), req, f"the sub-task is for {subject!r}, not {kt2.ref('patient')} like "
                                                "its main task")
    require(kt2.ref("definition") in _instantiates(task), req,
            f"the sub-task instantiates {_instantiates(task)}, not {kt2.ref('definition')}")


# -- subscriptions ---------------------------------------------------------------------------------------------
def _refused_subscription(kt2: Kt2World, body: dict[str, Any], *, profile_valid: bool = True) -> None:
    """Create `body`; one the KT2 profile forbids is sent past the bench's own message validation (which would
    call the scenario BROKEN for sending it), as a careless application would send it."""
    portal = kt2.portal
    if profile_valid:
        kt2.remember("subscription", portal.create(body))
        return
    answer = kt2.bench.http.request("POST", portal.url("Subscription"), content=json.dumps(body), role=portal.name,
                                    headers=portal.headers({"Content-Type": FHIR_JSON}), validate=False)
    kt2.remember("subscription", answer)


def _never_matching() -> str:
    return f"Task?identifier=http://ktbench.test/never|{uuid.uuid4().hex}"


@when(parsers.parse('the portal subscribes with the endpoint "{endpoint}"'))
def subscribe_endpoint(kt2: Kt2World, endpoint: str) -> None:
    _refused_subscription(kt2, resources.subscription(_never_matching(), endpoint))


@when(parsers.parse("the portal subscribes with a {kind} channel"))
def subscribe_channel(kt2: Kt2World, kind: str) -> None:
    body = resources.subscription(_never_matching(), "https://notify.ktbench.test/hook")
    body["channel"]["type"] = kind      # the endpoint stays https: the channel type is the only problem
    _refused_subscription(kt2, body, profile_valid=False)


@when(parsers.parse('the portal subscribes with the payload "{payload}"'))
def subscribe_payload(kt2: Kt2World, payload: str) -> None:
    body = resources.subscription(_never_matching(), "https://notify.ktbench.test/hook")
    body["channel"]["payload"] = payload
    _refused_subscription(kt2, body, profile_valid=False)


@then("the subscription is refused with 422 and an OperationOutcome")
def subscription_refused(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick("KT2-SUB-HTTPS", "KT2-SUB-REST-HOOK", "KT2-SUB-NO-PAYLOAD")
    answer = kt2.answers["subscription"]
    expect_status(answer, 422, req, "creating the Subscription")
    require(is_outcome(answer), req, "the refusal is not an OperationOutcome")


@then("the portal's notification has an empty body")
def notification_empty(kt2: Kt2World) -> None:
    note = _notified(kt2)[0]
    require(note.body == b"", "KT2-SUB-NO-PAYLOAD",
            f"the notification carries {len(note.body)} bytes (Content-Type {note.headers.get('content-type')!r}); "
            "KT2 notifications have an empty body")


@then("the portal's notification carries every channel header of the subscription")
def notification_headers(kt2: Kt2World) -> None:
    note = _notified(kt2)[0]
    for header in kt2.resource("subscription")["channel"].get("header") or []:
        name, _, value = header.partition(":")
        got = note.headers.get(name.strip().lower())
        require(got == value.strip(), "KT2-SUB-HEADERS",
                f"the notification's {name.strip()} is {got!r}, not {value.strip()!r} as the channel.header says")


def _trace_note(kt2: Kt2World) -> tuple[Received, dict[str, str]]:
    return _notified(kt2)[0], kt2.notes["moves"][-1]


@then("the portal's notification has a new X-Request-Id of its own")
def notification_request_id(kt2: Kt2World) -> None:
    note, move = _trace_note(kt2)
    got = note.headers.get("x-request-id")
    require(got, "KT2-SUB-TRACE", "the notification has no X-Request-Id")
    require(got != move["request_id"], "KT2-SUB-TRACE",
            "the notification reuses the module's X-Request-Id instead of a new one")


@then("the portal's notification has the module's X-Request-Id as X-Correlation-Id")
def notification_correlation(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    note, move = _trace_note(kt2)
    got = note.headers.get("x-correlation-id")
    require(got == move["request_id"], kt_requirements.pick("KT2-TRACE-CORRELATION", "KT2-SUB-TRACE"),
            f"the notification's X-Correlation-Id is {got!r}, not the X-Request-Id of the module's update "
            f"({move['request_id']})")


@then("the portal's notification has the module's X-Trace-Id")
def notification_trace(kt2: Kt2World) -> None:
    note, move = _trace_note(kt2)
    got = note.headers.get("x-trace-id")
    require(got == move["trace_id"], "KT2-SUB-TRACE",
            f"the notification's X-Trace-Id is {got!r}, not the module's {move['trace_id']}")


@then("the voorziening tries the notification again")
def notification_retried(kt2: Kt2World) -> None:
    _notified(kt2, 1)
    got = _wait_notifications(kt2, 2)
    require(len(got) >= 2, "KT2-SUB-RETRY", f"the endpoint answered 503 and the voorziening tried {len(got)} time(s) "
                                            f"within {_timeout(kt2):.0f} s, without a retry")


@then("the portal's subscription gets status error with an error text")
def subscription_error(kt2: Kt2World) -> None:
    req = "KT2-SUB-RETRY"
    deadline = time.monotonic() + _timeout(kt2)
    while True:
        answer = kt2.portal.read(kt2.ref("subscription"))
        expect_status(answer, 200, req, "the portal reading its Subscription")
        body = json_dict(answer)
        if body.get("status") == "error" or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    require(body.get("status") == "error", req, f"after failed deliveries the Subscription is "
                                                f"{body.get('status')!r}, not error")
    require(isinstance(body.get("error"), str) and body["error"].strip(), req,
            "the Subscription in status error says nothing in Subscription.error")


def _transmit_events(kt2: Kt2World, at_least: int) -> list[dict[str, Any]]:
    def transmits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if "transmit" in _codes(e.get("type"), LIFECYCLE)]

    # the triggering module's own events (their resource-origin), else a Beheerportaal's view
    events, _ = _audit_events(kt2, kt2.module, [("entity", kt2.ref("subscription"))],
                              lambda found: len(transmits(found)) >= at_least)
    return transmits(events)


@then("every notification attempt is recorded as a transmit AuditEvent, the failed ones with outcome 4")
def transmit_per_attempt(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-TRANSMIT"
    attempts = _wait_notifications(kt2, 99, 0)
    events = _transmit_events(kt2, len(attempts))
    require(len(events) >= len(attempts), req, f"{len(attempts)} notification attempts, but {len(events)} transmit "
                                               f"AuditEvent(s) naming {kt2.ref('subscription')}")
    outcomes = sorted(str(e.get("outcome")) for e in events)
    require(all(o == "4" for o in outcomes), req, f"the endpoint refused every attempt, but the transmit "
                                                  f"AuditEvents have outcomes {outcomes}, not 4")


@then("the notification is recorded as a transmit AuditEvent naming the task version and the subscription")
def transmit_recorded(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-TRANSMIT"
    _notified(kt2, 1)
    events = _transmit_events(kt2, 1)
    require(events, req, f"no transmit AuditEvent names {kt2.ref('subscription')} within {_timeout(kt2):.0f} s")
    event = events[0]
    require(str(event.get("outcome")) == "0", req, f"the delivered notification's transmit AuditEvent has outcome "
                                                   f"{event.get('outcome')!r}, not 0")
    refs = _entity_refs(event)
    task = [r for r in refs if _local(r) == kt2.ref("task")]
    require(task, req, f"the transmit AuditEvent names {refs}, not {kt2.ref('task')}")
    require(all(_version_of(r) in (None, "2") for r in task), req,
            f"the transmit AuditEvent names {task}, not version 2 of the task that was notified")
    require(kt2.portal.device in _agents(event), req,
            f"the transmit AuditEvent's agents are {_agents(event)}, not the subscriber {kt2.portal.device}")


@when("the module records an AuditEvent about the task, which only the module may read")
def module_records_audit(kt2: Kt2World) -> None:
    module = kt2.module
    request_id = _new_id()
    kt2.notes["hidden request"] = request_id
    body = resources.application_audit_event(module.device, "module.ktbench.test", kt2.ref("task"))
    kt2.keep("module's AuditEvent", module.create(body, headers={"X-Request-Id": request_id}))


@when("the portal records an AuditEvent about the task itself")
def portal_records_audit(kt2: Kt2World) -> None:
    portal = kt2.portal
    request_id = _new_id()
    kt2.notes["visible request"] = request_id
    body = resources.application_audit_event(portal.device, "portal.ktbench.test", kt2.ref("task"))
    kt2.keep("portal's AuditEvent", portal.create(body, headers={"X-Request-Id": request_id}))


@then("the portal is notified about its own AuditEvent only")
def notified_own_only(kt2: Kt2World) -> None:
    req = "KT2-SUB-NARROWING"
    _notified(kt2, 1)
    got = _wait_notifications(kt2, 2, NOT_NOTIFIED_GRACE)
    hidden = kt2.notes["hidden request"]
    leaked = [r for r in got if r.headers.get("x-correlation-id") == hidden]
    hidden_ref = kt2.ref("module's AuditEvent")
    require(not leaked, req, f"the portal was notified about the module's {hidden_ref}, which its scope "
                             "(AuditEvent R OWN) does not let it read")
    if not any("x-correlation-id" in r.headers for r in got):   # nothing names its cause: count instead
        require(len(got) == 1, req, f"{len(got)} notifications for two AuditEvents of which the portal may read one")


# -- AuditEvents of REST interactions ----------------------------------------------------------------------------
HEADER_SETS = {
    "with its own X-Request-Id": ("X-Request-Id",),
    "with its own X-Request-Id and X-Trace-Id": ("X-Request-Id", "X-Trace-Id"),
    "with its own X-Request-Id, X-Trace-Id and X-Correlation-Id": ("X-Request-Id", "X-Trace-Id", "X-Correlation-Id"),
    "twice without trace headers": (),
}
REQUESTS = ("read the task", "update the task", "create a patient", "search the patient's tasks",
            "read a task that does not exist", "update the task without If-Match", "read the task without a token",
            "read the CapabilityStatement")


def _send(kt2: Kt2World, request: str, headers: dict[str, str]) -> tuple[httpx.Response, tuple[str, str | None]]:
    """The portal's request and what it touched: (type, `Type/id` or None when only the type is known)."""
    portal = kt2.portal
    task = kt2.ref("task")
    if request == "read the task":
        return portal.read(task, headers=headers), ("Task", task)
    if request == "update the task":
        body = resources.changed(kt2.resource("task"), description="ktbench: checked by the portal")
        answer = portal.update(body, kt2.version("task"), headers=headers)
        if answer.status_code == 200:
            kt2.resources["task"] = json_dict(answer)
        return answer, ("Task", task)
    if request == "create a patient":
        answer = portal.create(resources.patient(family=kt2.faker.last_name(), given=kt2.faker.first_name()),
                               headers=headers)
        made = json_dict(answer).get("id")
        return answer, ("Patient", f"Patient/{made}" if made else None)
    if request == "search the patient's tasks":
        return portal.search("Task", {"patient": kt2.ref("patient")}, headers=headers), ("Task", None)
    if request == "read a task that does not exist":
        return portal.read(f"Task/{_new_id()}", headers=headers), ("Task", None)
    if request == "update the task without If-Match":
        return portal.update(kt2.resource("task"), None, headers=headers), ("Task", None)
    if request == "read the task without a token":
        return portal.fhir("GET", task, headers=headers, authenticated=False), ("Task", None)
    if request == "read the CapabilityStatement":
        return portal.fhir("GET", "metadata", headers=headers, authenticated=False), ("CapabilityStatement", None)
    raise ValueError(f"unknown request {request!r}")


@when(parsers.re(r"the portal sends a request to (?P<request>" + "|".join(REQUESTS) + r") (?P<how>"
                 + "|".join(HEADER_SETS) + r")$"))
def portal_sends(kt2: Kt2World, request: str, how: str) -> None:
    names = HEADER_SETS[how]
    if not names:
        first, _ = _send(kt2, request, {})
        second, _ = _send(kt2, request, {})
        kt2.remember("untraced 1", first)
        kt2.remember("untraced 2", second)
        return
    sent = {name: _new_id() for name in names}
    answer, touched = _send(kt2, request, sent)
    kt2.notes["sent"], kt2.notes["touched"] = sent, touched
    kt2.remember("traced", answer)


def _request_event(kt2: Kt2World, req: str) -> dict[str, Any]:
    if "event" not in kt2.notes:
        answer = kt2.answers["traced"]
        kt2.notes["event"] = _by_request(kt2, kt2.portal, kt2.notes["sent"]["X-Request-Id"], req,
                                         f"the portal's request ({describe(answer)})")
    return kt2.notes["event"]


@then(parsers.parse("the AuditEvent of that request is a rest event with subtype {subtype}, action {action} and "
                    "outcome {outcome}"))
def rest_event_shape(kt2: Kt2World, subtype: str, action: str, outcome: str) -> None:
    req = "KT2-AUDIT-REST"
    event = _request_event(kt2, req)
    answer = kt2.answers["traced"]
    require("rest" in _codes(event.get("type"), AUDIT_EVENT_TYPE), req,
            f"the AuditEvent's type is {event.get('type')}, not {AUDIT_EVENT_TYPE}#rest")
    subtypes = _codes(event.get("subtype"), RESTFUL_INTERACTION)
    require(subtype in subtypes, req, f"the AuditEvent of {describe(answer)} has subtype {sorted(subtypes)}, "
                                      f"not {subtype}")
    require(event.get("action") == action, req, f"the AuditEvent's action is {event.get('action')!r}, not {action}")
    require(str(event.get("outcome")) == outcome, req,
            f"the AuditEvent of {describe(answer)} has outcome {event.get('outcome')!r}, not {outcome}")


@then("the AuditEvent of that request names the portal's Device as requester and what the request touched")
def rest_event_names(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-REST"
    event = _request_event(kt2, req)
    device = kt2.portal.device
    requesters = [_local((a.get("who") or {}).get("reference")) for a in event.get("agent") or []
                  if isinstance(a, dict) and a.get("requestor") is True]
    require(device in requesters, req, f"the AuditEvent's requesting agents are {requesters}, not {device}")
    rtype, reference = kt2.notes["touched"]
    if reference:
        refs = [_local(r) for r in _entity_refs(event)]
        require(reference in refs, req, f"the AuditEvent's entities name {refs}, not {reference}")
    else:
        types = set().union(*[_codes(e.get("type")) for e in event.get("entity") or [] if isinstance(e, dict)])
        named = {_local(r).split("/")[0] for r in _entity_refs(event)}
        require(rtype in types | named, req, f"no entity of the AuditEvent is about {rtype} (entity types "
                                             f"{sorted(types)}, references {sorted(named)})")


@then(parsers.parse("searching AuditEvent by {parameter} finds the AuditEvent of that request"))
def audit_found_by(kt2: Kt2World, parameter: str) -> None:
    req = AUDIT_SEARCH
    header = {"requestId": "X-Request-Id", "traceId": "X-Trace-Id", "correlationId": "X-Correlation-Id"}[parameter]
    value = kt2.notes["sent"][header]
    request_id = kt2.notes["sent"]["X-Request-Id"]

    def mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if _extension(e, "request-id") == request_id]

    events, _ = _audit_events(kt2, kt2.portal, [(parameter, value)], lambda found: bool(mine(found)))
    require(mine(events), req, f"AuditEvent?{parameter}={value} finds {len(events)} event(s), none of them the "
                               f"AuditEvent of the portal's read (X-Request-Id {request_id})")
    stray = [e.get("id") for e in events if _extension(e, TRACE_EXTENSIONS[parameter]) != value]
    require(not stray, req, f"AuditEvent?{parameter}={value} also finds AuditEvents with another {parameter}: {stray}")


@then("the AuditEvent of that search holds the query, base64-encoded, as a query entity")
def search_query_entity(kt2: Kt2World) -> None:
    req = "KT2-SEARCH-AUDIT"
    event = _request_event(kt2, req)
    queries = []
    for entity in event.get("entity") or []:
        if isinstance(entity, dict) and "24" in _codes(entity.get("role"), OBJECT_ROLE) and entity.get("query"):
            try:
                queries.append(unquote(base64.b64decode(entity["query"], validate=True).decode("utf-8")))
            except (ValueError, UnicodeDecodeError):
                queries.append(f"<not base64: {str(entity['query'])[:40]}>")
    require(queries, req, "the search's AuditEvent has no query entity (role object-role#24 with a query)")
    patient = kt2.resource("patient")["id"]
    require(any("Task" in q and "patient" in q and patient in q for q in queries), req,
            f"the query entities hold {queries}, not the search Task?patient={kt2.ref('patient')}")


@then("the AuditEvent of that search names the task it found")
def search_hit_entity(kt2: Kt2World) -> None:
    req = "KT2-SEARCH-AUDIT"
    event = _request_event(kt2, req)
    refs = [_local(r) for r in _entity_refs(event)]
    require(kt2.ref("task") in refs, req, f"the search found {kt2.ref('task')}, but its AuditEvent names {refs}")


# -- user authentication ------------------------------------------------------------------------------------------
@when(parsers.re(r"the portal requests a token with its own X-Request-Id(?P<other> and an assertion for another "
                 r"audience)?$"))
def portal_traced_token(kt2: Kt2World, other: str | None) -> None:
    portal = kt2.portal
    request_id = _new_id()
    assertion = portal.assertion(kt2.bench.fhir_base if other else None)
    kt2.notes["sent"] = {"X-Request-Id": request_id}
    kt2.notes["assertion claims"] = assertion.split(".")[1]     # its claims part (no signature): sought in the event
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    answer = kt2.bench.http.request("POST", portal.token_endpoint, data=form, role=portal.name,
                                    headers={"Accept": "application/json", "X-Request-Id": request_id})
    kt2.remember("token", answer)


def _auth_event(kt2: Kt2World) -> dict[str, Any]:
    req = "KT2-AUDIT-AUTH"
    event = _by_request(kt2, kt2.portal, kt2.notes["sent"]["X-Request-Id"], req, "the portal's token request",
                        kind=None)
    require("110114" in _codes(event.get("type"), DCM), req,
            f"the token request's AuditEvent has type {event.get('type')}, not {DCM}#110114 User Authentication")
    require("110122" in _codes(event.get("subtype"), DCM), req,
            f"the token request's AuditEvent has subtypes {sorted(_codes(event.get('subtype')))}, not DCM#110122 "
            "Login")
    require(kt2.portal.device in _agents(event), req,
            f"the token request's AuditEvent names {_agents(event)}, not the portal {kt2.portal.device}")
    return event


@then("the token request is recorded as a successful user-authentication AuditEvent of the portal")
def auth_success(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-AUTH"
    expect_status(kt2.answers["token"], 200, "KT2-AUDIT-AUTH", "the portal's token request")
    event = _auth_event(kt2)
    require(str(event.get("outcome")) == "0", req, f"the granted token request is audited with outcome "
                                                   f"{event.get('outcome')!r}, not 0")


@then("the token request is recorded as a failed user-authentication AuditEvent")
def auth_failure(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-AUTH"
    answer = kt2.answers["token"]
    require(answer.status_code in (400, 401), req, f"the assertion for another audience: {describe(answer)}, "
                                                   "expected a refusal (the audit of a refusal cannot be judged)")
    event = _auth_event(kt2)
    # the 2026 memo logs a failed step with outcome 8, the AUTH implementation with 4 (kt2-protocol.md §8.9)
    require(str(event.get("outcome")) in ("4", "8"), req,
            f"the refused token request is audited with outcome {event.get('outcome')!r}, not 4 or 8")
    require(kt2.notes["assertion claims"] not in str(event), req,
            "the AuditEvent of the refused token request holds the client assertion itself")


# -- immutability -----------------------------------------------------------------------------------------------
def _who(kt2: Kt2World, who: str) -> Kt2Application:
    if who == "the portal":
        return kt2.portal
    kt2.need_admin()
    app = _beheerportaal(kt2.bench)
    assert app is not None
    return app


@given(parsers.re(r"(?P<event>the AuditEvent of the portal's own read|an AuditEvent the portal recorded itself) "
                  r"has been found"))
def audit_event_found(kt2: Kt2World, event: str) -> None:
    portal = kt2.portal
    if event.startswith("an AuditEvent the portal recorded"):
        body = resources.application_audit_event(portal.device, "portal.ktbench.test", kt2.ref("task"))
        kt2.keep("AuditEvent", portal.create(body))
        kt2.notes["audit reader"] = portal
        return
    request_id = _new_id()
    answer = portal.read(kt2.ref("task"), headers={"X-Request-Id": request_id})
    expect_status(answer, 200, "KT2-REST-READ", "the portal reading its task")
    kt2.resources["AuditEvent"] = _by_request(kt2, portal, request_id, "KT2-AUDIT-REST", "the portal's read")


@when(parsers.re(r"(?P<who>the portal|a Beheerportaal) tries to update that AuditEvent"))
def try_update_audit(kt2: Kt2World, who: str) -> None:
    app = _who(kt2, who)
    event = kt2.resource("AuditEvent")
    body = resources.changed(event, outcome="4", outcomeDesc="rewritten by ktbench")
    kt2.remember("audit update", app.update(body, kt2.version("AuditEvent")))


@when(parsers.re(r"(?P<who>the portal|a Beheerportaal) tries to delete that AuditEvent"))
def try_delete_audit(kt2: Kt2World, who: str) -> None:
    kt2.remember("audit delete", _who(kt2, who).delete(kt2.ref("AuditEvent")))


@then("both attempts on the AuditEvent are refused with a 4xx status")
def audit_changes_refused(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-IMMUTABLE"
    for label in ("audit update", "audit delete"):
        answer = kt2.answers[label]
        require(400 <= answer.status_code < 500, req,
                f"{describe(answer)}: an AuditEvent must not be changed or deleted (expected a 4xx refusal)")


@then("the AuditEvent is still there as it was recorded")
def audit_unchanged(kt2: Kt2World) -> None:
    req = "KT2-AUDIT-IMMUTABLE"
    original = kt2.resource("AuditEvent")
    reader: Kt2Application = kt2.notes.get("audit reader") or kt2.portal
    answer = reader.read(kt2.ref("AuditEvent"))
    expect_status(answer, 200, req, f"the {reader.name} reading the AuditEvent again")
    body = json_dict(answer)
    require(_meta_version(body) == _meta_version(original), req,
            f"the AuditEvent is now version {_meta_version(body)!r}, it was recorded as {_meta_version(original)!r}")
    require((body.get("outcome"), body.get("outcomeDesc")) == (original.get("outcome"), original.get("outcomeDesc")),
            req, f"the AuditEvent's outcome is now {body.get('outcome')!r} / {body.get('outcomeDesc')!r}")


# -- trace headers on every answer -----------------------------------------------------------------------------
@then(parsers.re(r"the answer carries the client's (?P<header>X-Request-Id|X-Trace-Id|X-Correlation-Id)$"))
def answer_echoes(kt2: Kt2World, header: str) -> None:
    req = TRACE_REQS[header]
    answer = kt2.answers["traced"]
    sent = kt2.notes["sent"][header]
    got = answer.headers.get(header)
    require(got == sent, req, f"{describe(answer)} with {header} {sent}, and its {header} is {got!r}")


@then(parsers.re(r"each answer carries its own new (?P<header>X-Request-Id|X-Trace-Id)$"))
def answer_mints(kt2: Kt2World, header: str) -> None:
    req = TRACE_REQS[header]
    values = []
    for label in ("untraced 1", "untraced 2"):
        answer = kt2.answers[label]
        value = answer.headers.get(header)
        require(value and value.strip(), req, f"{describe(answer)} without {header}, and has none")
        values.append(value)
    require(values[0] != values[1], req, f"two requests without {header} both got {values[0]!r}: not new ones")

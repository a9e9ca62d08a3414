"""Steps of the module-under-test scenarios: the module publishes its activity; the bench, playing the portal,
makes a patient and a Task and sends good and bad launches to the module's launch URL (the address of the
Endpoint it published); the module reports the Task's status.  The bench judges the module's answers to the
launches and its traffic at the voorziening."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pytest_bdd import given, parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.requirements import require
from simulators.kt2.actors import KeyRing, resources
from simulators.kt2.actors.resources import INSTANTIATES, KT
from steps.kt2_apps import jwt_checks
from steps.kt2_apps.browser import IDP_USER, browse
from steps.kt2_apps.versions import version_before
from steps.kt2_apps.world import AppWorld, form_of, given_ok, is_fhir, json_of, query_of

M = "KT2-APP-MODULE-"
RESOURCE_ORIGIN = KT + "resource-origin"
ENDPOINT_EXTENSION = KT + "KT2EndpointExtension"


def _publish(world: AppWorld) -> None:
    code = f"ktbench-activity-{uuid.uuid4().hex[:8]}"
    world.notes["code"] = code
    world.act("publish-activity", f"Publish your activity with identifier {code} and title 'Dagboek' "
                                  "(an Endpoint with your launch URL, then the ActivityDefinition).",
              activity=code, title="Dagboek")


@when("the module publishes its activity")
def module_publishes(kt2app: AppWorld) -> None:
    _publish(kt2app)


@given("the module has published its activity")
def module_has_published(kt2app: AppWorld) -> None:
    """Once per session: the launch scenarios share the module's activity and its Endpoint."""
    bench = kt2app.bench
    if "module_activity" not in bench.notes:
        _publish(kt2app)
        made = kt2app.created("ActivityDefinition", "create its ActivityDefinition (POST ActivityDefinition)")
        given_ok(made.status == 201, M + "AD-ENDPOINT", f"the module's ActivityDefinition was refused with "
                                                            f"HTTP {made.status}")
        definition = json_of(made.response_body)
        refs = [(e.get("valueReference") or {}).get("reference") for e in definition.get("extension") or []
                if isinstance(e, dict) and e.get("url") == ENDPOINT_EXTENSION]
        given_ok(refs and refs[0], M + "AD-ENDPOINT", "the module's ActivityDefinition names no Endpoint")
        endpoint = bench.actor.read(refs[0])
        given_ok(endpoint.status_code == 200 and json_of(endpoint.content).get("address"), M + "AD-ENDPOINT",
                     f"the module's Endpoint {refs[0]} cannot be read or has no address")
        bench.notes["module_activity"] = {"definition": definition, "address": json_of(endpoint.content)["address"]}
    kt2app.notes.update(bench.notes["module_activity"])


def _profile(body: dict[str, Any], profile: str, what: str) -> None:
    profiles = (body.get("meta") or {}).get("profile") or []
    require(KT + profile in profiles, M + "META-PROFILE", f"{what} names meta.profile {profiles!r}, not "
                                                          f"{KT + profile}")


@then("the module created an Endpoint with its launch URL and an ActivityDefinition that references it")
def ad_endpoint(kt2app: AppWorld) -> None:
    rid = M + "AD-ENDPOINT"
    made = kt2app.created("ActivityDefinition", "create its ActivityDefinition (POST ActivityDefinition)")
    body = json_of(made.request_body)
    refs = [(e.get("valueReference") or {}).get("reference") for e in body.get("extension") or []
            if isinstance(e, dict) and e.get("url") == ENDPOINT_EXTENSION]
    require(refs and refs[0], rid, f"the ActivityDefinition has no {ENDPOINT_EXTENSION} extension with a reference")
    endpoints = {f"Endpoint/{json_of(i.response_body).get('id')}": json_of(i.request_body)
                 for i in kt2app.app_requests(lambda i: is_fhir(i, "POST", "Endpoint") and i.status == 201,
                                              since=0) if i.seq < made.seq}
    require(refs[0] in endpoints, rid, f"the ActivityDefinition references {refs[0]!r}, not an Endpoint the module "
                                       "created before it")
    endpoint = endpoints[refs[0]]
    code = (endpoint.get("connectionType") or {}).get("code")
    require(code == "hti-smart-on-fhir", rid, f"the Endpoint's connectionType is {code!r}, not hti-smart-on-fhir")
    require(str(endpoint.get("address") or "").startswith(("https://", "http://")), rid,
            "the Endpoint's address is no URL (its launch URL)")


@then("the Endpoint and the ActivityDefinition name their KT2 profiles and the ActivityDefinition a business "
      "identifier")
def ad_profiles(kt2app: AppWorld) -> None:
    definition = json_of(kt2app.created("ActivityDefinition", "create its ActivityDefinition").request_body)
    endpoint = json_of(kt2app.created("Endpoint", "create its Endpoint (POST Endpoint)").request_body)
    _profile(endpoint, "KT2Endpoint", "the Endpoint")
    _profile(definition, "KT2ActivityDefinition", "the ActivityDefinition")
    ids = [i for i in definition.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    require(ids, M + "META-PROFILE", "the ActivityDefinition carries no business identifier")


@then("neither the Endpoint nor the ActivityDefinition carries a resource-origin of the module's own")
def ad_no_origin(kt2app: AppWorld) -> None:
    """The Endpoint first: a voorziening that refuses it leaves the module nothing to reference."""
    for rtype in ("Endpoint", "ActivityDefinition"):
        body = json_of(kt2app.created(rtype, f"create its {rtype}").request_body)
        own = [e for e in body.get("extension") or [] if isinstance(e, dict) and e.get("url") == RESOURCE_ORIGIN]
        require(not own, M + "NO-RESOURCE-ORIGIN", f"the {rtype} carries a resource-origin extension of its own")


# -- the bench plays the portal --------------------------------------------------------------------------------
@given("the bench's portal has assigned the activity to a patient as a task")
def bench_task(kt2app: AppWorld) -> None:
    portal = kt2app.bench.actor
    fake = kt2app.faker
    # the patient carries the identifier of the IdP user the browser logs in as on path B
    patient = portal.create(resources.patient(family=fake.last_name(), given=fake.first_name(),
                                              email=IDP_USER.identifier))
    if patient.status_code != 201:
        raise BenchError(f"the bench's portal could not create a patient: HTTP {patient.status_code}")
    patient_id = patient.json()["id"]
    task = portal.create(resources.task(patient_id, kt2app.notes["definition"]["id"]))
    if task.status_code != 201:
        raise BenchError(f"the bench's portal could not create the Task: HTTP {task.status_code}")
    kt2app.notes.update(patient_id=patient_id, task=task.json())


def _hti(world: AppWorld, defect: str = "") -> str:
    portal = world.bench.actor
    device = world.bench.app_device
    sub, task = f"Patient/{world.notes['patient_id']}", f"Task/{world.notes['task']['id']}"
    if defect == "expired":
        now = int(time.time())
        return portal.hti(device, sub, task, iat=now - 400, exp=now - 100)
    if defect == "other-aud":
        return portal.hti("Device/ktbench-another-module", sub, task)
    if defect == "foreign-key":
        stranger = KeyRing.generated(portal.keys.current.algorithm).current
        stranger.kid = portal.keys.current.kid
        return stranger.sign(portal.hti_claims(device, sub, task))
    return portal.hti(device, sub, task)


def _send(world: AppWorld, token: str) -> None:
    """The browser's form POST of the launch; when the module answers with a redirect to authorize (path B) the
    bench goes on as the browser through the identity provider back to the module (steps_path_b.browse)."""
    world.server_mark = world.bench.server_log.mark()
    world.actors_mark = world.bench.actors_log.mark()
    world.notes.pop("browser", None)
    answer = world.bench.actor.launch(world.notes["address"], token)
    world.notes.setdefault("launch_answers", []).append(answer)
    world.notes["token"] = token
    if _to_authorize(world, answer):
        browse(world, answer)
    world.flush()


def _to_authorize(world: AppWorld, answer: Any) -> bool:
    location = answer.headers.get("location", "")
    return answer.status_code in (302, 303) and location.startswith(world.bench.server_url) \
        and "/oauth2/authorize" in location


def _final(world: AppWorld) -> Any:
    """What the user finally saw: the module's answer to the launch (path A) or at the end of the browser's
    journey through authorize and the identity provider (path B)."""
    browser = world.notes.get("browser")
    return browser.final if browser is not None else world.notes["launch_answers"][-1]


@when("the bench's portal launches the module for the task")
def bench_launches(kt2app: AppWorld) -> None:
    _send(kt2app, _hti(kt2app))


@when(parsers.re(r"the bench's portal launches the module with a launch token that (?P<defect>is expired|is "
                 r"addressed to another module|is signed with a key the portal does not publish)"))
def bench_launches_bad(kt2app: AppWorld, defect: str) -> None:
    kind = {"is expired": "expired", "is addressed to another module": "other-aud",
            "is signed with a key the portal does not publish": "foreign-key"}[defect]
    _send(kt2app, _hti(kt2app, kind))


@when("the bench's portal sends the same launch again")
def bench_launches_again(kt2app: AppWorld) -> None:
    _send(kt2app, kt2app.notes["token"])


@given("the module has accepted a launch for the task")
def module_accepted(kt2app: AppWorld) -> None:
    _send(kt2app, _hti(kt2app))
    answer = _final(kt2app)
    given_ok(_accepted(kt2app, answer), M + "LAUNCH-ACCEPT", f"the module answered a valid launch with HTTP "
                                                                 f"{answer.status_code}")
    kt2app.notes["original_task"] = kt2app.notes["task"]


def _accepted(world: AppWorld, answer: Any) -> bool:
    if world.notes.get("browser") is not None:
        answer = _final(world)
    return 200 <= answer.status_code < 300


def _verified(world: AppWorld, token: str) -> bool:
    def verifies(item) -> bool:
        if item.path.endswith("/oauth2/introspect"):
            return form_of(item).get("token") == token
        if item.path.endswith("/oauth2/authorize"):
            return (query_of(item).get("launch") or form_of(item).get("launch")) == token
        return False
    return bool(world.app_requests(verifies))


@then("the module verified the launch token at the voorziening before it answered")
def launch_verified(kt2app: AppWorld) -> None:
    answer = kt2app.notes["launch_answers"][-1]
    redirected = answer.status_code in (302, 303) and "/oauth2/authorize" in answer.headers.get("location", "")
    require(redirected or _verified(kt2app, kt2app.notes["token"]), M + "LAUNCH-VERIFY",
            f"the module answered the launch with HTTP {answer.status_code} without introspecting the launch token "
            "(path A) or sending the browser to authorize with it (path B)")


@then("the module accepted the launch")
def launch_accepted(kt2app: AppWorld) -> None:
    answer = _final(kt2app)
    require(_accepted(kt2app, answer), M + "LAUNCH-ACCEPT", f"the module answered a valid launch with HTTP "
                                                            f"{answer.status_code}, not 2xx or a redirect to authorize")


@then(parsers.re(r"the module refused the (?P<which>replayed|expired|misaddressed|badly signed) launch"))
def launch_refused(kt2app: AppWorld, which: str) -> None:
    rid = M + {"replayed": "LAUNCH-REPLAY", "expired": "LAUNCH-EXPIRED", "misaddressed": "LAUNCH-AUD",
               "badly signed": "LAUNCH-SIGNATURE"}[which]
    answer = _final(kt2app)
    require(not _accepted(kt2app, answer) and 400 <= answer.status_code < 500, rid,
            f"the module answered the {which} launch with HTTP {answer.status_code}, not a refusal (4xx)"
            + (" (at the end of path B)" if kt2app.notes.get("browser") is not None else ""))


@then("every request of the module to the store carries its own access token")
def own_token(kt2app: AppWorld) -> None:
    rid = M + "OWN-TOKEN"
    task = kt2app.notes["task"]["id"]
    kt2app.wait(lambda i: is_fhir(i, "GET", f"Task/{task}") or is_fhir(i, "GET", "Task"),
                f"read the launched Task/{task}")
    for item in kt2app.app_requests(lambda i: "/fhir/r4" in i.path):
        scheme, _, token = (item.header("authorization") or "").partition(" ")
        require(scheme.lower() == "bearer" and token, rid, f"{item.method} {item.path} carries no Bearer token")
        require(token != "NOOP", rid, f"{item.method} {item.path} uses the NOOP access token of the launch")
        require(token != kt2app.notes["token"], rid, f"{item.method} {item.path} uses the HTI launch token as Bearer")
        claims = jwt_checks.decode(token).claims
        require(claims.get("sub") == kt2app.settings.client_id, rid, f"{item.method} {item.path} uses a token that "
                                                                     "was not issued to the module")


# -- task status ------------------------------------------------------------------------------------------------
@when(parsers.parse("the module reports the task {status}"))
def module_reports(kt2app: AppWorld, status: str) -> None:
    kt2app.act("report-status", f"Set the launched Task to status {status}.", status=status)


def _puts(world: AppWorld, count: int) -> list[Any]:
    task = world.notes["task"]["id"]

    def is_put(item) -> bool:
        return item.method == "PUT" and item.path.endswith(f"/Task/{task}")
    world.wait(is_put, f"update Task/{task} (PUT)")
    deadline = time.monotonic() + world.settings.traffic_timeout_seconds
    while len(world.app_requests(is_put)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    world.flush()
    return world.app_requests(is_put)


@then(parsers.parse("the module's {count:d} update(s) of the task carry If-Match with the task's current version"))
def task_if_match(kt2app: AppWorld, count: int) -> None:
    rid = M + "TASK-IF-MATCH"
    puts = _puts(kt2app, count)
    require(len(puts) >= count, rid, f"{count} status report(s) were asked for, {len(puts)} Task update(s) arrived")
    everything = kt2app.bench.server_log.since(0)
    for put in puts:
        sent = put.header("if-match")
        require(sent, rid, f"PUT {put.path.rsplit('/fhir/r4/', 1)[-1]} carries no If-Match")
        current = version_before(everything, put)
        require(sent == f'W/"{current}"', rid, f"a Task update carries If-Match {sent!r}, not the current version "
                                               f'W/"{current}"')


@then(parsers.parse("the module's last update sets the task {status} and keeps the rest of the task"))
def task_status(kt2app: AppWorld, status: str) -> None:
    rid = M + "TASK-STATUS"
    put = _puts(kt2app, 1)[-1]
    body = json_of(put.request_body)
    require(body.get("status") == status, rid, f"the Task update sets status {body.get('status')!r}, not {status}")
    original = kt2app.notes["original_task"]
    for key in ("identifier", "for", "owner", "intent"):
        require(body.get(key) == original.get(key), rid, f"the Task update changed or dropped {key}")
    kept = [e for e in body.get("extension") or [] if isinstance(e, dict) and e.get("url") == INSTANTIATES]
    require(kept, rid, "the Task update dropped the instantiates extension")
    profiles = (body.get("meta") or {}).get("profile") or []
    require(KT + "KT2Task" in profiles, rid, "the Task update dropped meta.profile KT2Task")
    require(200 <= put.status < 300, rid, f"the voorziening refused the Task update with HTTP {put.status}")

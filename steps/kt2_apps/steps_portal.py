"""Steps of the portal-under-test scenarios: the portal sends patients, assigns the bench module's activity,
launches it and subscribes; the bench judges what arrived at its voorziening and at its module's launch URL."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import require
from simulators.kt2.actors.resources import INSTANTIATES, KT
from steps.kt2_apps import jwt_checks
from steps.kt2_apps.bench import bench_activity
from steps.kt2_apps.steps_shared import app_jwks
from steps.kt2_apps.versions import version_before
from steps.kt2_apps.world import AppWorld, form_of, given_ok, json_of, query_of

P = "KT2-APP-PORTAL-"
RESOURCE_ORIGIN = KT + "resource-origin"


def _person(world: AppWorld) -> dict[str, str]:
    fake = world.faker
    return {"identifier": f"ktbench-{uuid.uuid4().hex[:12]}", "family": fake.last_name(),
            "given": fake.first_name(), "birth_date": fake.date_of_birth(minimum_age=18).isoformat(),
            "gender": "female"}


def _send_patient(world: AppWorld) -> None:
    person = _person(world)
    world.notes["person"] = person
    world.act("send-patient", f"Send a new patient {person['given']} {person['family']} with identifier "
                              f"{person['identifier']} to the voorziening.", patient=person)


@when("the portal sends a new patient")
def portal_sends_patient(kt2app: AppWorld) -> None:
    _send_patient(kt2app)


@when("the portal sends another new patient")
def portal_sends_another(kt2app: AppWorld) -> None:
    _send_patient(kt2app)


@given("the portal has sent a new patient")
def portal_has_sent_patient(kt2app: AppWorld) -> None:
    _send_patient(kt2app)
    made = kt2app.created("Patient", "create the patient (POST Patient)")
    given_ok(made.status == 201, P + "META-PROFILE", f"the patient the portal sent was refused with HTTP "
                                                         f"{made.status}")
    kt2app.notes["patient_id"] = json_of(made.response_body).get("id")


@when("the portal sends a change of that patient")
def portal_changes_patient(kt2app: AppWorld) -> None:
    person = dict(kt2app.notes["person"], family=kt2app.faker.last_name())
    kt2app.server_mark = kt2app.bench.server_log.mark()
    kt2app.act("send-patient", f"Change the family name of patient {person['identifier']} to {person['family']} "
                               "and send the update.", patient=person, update=True)


def _profile_and_identifier(body: dict[str, Any], profile: str, rid: str, what: str) -> None:
    profiles = (body.get("meta") or {}).get("profile") or []
    require(KT + profile in profiles, rid, f"{what} names meta.profile {profiles!r}, not {KT + profile}")
    identifiers = [i for i in body.get("identifier") or [] if isinstance(i, dict) and i.get("value")]
    require(identifiers, rid, f"{what} carries no business identifier (system and value)")


def _no_origin(body: dict[str, Any], rid: str, what: str) -> None:
    own = [e for e in body.get("extension") or [] if isinstance(e, dict) and e.get("url") == RESOURCE_ORIGIN]
    require(not own, rid, f"{what} carries a resource-origin extension of its own (the voorziening sets it)")


@then("the portal created the patient with meta.profile KT2Patient and its business identifier")
def patient_profile(kt2app: AppWorld) -> None:
    made = kt2app.created("Patient", "create the patient (POST Patient)")
    body = json_of(made.request_body)
    _profile_and_identifier(body, "KT2Patient", P + "META-PROFILE", "the patient")
    values = [i.get("value") for i in body.get("identifier") or [] if isinstance(i, dict)]
    require(kt2app.notes["person"]["identifier"] in values, P + "META-PROFILE",
            "the patient does not carry the business identifier it was given")


@then("the patient the portal created carries no resource-origin of its own")
def patient_no_origin(kt2app: AppWorld) -> None:
    made = kt2app.created("Patient", "create the patient (POST Patient)")
    _no_origin(json_of(made.request_body), P + "NO-RESOURCE-ORIGIN", "the patient")


@then("the portal's update of the patient carries If-Match with the version it read")
def patient_if_match(kt2app: AppWorld) -> None:
    rid = P + "IF-MATCH"
    patient = kt2app.notes["patient_id"]
    put = kt2app.wait(lambda i: i.method == "PUT" and i.path.endswith(f"/Patient/{patient}"),
                      f"update Patient/{patient} (PUT)")
    sent = put.header("if-match")
    require(sent, rid, f"PUT Patient/{patient} carries no If-Match")
    current = version_before(kt2app.bench.server_log.since(0), put)
    require(sent == f'W/"{current}"', rid, f"PUT Patient/{patient} carries If-Match {sent!r}, not the version "
                                           f'current before it (W/"{current}")')


@when(parsers.parse("the portal sets the task {status}"))
def portal_sets_task(kt2app: AppWorld, status: str) -> None:
    kt2app.server_mark = kt2app.bench.server_log.mark()
    activity, person = kt2app.notes["activity"], kt2app.notes["person"]
    kt2app.act("report-status", f"Set the Task of activity {activity['code']} for patient {person['identifier']} "
                                f"to status {status} and send the update.",
               status=status, patient_identifier=person["identifier"], activity=activity["code"])


@then("the portal's update of the task carries If-Match with the version it read")
def task_if_match(kt2app: AppWorld) -> None:
    rid = P + "IF-MATCH"
    task = kt2app.notes["task_id"]
    put = kt2app.wait(lambda i: i.method == "PUT" and i.path.endswith(f"/Task/{task}"), f"update Task/{task} (PUT)")
    sent = put.header("if-match")
    require(sent, rid, f"PUT Task/{task} carries no If-Match")
    current = version_before(kt2app.bench.server_log.since(0), put)
    require(sent == f'W/"{current}"', rid, f"PUT Task/{task} carries If-Match {sent!r}, not the version current "
                                           f'before it (W/"{current}")')


# -- activities and tasks -------------------------------------------------------------------------------------
@given("the bench's module has published an activity")
def module_published(kt2app: AppWorld) -> None:
    kt2app.notes["activity"] = bench_activity(kt2app.bench)


def _assign(world: AppWorld) -> None:
    activity = world.notes["activity"]
    world.act("assign-activity", f"Assign the activity {activity['code']} (ActivityDefinition "
                                 f"{activity['definition']['id']}) to patient {world.notes['person']['identifier']}.",
              patient_identifier=world.notes["person"]["identifier"], activity=activity["code"])


@when("the portal assigns the activity to the patient")
def portal_assigns(kt2app: AppWorld) -> None:
    _assign(kt2app)


@given("the portal has assigned the activity to the patient")
def portal_has_assigned(kt2app: AppWorld) -> None:
    _assign(kt2app)
    made = kt2app.created("Task", "create the Task (POST Task)")
    given_ok(made.status == 201, P + "TASK-INSTANTIATES", f"the Task the portal sent was refused with HTTP "
                                                              f"{made.status}")
    kt2app.notes["task_id"] = json_of(made.response_body).get("id")


@then("the portal created a Task that instantiates the module's ActivityDefinition for the patient")
def task_instantiates(kt2app: AppWorld) -> None:
    rid = P + "TASK-INSTANTIATES"
    body = json_of(kt2app.created("Task", "create the Task (POST Task)").request_body)
    definition = kt2app.notes["activity"]["definition"]["id"]
    refs = [(e.get("valueReference") or {}).get("reference") for e in body.get("extension") or []
            if isinstance(e, dict) and e.get("url") == INSTANTIATES]
    require(f"ActivityDefinition/{definition}" in refs, rid,
            f"the Task's instantiates extension ({INSTANTIATES}) names {refs!r}, not ActivityDefinition/{definition}")
    subject = (body.get("for") or {}).get("reference")
    require(subject == f"Patient/{kt2app.notes['patient_id']}", rid,
            f"the Task is for {subject!r}, not Patient/{kt2app.notes['patient_id']}")
    require(body.get("status") and body.get("intent"), rid, "the Task has no status or no intent")


@then("the Task names meta.profile KT2Task and a business identifier")
def task_profile(kt2app: AppWorld) -> None:
    body = json_of(kt2app.created("Task", "create the Task (POST Task)").request_body)
    _profile_and_identifier(body, "KT2Task", P + "META-PROFILE", "the Task")


# -- launches -------------------------------------------------------------------------------------------------
def _launch(world: AppWorld) -> None:
    world.act("launch-task", f"Launch the activity {world.notes['activity']['code']} for patient "
                             f"{world.notes['person']['identifier']} as the patient.",
              patient_identifier=world.notes["person"]["identifier"], activity=world.notes["activity"]["code"])


@when("the portal launches the task")
def portal_launches(kt2app: AppWorld) -> None:
    _launch(kt2app)


@when("the portal launches the task twice")
def portal_launches_twice(kt2app: AppWorld) -> None:
    _launch(kt2app)
    _launch(kt2app)


def _launch_path(world: AppWorld) -> str:
    return urlsplit(world.bench.actor.launch_url).path


def _launches(world: AppWorld, count: int = 1) -> list[Any]:
    path = _launch_path(world)
    world.wait(lambda i: urlsplit(i.path).path == path, "send the launch to the module's launch URL", log="actors")
    if count > 1:
        deadline = time.monotonic() + world.settings.traffic_timeout_seconds
        while len(world.app_requests(lambda i: i.path == path, log="actors")) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        world.flush()
    return world.app_requests(lambda i: urlsplit(i.path).path == path, log="actors")


def _token(item: Any) -> str:
    return form_of(item).get("launch") or query_of(item).get("launch") or ""


@then("the module receives a form POST with launch and iss at the launch URL of its Endpoint")
def launch_form(kt2app: AppWorld) -> None:
    rid = P + "LAUNCH-FORM"
    item = _launches(kt2app)[0]
    require(item.method == "POST", rid, f"the launch came as {item.method}, not a form POST")
    kind = (item.header("content-type") or "").split(";")[0].strip()
    require(kind == "application/x-www-form-urlencoded", rid, f"the launch POST is {kind!r}, not "
                                                              "application/x-www-form-urlencoded")
    form = form_of(item)
    require(form.get("launch"), rid, "the launch POST carries no launch field")
    require(form.get("iss") == kt2app.bench.fhir_base, rid, f"iss is {form.get('iss')!r}, not the FHIR base "
                                                            f"{kt2app.bench.fhir_base}")


@then("the launch token names the portal, the module's Device, the patient and the task, and lives at most "
      "5 minutes")
def hti_claims(kt2app: AppWorld) -> None:
    rid = P + "HTI-CLAIMS"
    item = _launches(kt2app)[0]
    decoded = jwt_checks.decode(_token(item))
    require(not decoded.problem, rid, f"the launch token is {decoded.problem}")
    claims = decoded.claims
    expected = {"iss": kt2app.settings.client_id, "aud": f"Device/{kt2app.bench.actor.client_id}",
                "sub": f"Patient/{kt2app.notes['patient_id']}", "resource": f"Task/{kt2app.notes['task_id']}"}
    for name, value in expected.items():
        require(claims.get(name) == value, rid, f"the launch token's {name} is {claims.get(name)!r}, not {value!r}")
    require(isinstance(claims.get("jti"), str) and claims["jti"], rid, "the launch token has no jti")
    problems = jwt_checks.lifetime_problems(claims, time.time(), at=item.received)
    require(not problems, rid, "the launch token: " + "; ".join(problems))


@then("no two launch tokens of the portal share a jti")
def hti_jti(kt2app: AppWorld) -> None:
    rid = P + "HTI-CLAIMS"
    items = _launches(kt2app, 2)
    require(len(items) >= 2, rid, f"two launches were asked for, {len(items)} arrived")
    jtis = [jwt_checks.decode(_token(i)).claims.get("jti") for i in items]
    require(len(set(map(str, jtis))) == len(jtis), rid, "two launch tokens carry the same jti")


@then("the launch token is signed with a key of the portal's JWKS and the voorziening finds it active")
def hti_signed(kt2app: AppWorld) -> None:
    rid = P + "HTI-SIGNED"
    token = _token(_launches(kt2app)[0])
    decoded = jwt_checks.decode(token)
    require(not decoded.problem, rid, f"the launch token is {decoded.problem}")
    problems = jwt_checks.signature_problems(token, decoded, app_jwks(kt2app))
    require(not problems, rid, "the launch token: " + "; ".join(problems))
    answer = kt2app.bench.actor.introspect(token)
    active = json_of(answer.content).get("active") if answer.status_code == 200 else None
    require(active is True, rid, f"the voorziening's introspection of the launch token answered active {active!r}")


# -- subscriptions --------------------------------------------------------------------------------------------
@when(parsers.parse('the portal subscribes to "{criteria}"'))
def portal_subscribes(kt2app: AppWorld, criteria: str) -> None:
    kt2app.notes["criteria"] = criteria
    kt2app.act("subscribe", f"Subscribe to changes matching {criteria} with your notification endpoint.",
               criteria=criteria)


@then("the portal created a Subscription that follows the KT2 rules")
def subscription_rules(kt2app: AppWorld) -> None:
    rid = P + "SUBSCRIPTION"
    body = json_of(kt2app.created("Subscription", "create the Subscription (POST Subscription)").request_body)
    require(body.get("status") == "requested", rid, f"status is {body.get('status')!r}, not requested")
    require(body.get("criteria") == kt2app.notes["criteria"], rid,
            f"criteria is {body.get('criteria')!r}, not {kt2app.notes['criteria']!r}")
    channel = body.get("channel") or {}
    require(channel.get("type") == "rest-hook", rid, f"channel.type is {channel.get('type')!r}, not rest-hook")
    require("payload" not in channel, rid, "channel.payload is set (KT2 forbids a payload)")
    endpoint = str(channel.get("endpoint") or "")
    parts = urlsplit(endpoint)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") \
        and kt2app.settings.loopback_http_subscriptions
    require(parts.scheme == "https" or loopback, rid, f"channel.endpoint {endpoint!r} is not https")
    require(not endpoint.startswith(kt2app.bench.server_url), rid, "channel.endpoint points at the voorziening, "
                                                                   "not at the portal's own endpoint")

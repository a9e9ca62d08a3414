"""Steps of the KT1 eHealth module under test: care plans claimed and acked, statuses reported, SSO.

The bench plays the server and the portal (`bench.counter`, a Kt1Portal) and, for SSO, the user's browser
(requests through the session's recording client, redirects followed by hand).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit

import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import precondition, require
from ktbench.fhir.dstu1.constants import AUTHORIZE_PATH, FHIR_BASE_PATH, TOKEN_PATH
from simulators.kt1.actors.kt1_application import Answer, query_of
from simulators.kt1.actors.kt1_resources import STATUS, PlannedActivity
from simulators.kt1.apps.portal import extension_value
from steps.kt1_apps.steps_portal import judge_failed_ack, judge_success_ack
from steps.kt1_apps.world import AppWorld, Message, query

M = "KT1-APP-MODULE-"


def bench_careplan(w: AppWorld, *, start: bool = True) -> None:
    portal = w.bench.counter
    patient = portal.new_patient(w.people)
    sent = portal.send_patient(patient)
    precondition(sent.accepted, M + "ACK-SUCCESS", f"the bench's patient was refused: {sent.answer.brief()}")
    practitioner = portal.new_practitioner(w.people)
    activity = PlannedActivity(identifier=f"act-{w.people.unique_id()}", definition=w.bench.activity,
                               start="2024-01-01T09:00:00" if start else "")
    careplan = portal.new_careplan(w.people, patient, practitioner, [activity])
    if not start:
        for act in careplan.content["activity"]:
            act["extension"] = [e for e in act["extension"] if not e["url"].endswith("#StartDate")]
    result = portal.send_careplan(careplan, patient, practitioner)
    precondition(result.accepted, M + "ACK-SUCCESS", f"the bench's care plan was refused: {result.answer.brief()}")
    w.notes.update(patient=patient, careplan=careplan, activity_id=activity.identifier,
                   careplan_identifier=result.identifier, patient_identifier=sent.identifier)


@given("the portal has assigned the module's activity to a new patient")
def _(kt1app: AppWorld) -> None:
    bench_careplan(kt1app)


@given("the portal has assigned the module's activity without a start date to a new patient")
def _(kt1app: AppWorld) -> None:
    bench_careplan(kt1app, start=False)


@given("the portal has sent a new patient to the module")
def _(kt1app: AppWorld) -> None:
    portal = kt1app.bench.counter
    patient = portal.new_patient(kt1app.people)
    sent = portal.send_patient(patient)
    precondition(sent.accepted, M + "ACK-SUCCESS", f"the bench's patient was refused: {sent.answer.brief()}")
    kt1app.notes.update(patient=patient, patient_identifier=sent.identifier)


@given("the module has processed the care plan assigning its activity to a new patient")
def _(kt1app: AppWorld) -> None:
    bench_careplan(kt1app)
    kt1app.act("process-mailbox", "Process the messages waiting in your Koppeltaal mailbox.")
    ack, _ = kt1app.ack_of(kt1app.notes["careplan_identifier"])
    precondition(ack is not None, M + "ACK-SUCCESS", "the module did not ack the care plan assigning its activity")


@when("the module is asked to process its mailbox")
def _(kt1app: AppWorld) -> None:
    kt1app.act("process-mailbox", "Process the messages waiting in your Koppeltaal mailbox.")


@when(parsers.parse('the module is asked to report the activity "{status}"'))
def _(kt1app: AppWorld, status: str) -> None:
    kt1app.notes.setdefault("status_mark", kt1app.bench.log.mark())
    kt1app.act("report-status", f"Report the status {status} for activity {kt1app.notes['activity_id']}.",
               status=status, activity=kt1app.notes["activity_id"])
    message = kt1app.wait_message("UpdateCarePlanActivityStatus", "send an UpdateCarePlanActivityStatus message")
    kt1app.notes.setdefault("status_messages", []).append(message)
    kt1app.notes["status"] = status


@then(parsers.parse('the module acked the care plan "Success" on the message\'s own URL with the delivered header'))
def _(kt1app: AppWorld) -> None:
    judge_success_ack(kt1app, M + "ACK-SUCCESS", kt1app.notes["careplan_identifier"], "care plan")


@then(parsers.parse('the module acked the patient message "Success" on the message\'s own URL with the delivered header'))
def _(kt1app: AppWorld) -> None:
    judge_success_ack(kt1app, M + "ACK-SUCCESS", kt1app.notes["patient_identifier"], "patient message")


@then('the module acked the care plan "Failed" with an exception')
def _(kt1app: AppWorld) -> None:
    judge_failed_ack(kt1app, M + "ACK-FAILED", kt1app.notes["careplan_identifier"], "care plan")


@then("the module claimed the care plan before acking it")
def _(kt1app: AppWorld) -> None:
    req = M + "CLAIM"
    identifier = kt1app.notes["careplan_identifier"]
    ack, copies = kt1app.ack_of(identifier)
    claims = [item for item, _, _ in copies if kt1app.is_claim(item)]
    require(bool(claims), req, f"the module should take message {identifier} with GetNextNewAndClaim; it read it "
            f"with {[item.path + '?' + item.query[:80] for item, _, _ in copies] or 'nothing'}")
    require(ack is None or ack.seq > claims[0].seq, req, "the module acked the message before claiming it")


@then(parsers.parse('the module sent an activity status "{status}" for the care plan activity and the patient'))
def _(kt1app: AppWorld, status: str) -> None:
    req = M + "STATUS-REPORT"
    message: Message = kt1app.notes["status_messages"][-1]
    focal = message.focal
    codes = [c.get("code") for c in (focal.get("code") or {}).get("coding") or [] if isinstance(c, dict)]
    require(focal.get("resourceType") == "Other" and "CarePlanActivityStatus" in codes, req,
            f"the focal resource should be an Other with code CarePlanActivityStatus, got "
            f"{focal.get('resourceType')!r} {codes}")
    activity = extension_value(focal, STATUS + "Activity")
    require(activity == kt1app.notes["activity_id"], req,
            f"the status should name the CarePlan activity {kt1app.notes['activity_id']!r}, names {activity!r}")
    reported = extension_value(focal, STATUS + "ActivityStatus")
    require(reported == status, req, f"the reported status should be {status!r}, is {reported!r}")
    patient_url = kt1app.notes["patient"].url
    require(message.patient_extension == patient_url, req,
            f"the MessageHeader Patient extension should name {patient_url}, got {message.patient_extension!r}")
    require(message.accepted, req, f"the server should accept the status; it answered {message.refusal()}")


@then("every later status report updated the same activity status quoting the version the server minted last")
def _(kt1app: AppWorld) -> None:
    req = M + "STATUS-VERSION"
    messages: list[Message] = kt1app.notes["status_messages"]
    first = messages[0]
    precondition(first.accepted, M + "STATUS-REPORT", f"the first status report was refused: {first.refusal()}")
    known = first.minted().get(str(first.focal_url))
    for number, message in enumerate(messages[1:], start=1):
        require(message.focal_url == first.focal_url, req,
                f"report {number + 1} should update the CarePlanActivityStatus {first.focal_url}, it names "
                f"{message.focal_url}")
        require(message.focal_version == known, req,
                f"report {number + 1} should quote the version the server minted last ({known!r}), quoted "
                f"{message.focal_version!r}")
        require(message.accepted, req, f"report {number + 1} was refused: {message.refusal()}")
        known = message.minted().get(str(first.focal_url), known)


# -- SSO: the bench plays the portal and the user's browser --------------------------------------------------
def needs_launch_url(w: AppWorld) -> str:
    url = w.settings.launch_url
    if not url:
        pytest.skip(f"[targets.{w.bench.target.name}] launch_url is not set (the module's SSO launch endpoint)")
    return url


def browse(w: AppWorld, url: str):
    """One browser request (no redirects followed) to the module or the bench's server."""
    return Answer.of(w.bench.counter.http.request("GET", url, role="browser",
                                                  headers={"Accept": "text/html,application/json"}))


@given("the portal has launched the module for a new patient")
def _(kt1app: AppWorld) -> None:
    needs_launch_url(kt1app)
    portal = kt1app.bench.counter
    patient = portal.new_patient(kt1app.people)
    answer = portal.launch(kt1app.bench.module_app_id, patient.url, portal.new_url("Practitioner", "care-team"),
                           f"act-{kt1app.people.unique_id()}")
    precondition(answer.status == 302 and answer.location, "KT1-APP-MODULE-SSO-AUTHORIZE",
                 f"the bench's launch was refused: {answer.brief()}")
    kt1app.notes["launch_location"] = answer.location
    kt1app.notes["launch_id"] = query_of(answer.location).get("launch")


def follow_to_authorize(w: AppWorld):
    w.notes["sso_mark"] = w.bench.log.mark()
    answer = browse(w, w.notes["launch_location"])
    w.notes["module_launch_answer"] = answer
    return answer


def follow_to_module(w: AppWorld) -> None:
    answer = follow_to_authorize(w)
    precondition(answer.status in (302, 303) and answer.headers.get("location"), M + "SSO-AUTHORIZE",
                 f"the module should send the browser to Authorize, answered HTTP {answer.status}")
    authorize = browse(w, answer.headers["location"])
    precondition(authorize.status == 302 and authorize.headers.get("location"), M + "SSO-AUTHORIZE",
                 f"the server's Authorize refused the module's request: HTTP {authorize.status} {authorize.text[:200]}")
    w.notes["redirect_location"] = authorize.headers["location"]
    w.notes["module_redirect_answer"] = browse(w, authorize.headers["location"])


@when("the user's browser follows the launch to the module")
def _(kt1app: AppWorld) -> None:
    follow_to_authorize(kt1app)


@when("the user's browser follows the launch through the module and Authorize back to the module")
def _(kt1app: AppWorld) -> None:
    follow_to_module(kt1app)


@given("the user has signed in to the module through a launch")
def _(kt1app: AppWorld) -> None:
    follow_to_module(kt1app)
    answer = kt1app.notes["module_redirect_answer"]
    precondition(200 <= answer.status < 300, M + "SSO-TOKEN",
                 f"the module did not sign the user in (HTTP {answer.status})")


@when("the browser brings the same authorization code back to the module")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["replay_answer"] = browse(kt1app, kt1app.notes["redirect_location"])


@when("a browser arrives at the module's launch URL with another server as issuer")
def _(kt1app: AppWorld) -> None:
    url = needs_launch_url(kt1app)
    sep = "&" if urlsplit(url).query else "?"
    foreign = f"http://127.0.0.1:9{FHIR_BASE_PATH}"
    launch = secrets.token_hex(16)
    kt1app.notes["foreign_answer"] = browse(kt1app, url + sep + urlencode(
        {"iss": foreign, "launch": launch, "application_id": kt1app.bench.module_app_id, "launch_id": launch}))


@then("the module sent the browser to Authorize for its own client and the launch")
def _(kt1app: AppWorld) -> None:
    req = M + "SSO-AUTHORIZE"
    answer = kt1app.notes["module_launch_answer"]
    location = answer.headers.get("location") or ""
    require(answer.status in (302, 303) and location, req,
            f"the module should redirect the browser to Authorize, answered HTTP {answer.status}")
    expected = kt1app.bench.server_url + AUTHORIZE_PATH
    require(location.split("?")[0] == expected, req,
            f"the module should send the browser to the advertised Authorize URI {expected}, sent it to "
            f"{location.split('?')[0]}")
    params = query_of(location)
    require(params.get("response_type") == "code", req,
            f"response_type should be 'code', got {params.get('response_type')!r}")
    require(params.get("client_id") == kt1app.bench.creds.app_id, req,
            f"client_id should be the module's own id {kt1app.bench.creds.app_id!r}, got {params.get('client_id')!r}")
    require(str(params.get("redirect_uri", "")).startswith(("http://", "https://")), req,
            f"redirect_uri should be the module's absolute redirect URL, got {params.get('redirect_uri')!r}")
    scopes = str(params.get("scope", "")).split()
    require(f"launch:{kt1app.notes['launch_id']}" in scopes, req,
            f"scope should hold launch:<the launch id> of the redirect, got {scopes}")


@then("the module traded the code at Token with its own client secret and signed the user in")
def _(kt1app: AppWorld) -> None:
    req = M + "SSO-TOKEN"
    kt1app.mark = kt1app.notes["sso_mark"]
    token = kt1app.wait(lambda i: i.path.endswith(TOKEN_PATH), "exchange the authorization code at Token")
    params = query(token)
    redirect = query_of(kt1app.notes["module_launch_answer"].headers.get("location")).get("redirect_uri")
    require(params.get("grant_type") == "authorization_code", req,
            f"grant_type should be authorization_code, got {params.get('grant_type')!r}")
    require(bool(params.get("code")), req, "the Token request carries no code")
    require(params.get("redirect_uri") in (None, redirect), req,
            f"redirect_uri should be the one sent to Authorize ({redirect}), got {params.get('redirect_uri')!r}")
    require(token.status == 200, req, f"the server refused the module's Token request (HTTP {token.status}): "
            "it must authenticate with Basic client_id:client_secret of its own")
    answer = kt1app.notes["module_redirect_answer"]
    require(200 <= answer.status < 300, req, f"the module should sign the user in, answered HTTP {answer.status}")


@then("the module refuses it")
def _(kt1app: AppWorld) -> None:
    answer = kt1app.notes["replay_answer"]
    require(400 <= answer.status < 500, M + "SSO-REUSED-CODE",
            f"a reused authorization code must not sign anyone in; the module answered HTTP {answer.status}")


@then("the module refuses the launch without sending the browser on")
def _(kt1app: AppWorld) -> None:
    answer = kt1app.notes["foreign_answer"]
    require(400 <= answer.status < 500, M + "SSO-ISS",
            f"a launch from an unknown issuer must be refused with an error; the module answered HTTP "
            f"{answer.status}" + (f" to {answer.headers.get('location', '').split('?')[0]}"
                                  if answer.headers.get("location") else ""))

"""Steps of the KT1 portal under test: patients, care plans, 409 recovery, Launch, status updates acked.

The bench plays the server and the module (`bench.counter`, a Kt1Module).  Givens made by the portal itself
are judged only as preconditions (their own scenarios judge them).
"""

from __future__ import annotations

import uuid

from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import precondition, require
from ktbench.fhir.dstu1.constants import LAUNCH_PATH, MAILBOX_PATH
from simulators.kt1.actors import LocalResource
from simulators.kt1.actors.kt1_resources import CAREPLAN
from simulators.kt1.apps.portal import extension_value
from steps.kt1_apps.world import AppWorld, Message, ack_status, query

P = "KT1-APP-PORTAL-"


# -- asking the portal ---------------------------------------------------------------------------------
def ask_send_patient(w: AppWorld, *, update: bool = False) -> Message:
    if not update:
        person = w.people.patient()
        w.notes["patient"] = {"identifier": str(person["bsn"]), "family": str(person["family"]),
                              "given": str(person["given"]), "birth_date": str(person["birth_date"]),
                              "gender": "female" if person["gender"] == "F" else "male"}
    else:
        w.notes["patient"] = {**w.notes["patient"], "given": w.people.patient()["given"]}
    w.act("send-patient", f"Send {'a change of the' if update else 'a new'} patient "
          f"{w.notes['patient']['given']} {w.notes['patient']['family']} (identifier "
          f"{w.notes['patient']['identifier']}) to Koppeltaal.", patient=w.notes["patient"], update=update)
    return w.wait_message("CreateOrUpdatePatient", "send a CreateOrUpdatePatient message")


def sent_patient(w: AppWorld) -> Message:
    sent = w.notes.get("patient_message")
    precondition(sent is not None and sent.accepted, P + "PATIENT-CONTENT",
                 f"the portal's patient was not accepted by the server ({sent.refusal() if sent else 'not sent'})")
    return sent


def ask_assign(w: AppWorld) -> Message:
    patient = w.notes["patient"]
    w.act("assign-activity", f"Assign the activity {w.bench.activity} to patient {patient['identifier']}.",
          patient_identifier=patient["identifier"], activity=w.bench.activity)
    return w.wait_message("CreateOrUpdateCarePlan", "send a CreateOrUpdateCarePlan message")


def careplan_activities(message: Message) -> list[dict[str, str | None]]:
    found = []
    for activity in message.focal.get("activity") or []:
        if isinstance(activity, dict):
            start = any(isinstance(e, dict) and e.get("url") == CAREPLAN + "StartDate"
                        for e in activity.get("extension") or [])
            found.append({"identifier": extension_value(activity, CAREPLAN + "ActivityIdentifier"),
                          "definition": extension_value(activity, CAREPLAN + "ActivityDefinition"),
                          "status": extension_value(activity, CAREPLAN + "ActivityStatus"),
                          "start": "yes" if start else None})
    return found


@given("the portal has sent a new patient")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["patient_message"] = ask_send_patient(kt1app)
    sent_patient(kt1app)


@given("the portal has assigned the module's activity to the patient")
def _(kt1app: AppWorld) -> None:
    message = ask_assign(kt1app)
    precondition(message.accepted, P + "CAREPLAN-CONTENT",
                 f"the portal's care plan was not accepted ({message.refusal()})")
    kt1app.notes["careplan_message"] = message


def assigned_activity(w: AppWorld) -> str:
    message = w.notes["careplan_message"]
    acts = careplan_activities(message)
    mine = [a for a in acts if a["definition"] == w.bench.activity] or acts
    precondition(bool(mine) and mine[-1]["identifier"], P + "CAREPLAN-CONTENT",
                 "the portal's care plan names no activity identifier")
    return str(mine[-1]["identifier"])


def patient_resource(w: AppWorld) -> LocalResource:
    sent = sent_patient(w)
    return LocalResource("Patient", str(sent.focal_url), sent.focal)


def bench_reports(w: AppWorld, activity_id: str, status: str) -> str:
    result = w.bench.counter.report_status(w.people, patient_resource(w), activity_id, status, other_versions={
        sent_patient(w).focal_url: None})
    precondition(result.accepted, P + "ACK-SUCCESS", f"the bench's status update was refused: {result.answer.brief()}")
    w.notes.setdefault("reports", []).append(result.identifier)
    return result.identifier


@given(parsers.parse('the module has reported the activity "{status}"'))
def _(kt1app: AppWorld, status: str) -> None:
    bench_reports(kt1app, assigned_activity(kt1app), status)


@given(parsers.parse('the module has reported "{status}" for each assigned activity'))
def _(kt1app: AppWorld, status: str) -> None:
    acts = [a for a in careplan_activities(kt1app.notes["careplan_message"]) if a["identifier"]]
    precondition(len(acts) >= 2, P + "CAREPLAN-CONTENT", "the portal's care plan should hold both activities")
    for act in acts:
        bench_reports(kt1app, str(act["identifier"]), status)


@given("the module has reported a status for an activity the portal never assigned")
def _(kt1app: AppWorld) -> None:
    bench_reports(kt1app, f"activity-unknown-{uuid.uuid4().hex[:10]}", "InProgress")


@given("someone else has changed the patient on the server")
def _(kt1app: AppWorld) -> None:
    sent = sent_patient(kt1app)
    version = sent.minted().get(str(sent.focal_url))
    content = {**sent.focal, "active": True}
    bump = LocalResource("Patient", str(sent.focal_url), content, version=version)
    result = kt1app.bench.counter.send("CreateOrUpdatePatient", bump, patient_url=sent.focal_url)
    precondition(result.accepted, P + "CONFLICT-RECOVER", f"the bench could not change the patient: "
                 f"{result.answer.brief()}")
    kt1app.notes["bumped_version"] = result.minted_versions().get(str(sent.focal_url))


# -- When ------------------------------------------------------------------------------------------------
@when("the portal is asked to send a new patient")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["patient_message"] = ask_send_patient(kt1app)


@when("the portal is asked to send another new patient")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["first_patient_message"] = kt1app.notes["patient_message"]
    kt1app.notes["patient_message"] = ask_send_patient(kt1app)


@when(parsers.parse("the portal is asked to send a change of the patient {times:d} times"))
def _(kt1app: AppWorld, times: int) -> None:
    kt1app.notes["change_mark"] = kt1app.bench.log.mark()
    for _ in range(times):
        ask_send_patient(kt1app, update=True)


@when("the portal is asked to send a change of the patient")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["change_mark"] = kt1app.bench.log.mark()
    ask_send_patient(kt1app, update=True)


@when("the portal is asked to assign the module's activity to the patient")
def _(kt1app: AppWorld) -> None:
    kt1app.notes["careplan_message"] = ask_assign(kt1app)


@when(parsers.parse("the portal is asked to assign the module's activity to the patient {times:d} times"))
def _(kt1app: AppWorld, times: int) -> None:
    kt1app.notes["change_mark"] = kt1app.bench.log.mark()
    for _ in range(times):
        ask_assign(kt1app)


@when("the portal is asked to launch the module's activity for the patient")
def _(kt1app: AppWorld) -> None:
    patient = kt1app.notes["patient"]
    kt1app.act("launch-task", f"Launch the activity {kt1app.bench.activity} for patient {patient['identifier']}.",
               patient_identifier=patient["identifier"], activity=kt1app.bench.activity)
    kt1app.notes["launch"] = kt1app.wait(lambda i: i.path.endswith(LAUNCH_PATH), "call Launch")


@when("the portal is asked to process its mailbox")
def _(kt1app: AppWorld) -> None:
    kt1app.act("process-mailbox", "Process the messages waiting in your Koppeltaal mailbox.")


# -- Then ------------------------------------------------------------------------------------------------
@then("the portal sent the patient as a new CreateOrUpdatePatient message")
def _(kt1app: AppWorld) -> None:
    req = P + "PATIENT-CONTENT"
    message: Message = kt1app.notes["patient_message"]
    asked = kt1app.notes["patient"]
    focal = message.focal
    require(focal.get("resourceType") == "Patient", req,
            f"the focal resource (MessageHeader.data[0] {message.data_ref!r}) should be a Patient in the bundle, "
            f"got {focal.get('resourceType')!r}")
    values = [i.get("value") for i in focal.get("identifier") or [] if isinstance(i, dict)]
    require(asked["identifier"] in values, req,
            f"the Patient should carry the identifier {asked['identifier']!r} it was registered with, has {values}")
    names = [n for n in focal.get("name") or [] if isinstance(n, dict)]
    families = [f for n in names for f in (n.get("family") or [])]
    givens = [g for n in names for g in (n.get("given") or [])]
    require(asked["family"] in families and asked["given"] in givens, req,
            f"the Patient's name should be {asked['given']} {asked['family']}, got given {givens} family {families}")
    require(message.patient_extension == message.focal_url, req,
            f"the MessageHeader Patient extension should name the patient {message.focal_url}, "
            f"got {message.patient_extension!r}")
    require(kt1app.settings.domain in message.domains, req,
            f"the bundle should carry the domain category of {kt1app.settings.domain!r}, has {message.domains}")
    require(message.focal_version is None, req,
            f"a new patient is sent without a version, the portal quoted {message.focal_version!r}")
    require(message.accepted, req, f"the server should accept the patient; it answered {message.refusal()}")


@then("the second patient is a resource of its own")
def _(kt1app: AppWorld) -> None:
    first: Message = kt1app.notes["first_patient_message"]
    second: Message = kt1app.notes["patient_message"]
    require(second.focal_url != first.focal_url, P + "PATIENT-CONTENT",
            f"two patients should have two URLs; both messages name {first.focal_url}")


def _version_chain(kt1app: AppWorld, event: str, first: Message, req: str, what: str) -> None:
    later = kt1app.messages(event, after=kt1app.notes["change_mark"])
    precondition(bool(later), req, f"no {event} message after the first")
    known = first.minted().get(str(first.focal_url))
    for number, message in enumerate(later, start=1):
        require(message.focal_url == first.focal_url, req,
                f"change {number} should update the {what} {first.focal_url}, it names {message.focal_url}")
        require(message.focal_version == known, req,
                f"change {number} should quote the version the server minted last ({known!r}), it quoted "
                f"{message.focal_version!r}" + ("" if message.accepted else f" and was refused: {message.refusal()}"))
        require(message.accepted, req, f"change {number} was refused: {message.refusal()}")
        known = message.minted().get(str(first.focal_url), known)


@then("every change of the patient quoted the version the server minted last")
def _(kt1app: AppWorld) -> None:
    _version_chain(kt1app, "CreateOrUpdatePatient", sent_patient(kt1app), P + "PATIENT-VERSION", "patient")


@then("every care plan after the first updated the same care plan quoting the version the server minted last")
def _(kt1app: AppWorld) -> None:
    messages = kt1app.messages("CreateOrUpdateCarePlan", after=kt1app.notes["change_mark"])
    precondition(len(messages) >= 2 and messages[0].accepted, P + "CAREPLAN-CONTENT",
                 "the portal's first care plan was not accepted")
    kt1app.notes["change_mark"] = messages[1].item.seq
    _version_chain(kt1app, "CreateOrUpdateCarePlan", messages[0], P + "CAREPLAN-VERSION", "care plan")


@then("the portal's change was refused with 409 and then resent with the latest version")
def _(kt1app: AppWorld) -> None:
    req = P + "CONFLICT-RECOVER"
    url = sent_patient(kt1app).focal_url
    attempts = [m for m in kt1app.messages("CreateOrUpdatePatient", after=kt1app.notes["change_mark"])
                if m.focal_url == url]
    precondition(bool(attempts) and attempts[0].item.status == 409, req,
                 "the portal's first attempt should have met a 409 (someone else changed the patient), got "
                 + (attempts[0].refusal() if attempts else "no attempt"))
    if len(attempts) < 2:
        kt1app.maybe(lambda i: i.method == "POST" and i.path.endswith(MAILBOX_PATH) and i.seq > attempts[0].item.seq,
                     "resend the change")
        attempts = [m for m in kt1app.messages("CreateOrUpdatePatient", after=kt1app.notes["change_mark"])
                    if m.focal_url == url]
    require(len(attempts) >= 2, req, "after the 409 the portal never resent the change of the patient")
    retry = attempts[1]
    latest = kt1app.notes.get("bumped_version")
    require(retry.focal_version == latest, req,
            f"the resend should quote the latest version {latest!r}, it quoted {retry.focal_version!r}")
    require(retry.accepted, req, f"the resend should be accepted, got {retry.refusal()}")


@then("the portal sent a care plan for the patient with the module's activity")
def _(kt1app: AppWorld) -> None:
    req = P + "CAREPLAN-CONTENT"
    message: Message = kt1app.notes["careplan_message"]
    patient_url = sent_patient(kt1app).focal_url
    focal = message.focal
    require(focal.get("resourceType") == "CarePlan", req,
            f"the focal resource should be a CarePlan, got {focal.get('resourceType')!r}")
    require((focal.get("patient") or {}).get("reference") == patient_url, req,
            f"the CarePlan should be about the patient {patient_url}, names {(focal.get('patient') or {})!r}")
    require(message.entry(patient_url) is not None, req,
            f"the bundle should hold the Patient {patient_url} the care plan is about")
    require(message.patient_extension == patient_url, req,
            f"the MessageHeader Patient extension should name {patient_url}, got {message.patient_extension!r}")
    acts = careplan_activities(message)
    mine = [a for a in acts if a["definition"] == kt1app.bench.activity]
    require(bool(mine), req, f"the CarePlan should hold an activity with ActivityDefinition "
            f"{kt1app.bench.activity!r}, its activities name {[a['definition'] for a in acts]}")
    for act in mine:
        require(bool(act["identifier"]) and bool(act["start"]) and bool(act["status"]), req,
                f"the activity should carry ActivityIdentifier, StartDate and ActivityStatus, has {act}")
    require(message.accepted, req, f"the server should accept the care plan; it answered {message.refusal()}")


@then("the portal called Launch for the module with the patient, a user and the care plan activity")
def _(kt1app: AppWorld) -> None:
    req = P + "LAUNCH"
    item = kt1app.notes["launch"]
    params = query(item)
    patient_url = sent_patient(kt1app).focal_url
    activities = {a["identifier"] for a in careplan_activities(kt1app.notes["careplan_message"])}
    require(params.get("client_id") == kt1app.bench.module_app_id, req,
            f"client_id should be the activity's application {kt1app.bench.module_app_id!r}, "
            f"got {params.get('client_id')!r}")
    require(params.get("patient") == patient_url, req,
            f"patient should be the patient's URL {patient_url}, got {params.get('patient')!r}")
    require(str(params.get("user", "")).startswith(("http://", "https://")), req,
            f"user should be the URL of the person launching, got {params.get('user')!r}")
    require(params.get("resource") in activities, req,
            f"resource should be the CarePlan activity identifier (one of {sorted(a for a in activities if a)}), "
            f"got {params.get('resource')!r}")
    require(item.status == 302, req, f"the server should redirect the launch (302), answered {item.status}")


def _the_ack(kt1app: AppWorld, req: str, which: int = -1):
    identifier = kt1app.notes["reports"][which]
    ack, copies = kt1app.ack_of(identifier)
    return identifier, ack, copies


@then("the portal claimed the status update before acking it")
def _(kt1app: AppWorld) -> None:
    req = P + "CLAIM"
    identifier, ack, copies = _the_ack(kt1app, req)
    claims = [item for item, _, _ in copies if kt1app.is_claim(item)]
    require(bool(claims), req, f"the portal should take message {identifier} with GetNextNewAndClaim; it read it "
            f"with {[item.url.split('?')[0] + '?' + item.query[:80] for item, _, _ in copies] or 'nothing'}")
    require(ack is None or ack.seq > claims[0].seq, req, "the portal acked the message before claiming it")


@then(parsers.parse('the portal acked the status update "Success" on the message\'s own URL with the delivered header'))
def _(kt1app: AppWorld) -> None:
    for number in range(len(kt1app.notes["reports"])):
        judge_success_ack(kt1app, P + "ACK-SUCCESS", kt1app.notes["reports"][number], "status update")


def judge_success_ack(kt1app: AppWorld, req: str, identifier: str, what: str) -> None:
    ack, copies = kt1app.ack_of(identifier)
    precondition(bool(copies), req, f"the {kt1app.role} never received the {what}")
    require(ack is not None, req, f"the {kt1app.role} never acked the {what} {identifier}")
    body = Message.of(ack)
    header = body.bundle if body else {}
    status, _ = ack_status(header)
    require(status == "Success", req, f"the {what} should be acked Success, was acked {status!r}")
    delivered = {path for _, path, _ in copies}
    require(ack.path.split("/_history/")[0] in delivered, req,
            f"the ack should be a PUT on the message's own URL ({sorted(delivered)}), went to {ack.path}")
    require(header.get("identifier") == identifier, req,
            f"the ack body should be the delivered MessageHeader (identifier {identifier}), has identifier "
            f"{header.get('identifier')!r}")
    require(ack.status == 200, req, f"the server should accept the ack, answered HTTP {ack.status}")


@then('the portal acked the status update "Failed" with an exception')
def _(kt1app: AppWorld) -> None:
    judge_failed_ack(kt1app, P + "ACK-FAILED", kt1app.notes["reports"][-1], "status update")


def judge_failed_ack(kt1app: AppWorld, req: str, identifier: str, what: str) -> None:
    ack, copies = kt1app.ack_of(identifier)
    precondition(bool(copies), req, f"the {kt1app.role} never received the {what}")
    require(ack is not None, req, f"the {kt1app.role} never acked the {what} {identifier}")
    body = Message.of(ack)
    status, exception = ack_status(body.bundle if body else None)
    require(status == "Failed", req, f"the {what} with bad content should be acked Failed, was acked {status!r}")
    require(bool(exception and exception.strip()), req,
            "a Failed ack should say why in ProcessingStatusException; it has none")

"""The simulated KT1 portal and module (simulators/kt1/actors) on their own, against the embedded reference server.

The suite trusts these actors to send what real connectors send and to read
what servers answer; these tests pin that behaviour down without Gherkin.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from ktbench.http.client import RecordingClient
from ktbench.fhir.dstu1.constants import DOMAIN_TAG_PREFIX, MESSAGE_EVENTS
from ktbench.fhir.dstu1.links import strip_history, version_of
from ktbench.core.events import EventRecorder, EventStream, HttpExchange
from ktbench.core.secret import Secret
from ktbench.generations.kt1 import GENERATION as KT1
from simulators.kt1.actors import DeliveredMessage, Kt1Module, Kt1Portal, People
from ktbench.generations.kt1.embedded import bench_data, running_kt1_bench
from ktbench.targets.writer import dumps
from simulators.kt1.actors.kt1_compose import compose, send_composed
from simulators.kt1.actors.kt1_messages import contains, header_summaries
from simulators.kt1.actors.kt1_resources import PlannedActivity, careplan_activity_status, status_of
from simulators.kt1.actors.webhook_receiver import WebhookReceiver
from simulators.kt1.data import load_data

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
CONNECTOR_CAREPLAN = SHARED / "fixtures" / "kt1" / "generated-by-koppeltaal-1.3.5.14__request_CreateOrUpdateCarePlan_new.json"


@pytest.fixture(scope="module")
def bench():
    with running_kt1_bench(claim_timeout=1.0) as server:
        yield server


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def http(recorder: EventRecorder):
    stream = EventStream()
    stream.subscribe(recorder)
    with RecordingClient(stream) as client:
        yield client


@pytest.fixture
def actors(bench, http):
    target = KT1.target_for_url(bench.url)
    portal = Kt1Portal(http, target.url, target.role("portal"))
    module = Kt1Module(http, target.url, target.role("module"))
    return portal, module, target


@pytest.fixture
def people(request) -> People:
    return People(request.node.nodeid)


def _careplan(portal: Kt1Portal, people: People):
    patient = portal.new_patient(people)
    practitioner = portal.new_practitioner(people)
    activity = PlannedActivity(identifier=f"act-{people.unique_id()}", definition="ktbench-game-1")
    return patient, practitioner, portal.new_careplan(people, patient, practitioner, [activity]), activity


def test_portal_sends_a_care_plan_and_learns_every_minted_version(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, careplan, _ = _careplan(portal, people)
    result = portal.send_careplan(careplan, patient, practitioner)
    assert result.accepted, result.answer.brief()
    assert result.reply_header["response"]["identifier"] == result.identifier
    assert strip_history(result.data_refs[0]) == careplan.url
    for res in (careplan, patient, practitioner):
        assert res.version and res.history == [res.version]
    again = portal.send_careplan(careplan, patient, practitioner)
    assert again.accepted, again.answer.brief()
    assert careplan.history[1] > careplan.history[0]
    sent_focal = again.bundle["entry"][1]
    assert version_of(sent_focal["link"][0]["href"]) == careplan.history[0]  # the update quoted the old version


def test_outgoing_bundle_has_the_connector_shape(actors, people) -> None:
    portal, _, target = actors
    patient, practitioner, careplan, _ = _careplan(portal, people)
    bundle = portal.send_careplan(careplan, patient, practitioner).bundle
    header_entry, *resource_entries = bundle["entry"]
    assert "link" not in header_entry and header_entry["id"].startswith(portal.resource_base + "/MessageHeader/")
    header = header_entry["content"]
    assert header["event"]["code"] == "CreateOrUpdateCarePlan" and header["data"] == [{"reference": careplan.url}]
    assert [e["content"]["resourceType"] for e in resource_entries] == ["CarePlan", "Patient", "Practitioner"]
    assert all(e["id"] == e["link"][0]["href"] for e in resource_entries)  # new resources: history-less links
    assert bundle["category"][0]["term"] == DOMAIN_TAG_PREFIX + target.role("portal").domain
    if not CONNECTOR_CAREPLAN.is_file():
        pytest.skip(f"connector fixture {CONNECTOR_CAREPLAN.name} not available (../shared missing)")
    real = json.loads(CONNECTOR_CAREPLAN.read_text(encoding="utf-8"))
    assert set(bundle) >= set(real) - {"id"} and set(header) >= set(real["entry"][0]["content"]) - {"id"}
    ours_activity = {e["url"] for e in resource_entries[0]["content"]["activity"][0]["extension"]}
    real_activity = {e["url"] for e in real["entry"][1]["content"]["activity"][0]["extension"]}
    assert real_activity <= ours_activity


def test_module_claims_reads_and_acknowledges(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, careplan, activity = _careplan(portal, people)
    sent = portal.send_careplan(careplan, patient, practitioner)
    answer, message = module.claim(patient.url, "CreateOrUpdateCarePlan")
    assert answer.status == 200 and isinstance(message, DeliveredMessage)
    assert message.identifier == sent.identifier and message.status == "Claimed"
    assert message.focal.url == careplan.url and message.focal.version == careplan.version
    assert careplan_activity_status(message.focal.content, activity.identifier) == "Available"
    assert contains(careplan.content, message.focal.content) is None
    assert module.ack(message, "Failed", "cannot process").ok
    found = module.find(sent.identifier, patient_url=patient.url)
    assert (found.status, found.exception) == ("Failed", "cannot process")
    assert module.ack(found, "Success", historyless=True).ok
    assert module.find(sent.identifier, patient_url=patient.url).status == "Success"
    empty_answer, nothing = module.claim(patient.url)
    assert nothing is None and empty_answer.body["entry"] == []


def test_versions_can_be_withheld_or_overridden(actors, people) -> None:
    portal, _, _ = actors
    patient, practitioner, careplan, _ = _careplan(portal, people)
    portal.send_careplan(careplan, patient, practitioner)
    refused = portal.send_careplan(careplan, patient, practitioner, focal_version=None)
    assert refused.answer.status == 409 and not refused.accepted
    assert refused.bundle["entry"][0]["content"]["data"][0]["reference"] == careplan.url
    assert careplan.history == [careplan.version]  # nothing learned from a refusal
    stale = portal.send_careplan(careplan, patient, practitioner, other_versions={patient.url: "1999-01-01T00:00:00:000.0000"})
    assert stale.answer.status == 409


def test_module_reports_status_on_one_versioned_resource(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, careplan, activity = _careplan(portal, people)
    portal.send_careplan(careplan, patient, practitioner)
    first = module.report_status(people, patient, activity.identifier, "InProgress", 30)
    second = module.report_status(people, patient, activity.identifier, "Completed", 100)
    assert first.accepted and second.accepted, second.answer.brief()
    assert first.focal is second.focal and len(second.focal.history) == 2
    assert version_of(second.bundle["entry"][0]["content"]["data"][0]["reference"]) == second.focal.history[0]
    _, message = portal.claim(patient.url, "UpdateCarePlanActivityStatus")
    assert status_of(message.focal.content) == "Completed"  # the InProgress report was replaced


@pytest.mark.parametrize("event", MESSAGE_EVENTS)
def test_every_event_composes_into_an_accepted_message(event: str, actors, people) -> None:
    portal, module, _ = actors
    patient = portal.new_patient(people)
    sender = portal if event.startswith("CreateOrUpdate") and "Result" not in event else module
    result = send_composed(sender, compose(sender, event, people, patient))
    assert result.accepted, result.answer.brief()
    assert result.focal.url.startswith(sender.resource_base)


def test_sso_web_launch_to_bearer_access(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, careplan, activity = _careplan(portal, people)
    portal.send_careplan(careplan, patient, practitioner)
    launch = portal.launch_module(module.app_id, patient, practitioner.url, activity.identifier)
    assert launch.status == 302
    launch_id = module.launch_id_from(launch.location)
    authorize = module.authorize(launch_id, "https://module.example/cb", state="s1")
    code = module.authorize_code(authorize)
    assert isinstance(code, Secret) and "state=s1" in authorize.location
    tokens = module.exchange_code(code, "https://module.example/cb", method="POST")
    assert tokens.answer.status == 200 and tokens.fields["patient"] == patient.url
    assert tokens.access_token.reveal() not in repr(tokens)
    bearer = module.with_bearer(tokens.access_token)
    assert bearer.search(patient_url=patient.url).status == 200
    refreshed = module.refresh(tokens.refresh_token)
    assert refreshed.answer.status == 200 and refreshed.access_token != tokens.access_token
    assert bearer.search(patient_url=patient.url).status == 401


def test_mobile_launch_gives_a_json_authorization_code(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, _, _ = _careplan(portal, people)
    mobile = portal.launch_module(module.app_id, patient, practitioner.url, "act", mobile=True)
    activation = mobile.body["activation_code"]
    authorize = module.authorize(activation, None)
    assert authorize.status == 200 and module.authorize_code(authorize) is not None


def test_activity_definitions_publish_update_and_list(actors, people) -> None:
    portal, module, _ = actors
    definition = module.new_activity_definition(people)
    created = module.publish_activity(definition.content)
    assert created.status == 201 and created.content_location
    definition.content["extension"][3]["valueString"] = "Renamed"
    updated = module.update_activity(created.content_location, definition.content)
    assert updated.ok and version_of(updated.content_location) > version_of(created.content_location)
    _, listed = portal.activities()
    assert any(strip_history(e["link"][0]["href"]) == strip_history(updated.content_location) for e in listed)


def test_xml_speaking_actors(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, careplan, _ = _careplan(portal, people)
    sent = portal.speaking("xml").send_careplan(careplan, patient, practitioner)
    assert sent.accepted and sent.answer.is_xml
    answer, message = module.speaking("xml").claim(patient.url)
    assert answer.is_xml and message is not None and message.identifier == sent.identifier


def test_every_exchange_is_a_redacted_event(actors, people, recorder) -> None:
    portal, module, _ = actors
    patient = portal.new_patient(people)
    portal.send_patient(patient)
    module.with_password("not-the-password").search()
    exchanges = recorder.of(HttpExchange)
    assert [e.role for e in exchanges] == ["portal", "module"]
    assert exchanges[1].status == 401
    for exchange in exchanges:
        auth = exchange.header("authorization", response=False) or ""
        assert "secret" not in auth and "not-the-password" not in auth


def test_people_are_reproducible_but_identities_unique() -> None:
    a, b = People("scenario x"), People("scenario x")
    assert a.patient() == b.patient() and a.practitioner() == b.practitioner()
    assert People("scenario y").patient() != People("scenario x").patient()
    assert a.unique_id() != b.unique_id()


def test_contains_reports_what_changed() -> None:
    assert contains({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}], "d": 4}) is None
    assert "missing" in contains({"a": 1}, {})
    assert "expected 2" in contains({"a": [{"b": 2}]}, {"a": [{"b": 3}]})


def test_bench_data_file_is_valid_reference_server_data(tmp_path) -> None:
    data = bench_data(None, webhook_url="http://127.0.0.1:9/hook/x", webhook_secret="s", code_seconds=1,
                      token_seconds=2)
    path = tmp_path / "data.toml"
    path.write_text(dumps(data), encoding="utf-8")
    assert tomllib.loads(path.read_text(encoding="utf-8")) == data
    loaded = load_data(path)
    assert loaded.settings.authorization_code_seconds == 1
    assert any(app.webhook_url == "http://127.0.0.1:9/hook/x" for app in loaded.applications)


def test_the_bench_target_describes_its_timers_and_receiver_in_its_settings(bench) -> None:
    settings = bench.target.settings
    assert bench.target.embedded and bench.target.kind == "kt1-server"
    assert settings.claim_timeout_seconds == 1.0 and settings.max_claim_expiries == 2
    assert settings.webhook_receiver_url == bench.receiver.url and settings.webhook_role == "observer"
    assert settings.authorization_code_seconds == 1.0 and settings.access_token_seconds == 2.0


def test_webhook_receiver_records_calls_without_the_secret() -> None:
    with WebhookReceiver({"app": "s3cret"}) as receiver, httpx.Client() as client:
        client.post(receiver.hook_url("app"), headers={"Category": "E", "KoppeltaalMessageIdentifier": "m1",
                                                      "X-Koppeltaal-Secret": "s3cret"})
        client.post(receiver.hook_url("app"), headers={"KoppeltaalMessageIdentifier": "m2",
                                                      "X-Koppeltaal-Secret": "wrong"})
        listed = client.get(receiver.url + "/received", params={"identifier": "m1"}).json()
        assert client.get(receiver.url + "/elsewhere").status_code == 404
    assert len(listed) == 1 and listed[0]["category"] == "E" and listed[0]["secret_matches"]
    assert "s3cret" not in json.dumps(listed)
    assert not receiver.received("m2")[0].secret_matches


def test_bench_server_notifies_the_observers_webhook(bench, actors, people) -> None:
    portal, _, _ = actors
    patient = portal.new_patient(people)
    sent = portal.send_patient(patient)
    deadline = time.monotonic() + 5
    while not bench.receiver.received(sent.identifier) and time.monotonic() < deadline:
        time.sleep(0.02)
    (note,) = bench.receiver.received(sent.identifier)
    assert note.app == "ktbench-observer" and note.category == "CreateOrUpdatePatient" and note.secret_matches


def test_search_pages_follow_next_links(actors, people) -> None:
    portal, module, _ = actors
    patient, practitioner, _, _ = _careplan(portal, people)
    for _ in range(3):
        careplan = portal.new_careplan(people, patient, practitioner, [PlannedActivity("a", "d")])
        portal.send_careplan(careplan, patient, practitioner)
    headers, answers = module.search_all(patient_url=patient.url, count=2)
    assert len(headers) == 3 and len(answers) == 2
    assert all(h.patient == patient.url for h in headers)
    assert header_summaries(answers[0].body)[0].version

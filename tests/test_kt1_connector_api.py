"""The KT1.3 reference server as seen by an independent, real client: the public `koppeltaal` connector.

Why: our own tests only prove that the server agrees with our reading of the
specification.  The Python connector (PyPI `koppeltaal` 1.3.5.14) was written
against the production Koppeltaal servers, so every call here that succeeds is
evidence that the reference server behaves like the real thing for the real
client: packing, versioning, the claim cycle, acknowledgements, searches and
the SSO flow.  Where the connector itself cannot do something (see the
CarePlanActivityResult tests), the test pins down what it can and cannot do.

Every test drives a fresh server on 127.0.0.1 (port 0) through real HTTP.
"""

from __future__ import annotations

import datetime
import time
import warnings
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from faker import Faker

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # koppeltaal imports the deprecated pkg_resources
    pytest.importorskip("koppeltaal", reason="the koppeltaal connector (extra 'test') is not installed")
    import zope.interface
    from koppeltaal import connector  # first: importing koppeltaal.codes on its own hits an import circle
    from koppeltaal import codes, definitions, fhir, interfaces, models, utils
    from koppeltaal.fhir import bundle as kt_bundle

from simulators.kt1.embedded import running_kt1_server

# The connector calls datetime.utcnow(); that is its business, not a finding about the server.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:koppeltaal")

DOMAIN = "ktbench-alpha"
PORTAL_URL = "https://portal.ktbench.test/fhir/Koppeltaal"
MODULE_URL = "https://module.ktbench.test/fhir/Koppeltaal"
NO_FOCAL_VERSION = "No version specified for the focal resource, message is rejected."
WRONG_VERSION = "The specified resource version is not correct"
# The events ktbench-module subscribes to in the default data file (ktbench-portal takes every event).
MODULE_EVENTS = {"CreateOrUpdateCarePlan", "CreateOrUpdatePatient", "CreateOrUpdatePractitioner",
                 "CreateOrUpdateRelatedPerson", "CreateOrUpdateUserMessage", "UpdateCarePlanActivityStatus"}


# --------------------------------------------------------------------------------------------------
# Connector plumbing
# --------------------------------------------------------------------------------------------------
class StableIntegration(connector.Integration):
    """The connector's default `model_id` is `id(model)`, which is not stable; real integrations map their
    own database ids.  Here a model keeps the first id it was given (seeded, so runs are reproducible)."""

    def __init__(self, url: str, new_id: Callable[[], str]) -> None:
        super().__init__(name="ktbench connector test", url=url, software="ktbench", version="0.1")
        self._new_id = new_id

    def model_id(self, model: object) -> str:
        mid = getattr(model, "_ktbench_id", None)
        if mid is None:
            mid = self._new_id()
            model._ktbench_id = mid  # type: ignore[attr-defined]
        return mid


@pytest.fixture
def fake() -> Faker:
    f = Faker("nl_NL")
    f.seed_instance(1305)
    return f


@pytest.fixture
def server() -> Iterator:
    with running_kt1_server() as srv:
        yield srv


@pytest.fixture
def connect(fake: Faker) -> Iterator[Callable[..., connector.Connector]]:
    made: list[connector.Connector] = []

    def make(srv, username: str, password: str, url: str, domain: str = DOMAIN) -> connector.Connector:
        conn = connector.Connector(utils.Credentials(srv.url, username, password, domain, {}),
                                   StableIntegration(url, fake.uuid4))
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def portal(server, connect) -> connector.Connector:
    return connect(server, "ktbench-portal", "portal-secret", PORTAL_URL)


@pytest.fixture
def module(server, connect) -> connector.Connector:
    return connect(server, "ktbench-module", "module-secret", MODULE_URL)


# --------------------------------------------------------------------------------------------------
# Models, built only with koppeltaal.models
# --------------------------------------------------------------------------------------------------
def _utc(year: int, month: int, day: int) -> datetime.datetime:
    return datetime.datetime(year, month, day, 9, 30, tzinfo=utils.utc)


def new_patient(fake: Faker) -> models.Patient:
    return models.Patient(
        name=[models.Name(given=[fake.first_name()], family=[fake.last_name()])],
        gender=fake.random_element(["F", "M"]),
        age=fake.random_int(18, 90),
        birth_date=_utc(1970, 5, 17),
        active=True,
        identifiers=[models.Identifier(system=definitions.IDENTIFIER_BSN, value=fake.numerify("#########"))],
        contacts=[models.Contact(system="email", value=fake.email(), use="home")],
        address=[models.Address(city=fake.city(), line=[fake.street_address()], zip=fake.postcode(), use="home")])


def new_practitioner(fake: Faker) -> models.Practitioner:
    return models.Practitioner(
        name=models.Name(given=[fake.first_name()], family=[fake.last_name()], prefix=["dr."]),
        gender=fake.random_element(["F", "M"]),
        identifiers=[models.Identifier(system=definitions.IDENTIFIER_AGB_Z, value=fake.numerify("########"))],
        contacts=[models.Contact(system="phone", value=fake.phone_number(), use="work")])


def new_related_person(fake: Faker, patient: models.Patient) -> models.RelatedPerson:
    return models.RelatedPerson(
        patient=patient, relationship="CHILD", gender="F",
        name=models.Name(given=[fake.first_name()], family=[fake.last_name()]))


def new_careplan(fake: Faker, patient: models.Patient, practitioner: models.Practitioner,
                 definition: str = "ktbench-game-1") -> models.CarePlan:
    activity = models.Activity(
        identifier=fake.uuid4(), definition=definition, kind="Game", planned=_utc(2024, 3, 1),
        status="Available", description="Play it weekly",
        participants=[models.Participant(member=practitioner, role="Caregiver")],
        subactivities=[models.SubActivity(definition="level-1", status="Available")])
    return models.CarePlan(
        activities=[activity], patient=patient, status="active",
        goals=[models.Goal(description="Feel better", status="in progress")],
        participants=[models.Participant(member=practitioner, role="Supervisor")])


def new_activity_status(careplan: models.CarePlan) -> models.ActivityStatus:
    return models.ActivityStatus(
        identifier=careplan.activities[0].identifier, status="InProgress", percentage=40,
        subactivities=[models.SubActivity(definition="level-1", status="Completed")])


def new_activity_definition(fake: Faker) -> models.ActivityDefinition:
    ident = f"uuid://{fake.uuid4()}"
    return models.ActivityDefinition(
        application=models.ReferredResource(display="ktbench-portal"), identifier=ident,
        kind="ELearning", name=f"Course {fake.word()}", description=fake.sentence(), performer="Patient",
        subactivities=[models.SubActivityDefinition(name="Intro", identifier="intro", description="Start")])


# The connector ships no UserMessage definition although OtherResourceUsage knows the code.  Its
# registry is the extension point an integration uses to add one; the tests add it only while they run.
@definitions.resource_type("UserMessage", False)
class UserMessageDefinition(interfaces.IIdentifiedFHIRResource):
    subject = definitions.Field("subjectString", "string", extension="UserMessage#SubjectString")
    content = definitions.Field("content", "string", extension="UserMessage#Content")
    sender = definitions.Field("from", "reference", extension="UserMessage#From")
    recipient = definitions.Field("to", "reference", extension="UserMessage#To")
    kind = definitions.Field("messageKind", "coding", binding=codes.MESSAGE_KIND,
                             extension="UserMessage#MessageKind", optional=True)


@zope.interface.implementer(UserMessageDefinition)
class UserMessage(models.FHIRResource):
    def __init__(self, subject=None, content=None, sender=None, recipient=None, kind=None) -> None:
        self.subject, self.content, self.sender, self.recipient, self.kind = subject, content, sender, recipient, kind


# Same for CarePlanActivityResult: a definition is easy to add, but the code is missing from the
# connector's OtherResourceUsage value set, so it can be neither packed nor unpacked.
@definitions.resource_type("CarePlanActivityResult", False)
class ActivityResultDefinition(interfaces.IIdentifiedFHIRResource):
    activity = definitions.Field("activity", "string", extension="CarePlanActivityResult#Activity")


@zope.interface.implementer(ActivityResultDefinition)
class ActivityResult(models.FHIRResource):
    def __init__(self, activity=None) -> None:
        self.activity = activity


@pytest.fixture
def with_user_message(monkeypatch):
    monkeypatch.setitem(fhir.REGISTRY, UserMessageDefinition, UserMessage)


def new_user_message(fake: Faker, practitioner: models.Practitioner, patient: models.Patient) -> UserMessage:
    return UserMessage(subject=fake.sentence(nb_words=4), content=f"<p>{fake.sentence()}</p>",
                       sender=practitioner, recipient=patient, kind="Message")


def message_of(fake: Faker, event: str) -> tuple[object, models.Patient | None, type]:
    """(focal model, patient for MessageHeader#Patient, model class the receiver must unpack) per event."""
    patient, practitioner = new_patient(fake), new_practitioner(fake)
    if event == "CreateOrUpdatePatient":
        return patient, None, models.Patient
    if event == "CreateOrUpdatePractitioner":
        return practitioner, None, models.Practitioner
    if event == "CreateOrUpdateRelatedPerson":
        return new_related_person(fake, patient), patient, models.RelatedPerson
    careplan = new_careplan(fake, patient, practitioner)
    if event == "CreateOrUpdateCarePlan":
        return careplan, patient, models.CarePlan
    if event == "UpdateCarePlanActivityStatus":
        return new_activity_status(careplan), patient, models.ActivityStatus
    if event == "CreateOrUpdateActivityDefinition":
        return new_activity_definition(fake), None, models.ActivityDefinition
    if event == "CreateOrUpdateUserMessage":
        return new_user_message(fake, practitioner, patient), patient, UserMessage
    raise AssertionError(event)


SENDABLE_EVENTS = ["CreateOrUpdatePatient", "CreateOrUpdatePractitioner", "CreateOrUpdateRelatedPerson",
                   "CreateOrUpdateCarePlan", "UpdateCarePlanActivityStatus", "CreateOrUpdateActivityDefinition",
                   "CreateOrUpdateUserMessage"]


def full_message(conn: connector.Connector, message_id: str) -> kt_bundle.Bundle:
    """The raw bundle of one message, unpacked the way the connector's own console `download` does it."""
    payload = conn.transport.query(interfaces.MESSAGE_HEADER_URL, {"_id": message_id}).json
    packaging = kt_bundle.Bundle(conn.domain, conn.integration)
    packaging.add_payload(payload)
    return packaging


def statuses(conn: connector.Connector, **filters) -> list[tuple[str, str | None]]:
    return [(m.status.status, m.status.exception) for m in conn.search(**filters)]


# --------------------------------------------------------------------------------------------------
# Metadata and ActivityDefinitions
# --------------------------------------------------------------------------------------------------
def test_metadata_satisfies_the_connector_checks(server, portal):
    result = portal.metadata()
    assert result["name"] == "Koppeltaal"
    assert result["version"] >= "v1.0"          # compared as a string by the connector's own test
    assert result["fhirVersion"] == "0.0.82"
    uris = {ext["url"]: ext["valueUri"] for ext in result["rest"][0]["security"]["extension"]}
    oauth = "http://fhir-registry.smartplatforms.org/Profile/oauth-uris"
    assert uris[f"{oauth}#authorize"] == server.url + "/OAuth2/Koppeltaal/Authorize"
    assert uris[f"{oauth}#token"] == server.url + "/OAuth2/Koppeltaal/Token"


def test_activities_lists_the_seeded_definitions_and_hides_archived_ones(server, portal):
    active = list(portal.activities())
    assert not [a for a in active if interfaces.IBrokenFHIRResource.providedBy(a)]
    assert {a.identifier for a in active} == {"ktbench-game-1", "ktbench-elearning-1"}
    with_archived = {a.identifier: a for a in portal.activities(archived=True)}
    assert set(with_archived) == {"ktbench-game-1", "ktbench-elearning-1", "ktbench-archived-1"}
    assert with_archived["ktbench-archived-1"].is_archived is True

    game = portal.activity("ktbench-game-1")
    assert (game.name, game.kind, game.launch_type, game.is_active) == ("Mood Quest", "Game", "Web", True)
    assert game.application.display == "ktbench-module"   # what connector.launch() uses as client_id
    assert game.fhir_link.startswith(server.url + "/FHIR/Koppeltaal/Other/ActivityDefinition:")
    assert "/_history/" in game.fhir_link
    assert portal.activity("ktbench-archived-1") is None
    assert portal.activity("ktbench-archived-1", archived=True).is_archived is True


def test_send_activity_creates_updates_and_archives(server, portal, fake):
    ad = new_activity_definition(fake)
    assert portal.activity(ad.identifier) is None

    created = portal.send_activity(ad)
    assert created.fhir_link.startswith(server.url + "/FHIR/Koppeltaal/Other/ActivityDefinition:")
    fetched = portal.activity(ad.identifier)
    assert fetched.fhir_link == created.fhir_link            # Content-Location == the listed self link
    assert (fetched.name, fetched.kind, fetched.performer) == (ad.name, "ELearning", "Patient")
    assert [s.identifier for s in fetched.subactivities] == ["intro"]
    assert fetched.application.display == "ktbench-portal"   # the server names the publishing application

    first_link = created.fhir_link
    created.is_active = False
    created.is_archived = True
    portal.send_activity(created)                             # PUT on the versioned link
    assert created.fhir_link != first_link
    assert created.fhir_link > first_link                     # versions sort as strings
    assert utils.strip_history_from_link(created.fhir_link) == utils.strip_history_from_link(first_link)
    assert portal.activity(ad.identifier) is None
    archived = portal.activity(ad.identifier, archived=True)
    assert (archived.is_archived, archived.is_active, archived.fhir_link) == (True, False, created.fhir_link)

    stale = portal.activity(ad.identifier, archived=True)
    stale.fhir_link = first_link                              # an update based on an old version
    with pytest.raises(interfaces.ResponseError) as info:
        portal.send_activity(stale)
    assert info.value.response.json["issue"][0]["details"] == WRONG_VERSION


# --------------------------------------------------------------------------------------------------
# Sending every message type
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", SENDABLE_EVENTS)
def test_send_each_message_type_and_receive_it(server, portal, module, fake, event, with_user_message):
    focal, patient, model_class = message_of(fake, event)
    reply = portal.send(event, focal, patient)

    history_less = focal.fhir_link
    assert history_less.startswith(PORTAL_URL + "/")          # identities stay on the sender's own URLs
    assert utils.strip_history_from_link(reply[0].fhir_link) == history_less
    assert "/_history/" in reply[0].fhir_link                 # focal first, now versioned

    if event in MODULE_EVENTS:
        received = []
        for update in module.updates():
            with update:
                received.append(update)
        assert len(received) == 1
        update = received[0]
        assert update.message.event == event
        assert isinstance(update.data, model_class)
        assert update.data.fhir_link == reply[0].fhir_link    # data[0] resolves to the focal entry
        patient_link = utils.strip_history_from_link(update.patient.fhir_link) if update.patient else None
        assert patient_link == (patient.fhir_link if patient else None)
        assert statuses(module, event=event) == [("Success", None)]
    else:
        assert list(module.search(event=event)) == []          # not subscribed: nothing queued
    # The portal subscribes to everything and gets its own message back; the connector recognises it
    # by source.endpoint and acks it Success without yielding it.
    assert list(portal.updates()) == []
    assert statuses(portal, event=event) == [("Success", None)]


def test_received_messages_unpack_without_broken_resources(server, portal, module, fake, with_user_message):
    expected = {}
    for event in SENDABLE_EVENTS:
        focal, patient, expected[event] = message_of(fake, event)
        portal.send(event, focal, patient)

    headers = list(portal.search())
    assert sorted(h.event for h in headers) == sorted(SENDABLE_EVENTS)
    for header in headers:
        message = full_message(portal, header.fhir_link)
        assert message.errors() == [], header.event
        unpacked = message.unpack_model(definitions.MessageHeader)
        assert unpacked.status.status == "New"
        assert len(unpacked.data) == 1
        assert isinstance(unpacked.data[0], expected[header.event])

    seen = {}
    for update in module.updates():
        with update:
            seen[update.message.event] = type(update.data)
    assert seen == {e: expected[e] for e in SENDABLE_EVENTS if e in MODULE_EVENTS}
    assert list(module.search(status="Failed")) == []          # the connector failed nothing as broken


# --------------------------------------------------------------------------------------------------
# CarePlanActivityResult: what the connector can and cannot do (kt1-protocol §7)
# --------------------------------------------------------------------------------------------------
def test_connector_cannot_pack_a_careplan_activity_result(server, portal, monkeypatch):
    monkeypatch.setitem(fhir.REGISTRY, ActivityResultDefinition, ActivityResult)
    with pytest.raises(interfaces.InvalidCode):
        portal.send("CreateOrUpdateCarePlanActivityResult", ActivityResult(activity="act-1"))
    assert list(portal.search()) == []                         # it fails before anything reaches the server


def _post_activity_result(server, patient_link: str) -> None:
    """Another client (here: raw HTTP as the module) sends a CarePlanActivityResult message."""
    result_url = MODULE_URL + "/Other/CarePlanActivityResult/r1"
    header = {
        "resourceType": "MessageHeader", "identifier": "ktbench-result-1", "timestamp": "2024-03-01T10:00:00+00:00",
        "event": {"system": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/MessageEvents",
                  "code": "CreateOrUpdateCarePlanActivityResult", "display": "CreateOrUpdateCarePlanActivityResult"},
        "source": {"software": "raw", "endpoint": MODULE_URL},
        "data": [{"reference": result_url}],
        "extension": [{"url": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/MessageHeader#Patient",
                       "valueResource": {"reference": patient_link}}],
    }
    result = {"resourceType": "Other",
              "code": {"coding": [{"system": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/OtherResourceUsage",
                                   "code": "CarePlanActivityResult", "display": "CarePlanActivityResult"}]},
              "extension": [{"url": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/CarePlanActivityResult#Activity",
                             "valueString": "act-1"}]}
    body = {"resourceType": "Bundle", "id": "urn:uuid:ktbench-result-bundle", "updated": "2024-03-01T10:00:00+00:00",
            "category": [{"term": f"http://ggz.koppeltaal.nl/fhir/Koppeltaal/Domain#{DOMAIN}", "label": DOMAIN,
                          "scheme": "http://hl7.org/fhir/tag/security"},
                         {"term": "http://hl7.org/fhir/tag/message", "scheme": "http://hl7.org/fhir/tag"}],
            "entry": [{"id": MODULE_URL + "/MessageHeader/h1", "content": header},
                      {"id": result_url, "content": result}]}
    response = httpx.post(server.url + "/FHIR/Koppeltaal/Mailbox", json=body,
                          auth=("ktbench-module", "module-secret"))
    assert response.status_code == 200, response.text


def test_a_delivered_activity_result_blocks_the_connector_until_max_retries(connect, fake):
    """The connector aborts `updates()` with InvalidCode on an Other/CarePlanActivityResult entry and never
    acks it, so the message stays Claimed; the server's claim expiry and retry limit eventually park it as
    MaximumRetriesExceeded, after which the connector reaches the messages behind it."""
    with running_kt1_server(claim_timeout=0.4) as srv:
        portal = connect(srv, "ktbench-portal", "portal-secret", PORTAL_URL)
        other_sender = connect(srv, "ktbench-module", "module-secret", MODULE_URL)
        patient = new_patient(fake)
        _post_activity_result(srv, "https://module.ktbench.test/fhir/Koppeltaal/Patient/p1")
        other_sender.send("CreateOrUpdatePatient", patient)   # queued for the portal behind the result

        with pytest.raises(interfaces.InvalidCode):
            next(portal.updates())
        assert statuses(portal, event="CreateOrUpdateCarePlanActivityResult") == [("Claimed", None)]
        summary = list(portal.search(event="CreateOrUpdateCarePlanActivityResult"))[0]
        with pytest.raises(interfaces.InvalidCode):            # the full message cannot be read either
            list(portal.search(message_id=summary.fhir_link))

        for _ in range(4):                                      # 5 claims in all, each expiring
            time.sleep(0.45)
            with pytest.raises(interfaces.InvalidCode):
                next(portal.updates())
        time.sleep(0.45)
        events = []
        for update in portal.updates():
            with update:
                events.append(update.message.event)
        assert events == ["CreateOrUpdatePatient"]
        assert statuses(portal, event="CreateOrUpdateCarePlanActivityResult") == [("MaximumRetriesExceeded", None)]


# --------------------------------------------------------------------------------------------------
# Versioning (1.3.5): the exact texts the connector's own integration tests compare
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", ["CreateOrUpdatePatient", "CreateOrUpdateCarePlan", "CreateOrUpdateRelatedPerson",
                                   "UpdateCarePlanActivityStatus"])
def test_versioned_resends_and_both_conflict_errors(server, portal, fake, event):
    focal, patient, _ = message_of(fake, event)
    first = portal.send(event, focal, patient)[0].fhir_link
    assert focal.fhir_link == utils.strip_history_from_link(first)

    with pytest.raises(interfaces.OperationOutcomeError) as info:
        portal.send(event, focal, patient)                      # no version although the server has one
    assert info.value.outcome.issue[0].details == NO_FOCAL_VERSION

    focal.fhir_link = first
    second = portal.send(event, focal, patient)[0].fhir_link
    assert second != first and second > first
    assert utils.strip_history_from_link(second) == utils.strip_history_from_link(first)

    focal.fhir_link = first                                     # an outdated version
    with pytest.raises(interfaces.OperationOutcomeError) as info:
        portal.send(event, focal, patient)
    issue = info.value.outcome.issue[0]
    assert issue.details == WRONG_VERSION
    assert issue.resource.fhir_link == first

    focal.fhir_link = second
    third = portal.send(event, focal, patient)[0].fhir_link
    assert len({first, second, third}) == 3 and third > second
    assert utils.strip_history_from_link(third) == utils.strip_history_from_link(first)


def test_rejections_reach_the_connector_as_readable_operation_outcomes(server, connect, fake):
    """send() unpacks the error body with its DSTU1 definitions; an issue type outside the DSTU1 value set
    would leave it with `outcome=None`."""
    wrong_domain = connect(server, "ktbench-portal", "portal-secret", PORTAL_URL, domain="ktbench-beta")
    with pytest.raises(interfaces.OperationOutcomeError) as info:
        wrong_domain.send("CreateOrUpdatePatient", new_patient(fake))
    issue = info.value.outcome.issue[0]
    assert (issue.severity, issue.type) == ("error", "forbidden")
    assert "ktbench-beta" in issue.details

    wrong_password = connect(server, "ktbench-portal", "not-the-password", PORTAL_URL)
    with pytest.raises(interfaces.OperationOutcomeError) as info:
        wrong_password.send("CreateOrUpdatePatient", new_patient(fake))
    assert info.value.outcome.issue[0].type == "security"


def test_outdated_non_focal_resource_is_rejected(server, portal, fake):
    patient, practitioner = new_patient(fake), new_practitioner(fake)
    first = portal.send("CreateOrUpdatePatient", patient)[0].fhir_link
    patient.fhir_link = first
    portal.send("CreateOrUpdatePatient", patient)
    careplan = new_careplan(fake, patient, practitioner)      # still carries the patient's first version
    with pytest.raises(interfaces.OperationOutcomeError) as info:
        portal.send("CreateOrUpdateCarePlan", careplan, patient)
    assert info.value.outcome.issue[0].details == WRONG_VERSION
    assert info.value.outcome.issue[0].resource.fhir_link == first


# --------------------------------------------------------------------------------------------------
# The claim cycle: updates() and its acknowledgements
# --------------------------------------------------------------------------------------------------
def test_updates_acks_success_failed_and_new(server, portal, module, fake):
    practitioner = new_practitioner(fake)
    patients = {name: new_patient(fake) for name in ("ok", "fail", "crash")}
    for patient in patients.values():
        portal.send("CreateOrUpdateCarePlan", new_careplan(fake, patient, practitioner), patient)

    def only(name: str):
        return module.updates(patient=patients[name].fhir_link)  # the claim's Patient filter

    handled = []
    for update in only("ok"):
        with update:
            handled.append(utils.strip_history_from_link(update.patient.fhir_link))
    assert handled == [patients["ok"].fhir_link]
    assert statuses(module, patient=patients["ok"]) == [("Success", None)]
    acked = list(module.search(patient=patients["ok"]))[0]
    header = list(module.search(message_id=acked.fhir_link))[0]   # the PUT changed only the status
    assert utils.strip_history_from_link(header.patient.fhir_link) == patients["ok"].fhir_link
    assert (header.source.endpoint, header.event) == (PORTAL_URL, "CreateOrUpdateCarePlan")

    for update in only("fail"):
        with update:
            update.fail("ktbench: cannot process this care plan")
    assert statuses(module, patient=patients["fail"]) == [("Failed", "ktbench: cannot process this care plan")]

    updates = only("crash")
    update = next(updates)
    identifier = update.message.identifier
    with pytest.raises(RuntimeError):
        with update:
            raise RuntimeError("processing crashed")           # the connector puts it back to New
    updates.close()
    assert statuses(module, patient=patients["crash"]) == [("New", None)]
    again = []
    for update in only("crash"):
        with update:
            again.append(update.message.identifier)
    assert again == [identifier]                               # claimable again, same message
    assert statuses(module, patient=patients["crash"]) == [("Success", None)]

    assert list(module.updates()) == []                        # nothing left: every claim was acked


def test_updates_filters_by_event_and_fails_unexpected_events(server, portal, module, fake):
    patient, practitioner = new_patient(fake), new_practitioner(fake)
    portal.send("CreateOrUpdateCarePlan", new_careplan(fake, patient, practitioner), patient)
    portal.send("CreateOrUpdatePractitioner", new_practitioner(fake))  # a known one would need its version

    picked = []
    for update in module.updates(event="CreateOrUpdatePractitioner"):
        with update:
            picked.append(update.message.event)
    assert picked == ["CreateOrUpdatePractitioner"]

    assert list(module.updates(expected_events=["CreateOrUpdatePatient"])) == []
    assert statuses(module, event="CreateOrUpdateCarePlan") == [("Failed", "Event not expected")]


def test_postponed_update_stays_claimed_then_expires(connect, fake):
    with running_kt1_server(claim_timeout=0.5) as srv:
        portal = connect(srv, "ktbench-portal", "portal-secret", PORTAL_URL)
        module = connect(srv, "ktbench-module", "module-secret", MODULE_URL)
        patient = new_patient(fake)
        portal.send("CreateOrUpdateCarePlan", new_careplan(fake, patient, new_practitioner(fake)), patient)

        first = []
        for update in module.updates():
            with update:
                update.postpone()                               # no PUT at all
                first.append(update.message.identifier)
            break
        assert statuses(module) == [("Claimed", None)]
        assert list(module.updates()) == []                     # a Claimed message is not handed out again

        time.sleep(0.6)
        assert statuses(module) == [("New", None)]              # the claim expired
        second = []
        for update in module.updates():
            with update:
                second.append(update.message.identifier)
        assert second == first
        assert statuses(module) == [("Success", None)]


# --------------------------------------------------------------------------------------------------
# search(): summary list with filters and paging, and single messages by _id
# --------------------------------------------------------------------------------------------------
def test_search_by_patient_event_status_and_id(server, portal, module, fake):
    practitioner = new_practitioner(fake)
    alice, bob = new_patient(fake), new_patient(fake)
    plan_a = new_careplan(fake, alice, practitioner)
    first = portal.send("CreateOrUpdateCarePlan", plan_a, alice)[0].fhir_link
    plan_a.fhir_link = first
    portal.send("CreateOrUpdateCarePlan", plan_a, alice)        # supersedes the module's first copy
    plan_b = new_careplan(fake, bob, practitioner)
    portal.send("CreateOrUpdateCarePlan", plan_b, bob)
    portal.send("CreateOrUpdatePractitioner", new_practitioner(fake))

    everything = list(module.search())
    assert len(everything) == 4
    assert everything[0].event == "CreateOrUpdatePractitioner"  # newest first: `[0]` is the last sent

    of_alice = list(module.search(patient=alice))
    assert len(of_alice) == 2
    assert {m.patient.fhir_link for m in of_alice} == {alice.fhir_link}
    assert [m.event for m in module.search(event="CreateOrUpdatePractitioner")] == ["CreateOrUpdatePractitioner"]
    assert len(list(module.search(status="New"))) == 3
    replaced = list(module.search(status="ReplacedByNewVersion"))
    assert [m.data[0].fhir_link for m in replaced] == [first]

    assert len(list(module.search(batch_size=1))) == 4          # follows `next` links page by page
    assert len(list(module.search(batch_size=3, batch_count=1))) == 3

    header = list(module.search(patient=bob))[0]
    for message_id in (header.fhir_link, utils.strip_history_from_link(header.fhir_link).rsplit("/", 1)[-1]):
        found = list(module.search(message_id=message_id))
        assert isinstance(found[0], models.MessageHeader)
        assert found[0].identifier == header.identifier
        careplan = found[0].data[0]
        assert isinstance(careplan, models.CarePlan)
        # the reference resolved to the Patient entry, whose link is the server-versioned one
        assert utils.strip_history_from_link(careplan.patient.fhir_link) == bob.fhir_link
        assert "/_history/" in careplan.patient.fhir_link
        assert {type(m) for m in found} >= {models.MessageHeader, models.CarePlan, models.Patient,
                                            models.Practitioner}


# --------------------------------------------------------------------------------------------------
# SSO: launch, authorize, token
# --------------------------------------------------------------------------------------------------
def _follow_authorize(url: str) -> str:
    with httpx.Client() as client:                              # no Basic auth, no redirects (like the connector test)
        response = client.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


@pytest.mark.parametrize("intent", [None, "Do Something Nice For Me"])
def test_sso_launch_authorize_token(server, portal, fake, intent):
    portal.integration.client_id = "ktbench-module"
    portal.integration.client_secret = "module-oauth-secret"
    patient_link = f"{PORTAL_URL}/Patient/{fake.uuid4()}"
    user_link = f"{PORTAL_URL}/Practitioner/{fake.uuid4()}"
    location = portal.launch_from_parameters("ktbench-module", patient_link, user_link, "act-1", intent=intent)

    assert location.startswith("http://127.0.0.1:9/module/launch?")
    query = parse_qs(urlsplit(location).query)
    assert query["iss"][0].startswith(portal.transport.server)
    assert query["application_id"][0] == "ktbench-module"
    assert query["launch_id"][0] == query["launch"][0] != ""

    redirect = "https://example.com/koppeltaalauth"
    authorize_url = portal.authorize_from_parameters("ktbench-module", query["launch_id"][0], redirect)
    assert authorize_url.startswith(server.url + "/OAuth2/Koppeltaal/Authorize?")
    token = portal.token_from_parameters(_follow_authorize(authorize_url), redirect)

    assert token["access_token"] and token["refresh_token"]
    assert token["domain"] == portal.domain
    assert token["expires_in"] == 3600
    assert (token["patient"], token["user"], token["resource"]) == (patient_link, user_link, "act-1")
    assert token["scope"] == "patient/*.read"
    assert token["token_type"] == "Bearer"
    assert token.get("intent") == intent


def test_launch_from_a_careplan_uses_the_activity_definitions_application(server, portal, fake):
    patient, practitioner = new_patient(fake), new_practitioner(fake)
    careplan = new_careplan(fake, patient, practitioner)
    portal.send("CreateOrUpdateCarePlan", careplan, patient)
    location = portal.launch(careplan, user=practitioner)      # looks up ktbench-game-1 -> ktbench-module
    query = parse_qs(urlsplit(location).query)
    assert query["application_id"] == ["ktbench-module"]

    portal.integration.client_id = "ktbench-module"
    portal.integration.client_secret = "module-oauth-secret"
    redirect = "https://module.ktbench.test/auth"
    code = _follow_authorize(portal.authorize_from_parameters("ktbench-module", query["launch"][0], redirect))
    token = portal.token_from_parameters(code, redirect)
    assert (token["patient"], token["user"]) == (patient.fhir_link, practitioner.fhir_link)
    assert token["resource"] == careplan.activities[0].identifier

    with pytest.raises(interfaces.ResponseError) as info:       # an authorization code is single use
        portal.token_from_parameters(code, redirect)
    assert info.value.response.json["issue"][0]["details"] == "The authorization code has already been used"

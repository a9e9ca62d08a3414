"""KT1 server: POST /Mailbox under the 1.3.5 resource-versioning rules (kt1-protocol §2.4, §9.6).

Exact OperationOutcome texts, 409 for every version conflict, one issue per
stale non-focal resource, the reply bundle the connector checks, and versions
that always increase as strings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kt1_builders import Kt1World, processing_status, strip_history, version_of
from kt1_support import (  # noqa: F401
    JSON_CT,
    TEXT_NO_FOCAL_VERSION,
    TEXT_WRONG_VERSION,
    details,
    kt1,
    outcome,
)
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

VERSION = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:\d{3}\.\d{4}$")


def _conflicts(response):
    body = outcome(response, 409)
    return [(i["details"], i["type"]["code"], i["extension"][0]["valueResource"]["reference"])
            for i in body["issue"]]


def test_new_careplan_message_is_accepted_with_the_reply_the_connector_checks(kt1):
    world = Kt1World(seed=1)
    careplan, patient, practitioner, related = world.careplan_set()
    bundle = world.careplan_message(careplan, patient, practitioner, related)
    response = kt1.post_message(bundle)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    reply = response.json()
    assert reply["resourceType"] == "Bundle"
    assert len(reply["entry"]) == 1
    entry = reply["entry"][0]
    header = entry["content"]
    assert header["resourceType"] == "MessageHeader"
    assert header["identifier"].startswith("urn:uuid:") and entry["id"] == header["identifier"]
    assert header["event"]["code"] == "CreateOrUpdateCarePlan"
    assert header["response"] == {"identifier": bundle["entry"][0]["content"]["identifier"], "code": "ok"}
    assert header["source"]["endpoint"] == kt1.url + "/FHIR/Koppeltaal/Mailbox"
    refs = [d["reference"] for d in header["data"]]
    # focal first, then the others, each on the sender's own URL plus /_history/<new version>
    assert [strip_history(r) for r in refs] == [careplan.url, patient.url, practitioner.url, related.url]
    versions = [version_of(r) for r in refs]
    assert all(v and VERSION.match(v) for v in versions), versions
    assert len(set(versions)) == len(versions)


def test_versions_increase_lexicographically_over_many_messages(kt1):
    world = Kt1World(seed=2)
    patient = world.patient()
    seen: list[str] = []
    for _ in range(15):
        reply = kt1.send(world.patient_message(patient))
        refs = world.learn(reply)
        seen += [version_of(r) for r in refs]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_update_with_the_learnt_focal_version_is_accepted(kt1):
    world = Kt1World(seed=3)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    first = careplan.version
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    assert careplan.version > first


def test_existing_focal_without_version_is_rejected_with_the_exact_text(kt1):
    world = Kt1World(seed=4)
    careplan, patient, practitioner, related = world.careplan_set()
    kt1.send(world.careplan_message(careplan, patient, practitioner, related))  # versions NOT learnt
    before = kt1.snapshot()
    response = kt1.post_message(world.careplan_message(careplan, patient, practitioner, related))
    assert _conflicts(response) == [(TEXT_NO_FOCAL_VERSION, "conflict", careplan.url)]
    assert kt1.snapshot() == before


def test_wrong_focal_version_is_rejected_with_the_exact_text_without_period(kt1):
    world = Kt1World(seed=5)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    old = careplan.version
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    careplan.version = old  # the client sends an outdated version
    before = kt1.snapshot()
    response = kt1.post_message(world.careplan_message(careplan, patient, practitioner, related))
    assert details(response, 409) == ["The specified resource version is not correct"]
    assert _conflicts(response)[0][2] == f"{careplan.url}/_history/{old}"
    assert kt1.snapshot() == before


def test_new_focal_with_an_invented_version_is_rejected(kt1):
    world = Kt1World(seed=6)
    patient = world.patient()
    patient.version = "2016-07-15T11:50:24:494.7839"
    response = kt1.post_message(world.patient_message(patient))
    assert details(response, 409) == [TEXT_WRONG_VERSION]


def test_stale_non_focal_resources_get_one_issue_each(kt1):
    world = Kt1World(seed=7)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    stale = {patient.url: patient.version, practitioner.url: practitioner.version}
    world.learn(kt1.send(world.patient_message(patient)))  # newer Patient version on the server
    world.learn(kt1.send(world.message("CreateOrUpdatePractitioner", practitioner)))
    patient.version, practitioner.version = stale[patient.url], stale[practitioner.url]
    before = kt1.snapshot()
    response = kt1.post_message(world.careplan_message(careplan, patient, practitioner, related))
    issues = _conflicts(response)
    assert sorted(issues) == sorted([
        (TEXT_WRONG_VERSION, "conflict", f"{patient.url}/_history/{stale[patient.url]}"),
        (TEXT_WRONG_VERSION, "conflict", f"{practitioner.url}/_history/{stale[practitioner.url]}"),
    ])
    assert kt1.snapshot() == before


def test_focal_check_comes_before_the_non_focal_check(kt1):
    world = Kt1World(seed=8)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    world.learn(kt1.send(world.patient_message(patient)))
    patient.version = "2000-01-01T00:00:00:000.0000"   # stale non-focal ...
    careplan.version = None                            # ... and a focal without version
    response = kt1.post_message(world.careplan_message(careplan, patient, practitioner, related))
    assert details(response, 409) == [TEXT_NO_FOCAL_VERSION]


def test_non_focal_without_version_is_accepted(kt1):
    world = Kt1World(seed=9)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    for res in (patient, practitioner, related):
        res.version = None  # the connector may not know them; real servers only log a warning
    reply = kt1.send(world.careplan_message(careplan, patient, practitioner, related))
    assert reply["entry"][0]["content"]["response"]["code"] == "ok"


def test_every_resource_gets_a_new_version_on_accept(kt1):
    world = Kt1World(seed=10)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    before = {r.url: r.version for r in (careplan, patient, practitioner, related)}
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    for res in (careplan, patient, practitioner, related):
        assert res.version > before[res.url], res.url


def test_same_urls_are_versioned_independently_per_domain(kt1):
    alpha = Kt1World(seed=11)
    beta = Kt1World(seed=11, domain="ktbench-beta")  # the very same resource URLs
    a_patient, b_patient = alpha.patient(), beta.patient()
    assert a_patient.url == b_patient.url
    alpha.learn(kt1.send(alpha.patient_message(a_patient)))
    # in beta the resource is new: no version needed, and alpha's version means nothing there
    kt1.send(beta.patient_message(b_patient), who="beta-portal")


def test_newer_message_replaces_older_unprocessed_ones_for_the_same_focal(kt1):
    world = Kt1World(seed=12)
    careplan, patient, practitioner, related = world.careplan_set()
    other_plan = world.careplan(patient, practitioner)
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    world.learn(kt1.send(world.careplan_message(other_plan, patient, practitioner)))
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    by_focal: dict[str, list[str]] = {}
    for header in reversed(kt1.headers_of("module")):  # oldest first
        by_focal.setdefault(strip_history(header["data"][0]["reference"]), []).append(
            processing_status(header)["status"])
    assert by_focal[careplan.url] == ["ReplacedByNewVersion", "New"]
    assert by_focal[other_plan.url] == ["New"]


def test_claimed_messages_are_not_replaced(kt1):
    world = Kt1World(seed=13)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    claimed = kt1.claimed("module")["entry"][0]["content"]
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    statuses = [processing_status(h)["status"] for h in reversed(kt1.headers_of("module"))]
    assert statuses == ["Claimed", "New"]
    assert claimed["identifier"] == kt1.headers_of("module")[-1]["identifier"]


def test_quirks_of_the_js_game_are_tolerated(kt1):
    """Kick-ASS test game (kt1-protocol §6): `entry.link` as an object, odd source, other gender system."""
    world = Kt1World(seed=14)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    bundle = world.careplan_message(careplan, patient, practitioner)
    for entry in bundle["entry"][1:]:
        entry["link"] = entry["link"][0]  # an object, not an array
    bundle["entry"][0]["content"]["source"] = {"software": "Hello", "endpoint": "Stuff"}
    bundle["entry"][2]["content"]["gender"]["coding"][0]["system"] = "http://hl7.org/fhir/vs/administrative-gender"
    reply = kt1.send(bundle)
    # the version came from the object-shaped link: the update was accepted as an update of the known version
    refs = world.learn(reply)
    assert strip_history(refs[0]) == careplan.url and careplan.version == version_of(refs[0])


# -- the real connector's own request bodies ------------------------------------------------------
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "kt1"
GENERATED = "generated-by-koppeltaal-1.3.5.14__request_CreateOrUpdateCarePlan_{}.json"


def _connector_request(kind: str) -> dict:
    path = SHARED / GENERATED.format(kind)
    if not path.is_file():
        pytest.skip(f"shared connector fixture {path.name} not available (needs ../shared next to the repo)")
    text = path.read_text(encoding="utf-8").replace("PythonAdapterTesting", "ktbench-alpha")
    return json.loads(text)


def _shape(bundle: dict) -> list:
    """Keys per level, the part of the wire shape our builder must share with the connector."""
    return [sorted(bundle), sorted(bundle["category"][0]), sorted(bundle["entry"][0]),
            sorted(bundle["entry"][0]["content"]), [sorted(e) for e in bundle["entry"][1:]]]


def test_builder_produces_the_connector_shape():
    real = _connector_request("new")
    world = Kt1World(seed=15)
    ours = world.careplan_message(*world.careplan_set())
    assert _shape(ours) == _shape(real)
    assert [e["content"]["resourceType"] for e in ours["entry"]] == [
        e["content"]["resourceType"] for e in real["entry"]]


def test_the_connectors_own_new_and_update_bodies_are_accepted(kt1):
    new = _connector_request("new")
    reply = kt1.send(new)
    refs = {strip_history(r["reference"]): r["reference"] for r in reply["entry"][0]["content"]["data"]}
    assert list(refs) == [e["id"] for e in new["entry"][1:]]
    update = _connector_request("update")
    # the connector sends the versions it learnt; substitute the ones this server minted
    for entry in update["entry"][1:]:
        entry["link"][0]["href"] = refs[entry["id"]]
    update["entry"][0]["content"]["data"][0]["reference"] = refs[update["entry"][1]["id"]]
    reply = kt1.send(update)
    assert reply["entry"][0]["content"]["response"] == {"identifier": "1234-5678", "code": "ok"}
    # and the stale fixture version itself is refused with the exact text
    stale = _connector_request("update")
    assert details(kt1.post_message(stale), 409)[0] == TEXT_WRONG_VERSION

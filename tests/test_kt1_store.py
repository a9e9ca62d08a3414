"""KT1 server: SQLite state — a Mailbox POST is all-or-nothing, and a file database survives a restart.

Why: a half-stored message (new resource versions without queued copies, or
copies for some recipients only) would silently break the versioning rules
for every later message (ARCHITECTURE "never half-stored state").
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from kt1_builders import AD, Kt1World, activity_definition, ext_value, version_of
from kt1_support import (  # noqa: F401
    AUTHORIZE,
    CLAIM,
    CREDS,
    LAUNCH,
    MAILBOX,
    MH_SEARCH,
    OTHER,
    OTHER_SEARCH,
    TEXT_NO_FOCAL_VERSION,
    TOKEN,
    details,
    kt1,
    outcome,
)

from simulators.kt1.embedded import running_kt1_server

# -- atomicity ------------------------------------------------------------------------------------


def test_stale_non_focal_stores_no_versions_and_queues_nothing(kt1):
    world = Kt1World(seed=120)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    stale = patient.version
    world.learn(kt1.send(world.patient_message(patient)))
    patient.version = stale
    resources = {r["url"]: r["version"] for r in kt1.ctx.store.all("SELECT url, version FROM resources")}
    queued = kt1.ctx.store.one("SELECT COUNT(*) AS n FROM messages")["n"]
    assert kt1.post_message(world.careplan_message(careplan, patient, practitioner, related)).status_code == 409
    assert {r["url"]: r["version"] for r in kt1.ctx.store.all("SELECT url, version FROM resources")} == resources
    assert kt1.ctx.store.one("SELECT COUNT(*) AS n FROM messages")["n"] == queued


@pytest.mark.parametrize("breaking", ["put_resource", "insert_message"])
def test_a_failure_halfway_rolls_everything_back(kt1, monkeypatch, breaking):
    world = Kt1World(seed=121)
    careplan, patient, practitioner, related = world.careplan_set()
    world.learn(kt1.send(world.careplan_message(careplan, patient, practitioner, related)))
    before = kt1.snapshot()
    store = kt1.ctx.store
    real = getattr(store, breaking)
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, breaking, fail_on_second)
    response = kt1.post_message(world.careplan_message(careplan, patient, practitioner, related))
    body = outcome(response, 500)
    assert body["issue"][0]["details"] == "Internal server error"  # no internals leak
    assert "disk I/O" not in response.text
    assert len(calls) == 2  # the first write really happened before the failure ...
    assert kt1.snapshot() == before  # ... and was rolled back
    monkeypatch.undo()
    # the server is still consistent: the same update goes through with the same learnt versions
    reply = kt1.send(world.careplan_message(careplan, patient, practitioner, related))
    assert version_of(reply["entry"][0]["content"]["data"][0]["reference"]) > careplan.version


def test_memory_databases_are_private_to_each_app(kt1):
    world = Kt1World(seed=122)
    kt1.send(world.patient_message(world.patient()))
    assert len(kt1.headers_of("portal")) == 1
    kt1.use()
    assert kt1.headers_of("portal") == []


# -- file database --------------------------------------------------------------------------------
def _client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10.0)


def test_file_database_survives_a_restart(tmp_path):
    db = str(tmp_path / "kt1.sqlite3")
    world = Kt1World(seed=123)
    careplan, patient, practitioner, related = world.careplan_set()
    first = world.careplan_message(careplan, patient, practitioner, related)
    with running_kt1_server(db=db) as server, _client(server) as http:
        reply = http.post(MAILBOX, json=first, auth=CREDS["portal"])
        assert reply.status_code == 200
        world.learn(reply.json())
        created = http.post(OTHER, json=activity_definition("persisted-ad"), auth=CREDS["portal"])
        assert created.status_code == 201
        versions_before = {r.url: r.version for r in (careplan, patient, practitioner, related)}

    with running_kt1_server(db=db) as server, _client(server) as http:
        # the resource is known: a focal without version is refused ...
        unversioned = world.careplan_message(careplan, patient, practitioner, related)
        unversioned["entry"][1]["link"][0]["href"] = careplan.url
        unversioned["entry"][0]["content"]["data"][0]["reference"] = careplan.url
        assert details(http.post(MAILBOX, json=unversioned, auth=CREDS["portal"]), 409) == [TEXT_NO_FOCAL_VERSION]
        # queued messages survived: the first message is still the module's oldest New one
        claimed = http.get(MH_SEARCH, params={"_query": CLAIM}, auth=CREDS["module"]).json()
        assert claimed["entry"][0]["content"]["identifier"] == first["entry"][0]["content"]["identifier"]
        # ... the learnt versions are current, and new versions still increase
        reply = http.post(MAILBOX, json=world.careplan_message(careplan, patient, practitioner, related),
                          auth=CREDS["portal"])
        assert reply.status_code == 200, reply.text
        world.learn(reply.json())
        for res in (careplan, patient, practitioner, related):
            assert res.version > versions_before[res.url]
        # seeded ActivityDefinitions were not seeded twice; the created one is still there
        listed = http.get(OTHER_SEARCH, params={"code": "ActivityDefinition"}, auth=CREDS["portal"]).json()
        names = sorted(ext_value(e["content"], AD + "ActivityDefinitionIdentifier") for e in listed["entry"])
        assert names == ["ktbench-elearning-1", "ktbench-game-1", "persisted-ad"]


def test_versions_continue_after_the_highest_stored_version(tmp_path):
    """Even with a clock behind the stored versions, a restarted server mints larger ones."""
    db = str(tmp_path / "kt1.sqlite3")
    world = Kt1World(seed=124)
    patient = world.patient()
    with running_kt1_server(db=db):
        pass
    future = "2100-01-01T00:00:00:000.0000"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE activities SET version = ? WHERE id = 1", (future,))
    with running_kt1_server(db=db) as server, _client(server) as http:
        reply = http.post(MAILBOX, json=world.patient_message(patient), auth=CREDS["portal"])
        assert reply.status_code == 200
        minted = version_of(reply.json()["entry"][0]["content"]["data"][0]["reference"])
        assert minted > future


def test_bearer_token_survives_a_restart(tmp_path):
    db = str(tmp_path / "kt1.sqlite3")
    with running_kt1_server(db=db) as server, _client(server) as http:
        launch = http.get(LAUNCH, auth=CREDS["portal"], params={
            "client_id": "ktbench-module", "patient": "https://p/Patient/1", "user": "https://p/Practitioner/1"})
        launch_id = httpx.URL(launch.headers["location"]).params["launch"]
        authorized = http.get(AUTHORIZE, params={"response_type": "code", "client_id": "ktbench-module",
                                                 "redirect_uri": "https://example.com/cb",
                                                 "scope": f"launch:{launch_id} patient/*.read"})
        code = httpx.URL(authorized.headers["location"]).params["code"]
        token = http.get(TOKEN, auth=("ktbench-module", "module-oauth-secret"), params={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "https://example.com/cb"}).json()
    with running_kt1_server(db=db) as server, _client(server) as http:
        response = http.get(MH_SEARCH, params={"_summary": "true"},
                            headers={"Authorization": f"Bearer {token['access_token']}"})
        assert response.status_code == 200

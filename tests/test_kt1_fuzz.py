"""KT1 server: generative bad input — mutated bundles and bodies never get a 5xx (ARCHITECTURE "Bad input").

A seeded mutator (reproducible: the seed and the mutation list are in every
failure message) damages valid connector-shaped bodies at the JSON level
(drop keys, swap types, empty or null array items, duplicates, huge and odd
values) and at the byte level (truncation, flipped bytes, XML damage), posts
them and requires a 2xx or a 4xx OperationOutcome, never a 5xx, and a server
that still works afterwards.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from kt1_builders import Kt1World, ack_body, activity_definition
from kt1_support import MAILBOX, OTHER, kt1  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

ODD_VALUES: list[Any] = [None, "", " ", 0, -1, 2**63, 1e308, True, False, [], {}, [None], [{}], [""], "x" * 5000,
                         "ë😀\u0000\u202e", {"resourceType": "Condition"}, {"reference": 7}, [[[]]],
                         "http://ggz.koppeltaal.nl/fhir/Koppeltaal/Domain#ktbench-beta",
                         "https://portal.example.org/fhir/Koppeltaal/Patient/1/_history/",
                         "/_history/", "MessageHeader", "Other", "Bundle"]


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (a path is a tuple of keys and indices)."""
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _paths(value, prefix + (i,))
    return found


def _parent(obj: Any, path: tuple) -> Any:
    for step in path[:-1]:
        obj = obj[step]
    return obj


def mutate(doc: dict, rng: random.Random) -> tuple[dict, list[str]]:
    """Apply 1-4 random structural mutations; returns the damaged copy and what was done."""
    doc = copy.deepcopy(doc)
    done = []
    for _ in range(rng.randint(1, 4)):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent, key = _parent(doc, path), path[-1]
        op = rng.choice(["delete", "odd", "odd", "duplicate", "retype", "rename", "shuffle", "nest"])
        if op == "delete":
            del parent[key]
        elif op == "odd":
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "retype":
            value = parent[key]
            parent[key] = ([value] if not isinstance(value, list) else {"x": value}) if rng.random() < 0.5 \
                else json.dumps(value)
        elif op == "rename" and isinstance(parent, dict):
            parent[str(key).upper() + "_"] = parent.pop(key)
        elif op == "shuffle" and isinstance(parent[key], list):
            rng.shuffle(parent[key])
        elif op == "nest":
            parent[key] = {"extension": [parent[key]], "url": None}
        else:
            parent[key] = None
        done.append(f"{op} {'/'.join(map(str, path))}")
    return doc, done


def damage_bytes(raw: bytes, rng: random.Random) -> tuple[bytes, str]:
    choice = rng.randrange(4)
    if choice == 0:
        cut = rng.randrange(len(raw))
        return raw[:cut], f"truncate at {cut}"
    if choice == 1:
        data = bytearray(raw)
        spots = [rng.randrange(len(data)) for _ in range(rng.randint(1, 8))]
        for spot in spots:
            data[spot] = rng.randrange(256)
        return bytes(data), f"flip bytes at {spots}"
    if choice == 2:
        spot = rng.randrange(len(raw))
        junk = rng.choice([b"<", b"&", b"\"", b"{", b"]]>", b"\xff\xfe", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"\x00"])
        return raw[:spot] + junk + raw[spot:], f"insert {junk!r} at {spot}"
    start = rng.randrange(len(raw))
    return raw[:start] + raw[start:start + 200] * 3 + raw[start + 200:], f"repeat a slice at {start}"


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text, what
    assert response.headers["content-type"].startswith(("application/json", "application/xml")), what
    if response.status_code >= 400 and response.headers["content-type"].startswith("application/json"):
        assert response.json()["resourceType"] == "OperationOutcome", what


def _valid_bundles(seed: int) -> list[dict]:
    world = Kt1World(seed=seed)
    careplan, patient, practitioner, related = world.careplan_set()
    return [world.careplan_message(careplan, patient, practitioner, related),
            world.patient_message(world.patient()),
            world.message("UpdateCarePlanActivityStatus", world.activity_status(careplan), patient=patient)]


def _still_works(kt1, seed: int) -> None:
    world = Kt1World(seed=seed + 500)
    kt1.send(world.patient_message(world.patient()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_mailbox_bundles_never_get_a_5xx(kt1, seed):
    rng = random.Random(seed)
    bundles = _valid_bundles(seed)
    for i in range(120):
        damaged, done = mutate(rng.choice(bundles), rng)
        response = kt1.post_message(damaged)
        _check(response, f"seed {seed} #{i}: {done}")
    _still_works(kt1, seed)


@pytest.mark.parametrize("seed", [4, 5])
def test_damaged_json_and_xml_bytes_never_get_a_5xx(kt1, seed):
    xmlcodec = pytest.importorskip("ktbench.fhir.dstu1.xmlcodec", reason="the DSTU1 XML codec is not available yet")
    rng = random.Random(seed)
    bundles = _valid_bundles(seed)
    for i in range(80):
        bundle = rng.choice(bundles)
        as_xml = rng.random() < 0.5
        raw = xmlcodec.to_xml(bundle) if as_xml else json.dumps(bundle).encode()
        damaged, done = damage_bytes(raw, rng)
        content_type = "application/xml" if as_xml else "application/json"
        response = kt1.request("POST", MAILBOX, "portal", content=damaged, headers={"Content-Type": content_type})
        _check(response, f"seed {seed} #{i} ({content_type}): {done}")
    _still_works(kt1, seed)


@pytest.mark.parametrize("seed", [6, 7])
def test_mutated_ack_and_activity_bodies_never_get_a_5xx(kt1, seed):
    rng = random.Random(seed)
    world = Kt1World(seed=seed)
    kt1.send(world.careplan_message(*world.careplan_set()))
    entry = kt1.claimed("module")["entry"][0]
    ack = ack_body(entry["content"], "Failed", "boom")
    activity = activity_definition(f"fuzz-{seed}")
    created = kt1.request("POST", OTHER, json=activity)
    assert created.status_code == 201
    for i in range(60):
        damaged, done = mutate(ack, rng)
        _check(kt1.request("PUT", entry["id"], "module", json=damaged), f"ack seed {seed} #{i}: {done}")
        damaged, done = mutate(activity, rng)
        _check(kt1.request("POST", OTHER, json=damaged), f"AD POST seed {seed} #{i}: {done}")
        _check(kt1.request("PUT", created.headers["content-location"].split("/_history/")[0], json=damaged),
               f"AD PUT seed {seed} #{i}: {done}")
    _still_works(kt1, seed)


def test_random_query_strings_never_get_a_5xx(kt1):
    rng = random.Random(8)
    names = ["_query", "_summary", "_count", "_id", "Patient", "event", "ProcessingStatus", "page", "_format",
             "code", "includearchived", "x"]
    values = ["", "MessageHeader.GetNextNewAndClaim", "abc", "-1", "0", "99999999999999999999", "New", "true",
              "CreateOrUpdateCarePlan", "https://h/FHIR/Koppeltaal/MessageHeader/1/_history/x", "%00",
              "ActivityDefinition", "xml", "json", "yes", "²", "1e3", "9223372036854775807"]
    for i in range(150):
        params = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randint(0, 4))]
        path = rng.choice(["/FHIR/Koppeltaal/MessageHeader/_search", "/FHIR/Koppeltaal/Other/_search",
                           "/FHIR/Koppeltaal/MessageHeader/" + rng.choice(values)])
        response = kt1.request("GET", path, rng.choice(["module", "portal"]), params=params)
        _check(response, f"#{i}: GET {path} {params}")


def test_random_oauth_requests_never_get_a_5xx(kt1):
    rng = random.Random(9)
    launch = kt1.request("GET", "/OAuth2/Koppeltaal/Launch", "portal", params={
        "client_id": "ktbench-module", "patient": "https://p/Patient/1", "user": "https://p/Practitioner/1"})
    launch_id = launch.headers["location"].split("launch=")[1].split("&")[0]
    names = ["client_id", "patient", "user", "resource", "intent", "response_type", "redirect_uri", "scope", "state",
             "code", "grant_type", "refresh_token", "Patient", "x"]
    values = ["", "ktbench-module", "ktbench-beta-module", "code", f"launch:{launch_id}",
              f"patient/*.read launch:{launch_id}", "launch:", "launch:1 launch:2", "http://[",
              "https://example.com/cb", "authorization_code", "refresh_token", "password", "\u00e9\u0000", "x" * 3000, "https://p/Patient/1"]
    paths = ["/OAuth2/Koppeltaal/Launch", "/OAuth2/Koppeltaal/MobileLaunch", "/OAuth2/Koppeltaal/Authorize",
             "/OAuth2/Koppeltaal/Token"]
    for i in range(200):
        params = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randint(0, 6))]
        path = rng.choice(paths)
        method = "POST" if path.endswith("Token") and rng.random() < 0.5 else "GET"
        kwargs = {"data": dict(params)} if method == "POST" else {"params": params}
        auth = rng.choice([None, "portal", "module"])
        response = kt1.request(method, path, auth, **kwargs)
        if response.status_code in (301, 302, 303, 307, 308):
            continue
        _check(response, f"#{i}: {method} {path} {params} as {auth}")

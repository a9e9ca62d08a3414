"""Property-based bad input (hypothesis): mutated resources, random queries, random JWTs and forms never get a
5xx; every refusal has the shape of its endpoint, and refused writes leave nothing behind."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_kt1_fuzz import _paths  # every path into a JSON value (shared with the KT1 fuzzer)

from kt2_support import (ALPHA, FHIR_JSON, JWT_BEARER, jwks_host, kt2, no_unhandled_errors, patient,  # noqa: F401
                         task)
from simulators.kt2 import urls

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
                        st.sampled_from(["Patient/x", "Task/1/_history/2", "urn:uuid:1", "", "Device/alpha-portal",
                                         "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


@st.composite
def mutated(draw, base: dict) -> dict:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "wrap"]))
        if action == "delete" and path[-1] != "resourceType":
            del parent[path[-1]]
        elif action == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return doc


@FUZZ
@given(body=mutated(patient()))
def test_mutated_patients_never_5xx(kt2, body):
    answer = kt2.post("alpha-portal", "Patient", body)
    assert answer.status_code < 500, answer.text
    result = answer.json()
    if answer.status_code == 201:
        assert result["resourceType"] == "Patient"
        assert kt2.get("alpha-portal", f"Patient/{result['id']}").status_code == 200
    else:
        assert result["resourceType"] == "OperationOutcome" and result["issue"]


@FUZZ
@given(body=mutated(task("p", "d")))
def test_mutated_tasks_never_5xx(kt2, body):
    answer = kt2.post("alpha-portal", "Task", body)
    assert answer.status_code < 500 and answer.status_code != 201, answer.text  # "p"/"d" never exist


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_never_5xx(kt2, raw):
    answer = kt2.http.post(f"{kt2.base()}/Patient", content=raw,
                           headers={**kt2.headers("alpha-portal"), "Content-Type": FHIR_JSON})
    assert 400 <= answer.status_code < 500 and answer.json()["resourceType"] == "OperationOutcome"


QUERY_KEYS = st.sampled_from(["_id", "_lastUpdated", "identifier", "status", "patient", "owner", "instantiates",
                              "instantiates.publisherId", "_count", "_sort", "_include", "name:exact",
                              "family:contains", "code", "part-of:missing", "date", "_offset", "resource-origin",
                              "x", "_summary", "owner:Patient", "subject.name"])


@FUZZ
@given(rtype=st.sampled_from(["Patient", "Task", "AuditEvent", "ActivityDefinition"]),
       pairs=st.lists(st.tuples(QUERY_KEYS, st.text(max_size=20)), max_size=4))
def test_random_searches_never_5xx(kt2, rtype, pairs):
    answer = kt2.http.get(f"{kt2.base()}/{rtype}", params=pairs, headers=kt2.headers("alpha-beheer"))
    assert answer.status_code in (200, 400), answer.text
    assert answer.json()["resourceType"] == ("Bundle" if answer.status_code == 200 else "OperationOutcome")


SEGMENTS = st.one_of(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=40),
                     st.builds(lambda v: __import__("base64").urlsafe_b64encode(json.dumps(v).encode()).decode()
                               .rstrip("="), JSON_VALUES))


@FUZZ
@given(header=SEGMENTS, payload=SEGMENTS, signature=SEGMENTS, extra=st.dictionaries(
    st.sampled_from(["scope", "aud", "grant_type", "code", "redirect_uri"]), st.text(max_size=10), max_size=2))
def test_random_jwts_at_the_oauth_endpoints(kt2, header, payload, signature, extra):
    jwt_text = f"{header}.{payload}.{signature}"
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": jwt_text,
            "token": jwt_text, **extra}
    for url in (kt2.token_url(), urls.introspection_url(kt2.url, ALPHA)):
        answer = kt2.http.post(url, data=form)
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["error"]
    bearer = kt2.http.get(f"{kt2.base()}/Task", headers={"Authorization": f"Bearer {jwt_text}"})
    assert bearer.status_code == 401


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["response_type", "client_id", "redirect_uri", "launch", "scope",
                                               "state", "aud", "code_challenge", "code_challenge_method"]),
                              st.text(max_size=30), max_size=9))
def test_random_authorize_requests(kt2, params):
    answer = kt2.http.get(urls.authorize_url(kt2.url, ALPHA), params=params)
    assert answer.status_code in (302, 400), answer.text

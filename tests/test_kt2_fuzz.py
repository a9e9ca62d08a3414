"""Property-based bad input (hypothesis): mutated resources and Subscriptions, random queries of every type
with modifiers and chains, garbage in every header an interaction reads, random JWTs and forms never get a
5xx; every refusal has the shape of its endpoint, and refused writes leave nothing behind."""

from __future__ import annotations

import copy
import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kt2_support import (  # noqa: F401
    ALPHA,
    FHIR_JSON,
    JWT_BEARER,
    jwks_host,
    kt2,
    no_unhandled_errors,
    patient,
    subscription,
    task,
)
from test_kt1_fuzz import (
    _paths,  # every path into a JSON value (shared with the KT1 fuzzer)
)

from simulators.kt2 import urls
from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.fhir.searchparams import PARAMS

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


# -- every type, every parameter, modifiers and chains ---------------------------------------------------

MODIFIERS = st.sampled_from(["", ":missing", ":exact", ":contains", ":not", ":text", ":above", ":below", ":Patient",
                             ":Task", ":Device", ":ActivityDefinition", ":", "::"])
SEARCH_VALUES = st.one_of(st.text(max_size=40), st.sampled_from([
    "", ",", "\\,", "|", "a|", "|b", "a|b|c", "true", "false", "ge2026", "eq2026-02-30", "sa2026-01-01T10:00",
    "ap2026-01-01T25:00", "2026-01-01T00:00:00.123456789+14:00", "le-1", "Patient/x", "Task/x/_history/1",
    "http://127.0.0.1/api/v1/ktbench-alpha/fhir/r4/Patient/x", "Device/alpha-portal", "9" * 40, "%", "_", "\x00",
    "-_lastUpdated", "_id,-_id", "date", "Task:patient", "Task:owner:Patient", "count", "accurate"]))


@st.composite
def search_pairs(draw, rtype: str) -> list[tuple[str, str]]:
    names = [*PARAMS[rtype], "_id", "_lastUpdated", "_count", "_offset", "_sort", "_include", "_summary", "_total",
             "unknown"]
    pairs = []
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        key = draw(st.sampled_from(names)) + draw(MODIFIERS)
        if draw(st.booleans()) and draw(st.booleans()):
            inner_type = draw(st.sampled_from(RESOURCE_TYPES))
            key += "." + draw(st.sampled_from([*PARAMS[inner_type], "_id", "x"])) + draw(MODIFIERS)
        pairs.append((key, draw(SEARCH_VALUES)))
    return pairs


@FUZZ
@given(data=st.data(), rtype=st.sampled_from(RESOURCE_TYPES), how=st.sampled_from(["GET", "POST", "history"]),
       lenient=st.booleans())
def test_random_searches_of_every_type_never_5xx(kt2, data, rtype, how, lenient):
    pairs = data.draw(search_pairs(rtype))
    headers = {**kt2.headers("alpha-beheer"), **({"Prefer": "handling=lenient"} if lenient else {})}
    if how == "POST":
        answer = kt2.http.post(f"{kt2.base()}/{rtype}/_search", content=urlencode(pairs),
                               headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    else:
        path = f"{rtype}/_history" if how == "history" else rtype
        answer = kt2.http.get(f"{kt2.base()}/{path}", params=pairs, headers=headers)
    assert answer.status_code in (200, 400), answer.text
    body = answer.json()
    if answer.status_code == 200:
        assert body["resourceType"] == "Bundle" and isinstance(body["total"], int)
    else:
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]


# -- garbage in the headers every FHIR interaction reads -------------------------------------------------
HEADER_BYTES = st.binary(max_size=60).map(
    lambda raw: bytes(b for b in raw if 0x20 <= b <= 0x7E or b >= 0x80).strip(b" \t"))
HEADER_NAMES = st.sampled_from(["Accept", "Content-Type", "Prefer", "If-Match", "X-Request-Id", "X-Trace-Id",
                                "X-Correlation-Id", "Authorization", "Host", "Content-Encoding"])


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
       garbage=st.dictionaries(HEADER_NAMES, st.one_of(HEADER_BYTES, st.sampled_from(
           [b"application/fhir+json;fhirVersion=3.0", b"*/*;q=0", b"W/\"-1\"", b"return=\xff", b"Bearer x y",
            b"Bearer NOOP", b"text/html, application/xml;q=0.9", b"application/json; charset=latin-1"])),
           max_size=4))
def test_garbage_headers_never_5xx(kt2, method, garbage):
    created = kt2.create("alpha-portal", patient()) if method in ("PUT", "DELETE") else {"id": "x"}
    path = "Patient" if method == "POST" else f"Patient/{created['id']}"
    headers = {**kt2.headers("alpha-portal"), "Content-Type": FHIR_JSON, "If-Match": 'W/"1"', **garbage}
    body = json.dumps({**patient(), "id": created["id"]}) if method in ("POST", "PUT") else None
    answer = kt2.http.request(method, f"{kt2.base()}/{path}", content=body, headers=headers)
    assert answer.status_code < 500, answer.text
    assert answer.headers["x-request-id"] and answer.headers["x-trace-id"]
    if method != "HEAD" and answer.content:
        assert answer.json()["resourceType"] in ("Patient", "OperationOutcome")
    if answer.status_code >= 400 and method != "HEAD":
        assert answer.json()["issue"][0]["diagnostics"]


@FUZZ
@given(body=mutated(subscription("Patient?active=true", "https://hooks.ktbench.test/x", ("X-A: b",))))
def test_mutated_subscriptions_never_5xx(kt2, body):
    answer = kt2.post("alpha-portal", "Subscription", body)
    assert answer.status_code < 500, answer.text
    result = answer.json()
    if answer.status_code == 201:
        assert result["status"] == "active" and result["channel"]["type"] == "rest-hook"
        assert result["channel"]["endpoint"].startswith("https://")
    else:
        assert result["resourceType"] == "OperationOutcome" and result["issue"]

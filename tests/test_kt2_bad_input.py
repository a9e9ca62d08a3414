"""Bad input of every kind gets a 4xx with an OperationOutcome (FHIR), OAuth error JSON (OAuth) or a plain page
(IdP): never a 500, never a traceback, nothing half-stored, and the server keeps working (KT2-REST-OUTCOME,
KT2-REST-JSON-SYNTAX, KT2-TOKEN-JWT)."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from kt2_support import (  # noqa: F401
    ALPHA,
    FHIR_JSON,
    JWT_BEARER,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
)

from simulators.kt2 import urls

BODIES = {
    "truncated": b'{"resourceType": "Patient", "active": tr',
    "array": b"[]",
    "string": b'"Patient"',
    "null": b"null",
    "number": b"12",
    "empty": b"",
    "whitespace": b"   \n ",
    "nan": b'{"resourceType": "Patient", "active": NaN}',
    "infinity": b'{"resourceType": "Patient", "x": Infinity}',
    "latin-1": '{"resourceType": "Patient", "name": [{"text": "Jos\xe9"}]}'.encode("latin-1"),
    "utf-16": '{"resourceType": "Patient"}'.encode("utf-16"),
    "lone-surrogate": b'{"resourceType": "Patient", "x": "\\ud800"}',
    "deep-arrays": b"[" * 5000 + b"]" * 5000,
    "deep-objects": b'{"a":' * 3000 + b"1" + b"}" * 3000,
    "deep-in-resource": b'{"resourceType":"Patient","extension":' + b"[" * 200 + b"]" * 200 + b"}",
    "resource-type-number": b'{"resourceType": 7}',
    "no-resource-type": b'{"active": true}',
    "control-chars": b'{"resourceType": "Patient", "x": "\x01"}',
    "trailing-garbage": b'{"resourceType": "Patient"} xyz',
}


@pytest.mark.parametrize("name", list(BODIES))
def test_bad_bodies_are_4xx_operation_outcomes(kt2, name):
    for method, path in (("POST", "Patient"), ("PUT", "Patient/some-id")):
        answer = kt2.http.request(method, f"{kt2.base()}/{path}", content=BODIES[name],
                                  headers={**kt2.headers("alpha-portal"), "Content-Type": FHIR_JSON,
                                           "If-Match": 'W/"1"'})
        assert 400 <= answer.status_code < 500, (name, method, answer.status_code, answer.text[:200])
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert "Traceback" not in answer.text


def test_huge_body_is_413(make_kt2):
    with make_kt2(settings={"max_body_bytes": 20_000}) as k:
        big = {**patient(), "text": {"status": "generated", "div": "<div>" + "x" * 30_000 + "</div>"}}
        answer = k.post("alpha-portal", "Patient", big)
        assert answer.status_code == 413 and answer.json()["issue"][0]["code"] == "too-costly"
        with socket.create_connection(("127.0.0.1", k.server.port), timeout=10) as raw:
            raw.sendall(f"POST /api/v1/{ALPHA}/fhir/r4/Patient HTTP/1.1\r\nHost: 127.0.0.1:{k.server.port}\r\n"
                        f"Authorization: Bearer {k.token('alpha-portal')}\r\nContent-Type: {FHIR_JSON}\r\n"
                        "Content-Length: 999999999\r\n\r\n{}".encode())
            reply = raw.recv(200)
            assert reply.startswith(b"HTTP/1.1 413"), reply
        assert k.post("alpha-portal", "Patient", patient()).status_code == 201


@pytest.mark.parametrize("path", [
    "Patient/" + "x" * 100, "Patient/%00", "Patient/..", "Patient/a%2Fb", "Patient/ü", "Patient?family=%ff%fe",
    "Patient?_count=" + "9" * 50, "Patient?_lastUpdated=ge" + "2" * 200, "Task?patient=" + "P" * 5000,
    "Patient?" + "&".join(f"p{i}=1" for i in range(300)), "Patient?_id=" + ",".join(["a"] * 500),
    "Patient?name:contains=%25_%5C", "Patient/x/_history/" + "9" * 40, "Task?instantiates.publisherId:exact=x",
    "Patient?_sort=" + ",".join(["-_id"] * 50), "AuditEvent?date=eq", "Patient?identifier=%7C%7C%7C",
])
def test_bad_urls_and_search_values_are_4xx(kt2, path):
    answer = kt2.get("alpha-portal", path)
    assert answer.status_code < 500 and answer.json()["resourceType"] in ("OperationOutcome", "Bundle"), path


def _segment(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("token", [
    "x", "a.b", "a.b.c.d", "....", "%%%.%%%.%%%", _segment({"alg": "RS512"}) + "." + _segment([1]) + ".sig",
    _segment(b"\xff\xfe") + "." + _segment({}) + ".x", "eyJ" * 10000, "Bearer Bearer", "ü.ü.ü",
    _segment({"alg": "none"}) + "." + _segment({"scope": "system/*.cruds"}) + ".",
])
def test_bad_bearer_tokens_are_401(kt2, token):
    answer = kt2.http.get(f"{kt2.base()}/Patient", headers={"Authorization": f"Bearer {token}".encode("utf-8")})
    assert answer.status_code == 401 and answer.json()["resourceType"] == "OperationOutcome"


def test_access_tokens_with_wrong_claim_types_are_401(kt2):
    signer = kt2.services.tokens
    base = {"iss": urls.oauth_base(kt2.url, ALPHA), "aud": kt2.base(), "azp": "alpha-portal", "type": "access",
            "scope": "system/*.cruds", "exp": 4102444800}
    for change in ({"exp": "never"}, {"scope": ["system/*.cruds"]}, {"azp": 5, "sub": None}, {"aud": [kt2.base()]},
                   {"iss": None}, {"type": "id"}):
        token = signer.sign(ALPHA, {**base, **change})
        answer = kt2.http.get(f"{kt2.base()}/Patient", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, change


@pytest.mark.parametrize("body, content_type", [
    (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
    (b"grant_type=client_credentials&grant_type=client_credentials", "application/x-www-form-urlencoded"),
    (b"a" * 70_000, "application/x-www-form-urlencoded"),
    (b"%%%%", "application/x-www-form-urlencoded"),
    (b'{"grant_type": "client_credentials"}', "application/json"),
    (b"--b\r\nContent-Disposition: form-data; name=grant_type\r\n\r\nclient_credentials\r\n--b--",
     "multipart/form-data; boundary=b"),
    (b"grant_type=client_credentials&client_assertion_type=" + JWT_BEARER.encode() + b"&client_assertion=" +
     b"e30." * 5000, "application/x-www-form-urlencoded"),
    (b"", ""),
])
def test_bad_form_posts_are_oauth_errors(kt2, body, content_type):
    for url in (kt2.token_url(), urls.introspection_url(kt2.url, ALPHA)):
        answer = kt2.http.post(url, content=body, headers={"Content-Type": content_type} if content_type else {})
        assert 400 <= answer.status_code < 500, (url, answer.text)
        assert answer.json()["error"] in ("invalid_request", "invalid_client", "unsupported_grant_type")


def test_bad_authorize_and_idp_input(kt2):
    authorize = urls.authorize_url(kt2.url, ALPHA)
    for params in ({"client_id": "ü" * 1000}, {"client_id": "alpha-module", "redirect_uri": "\x00"}, {}):
        answer = kt2.http.get(authorize, params=params)
        assert answer.status_code == 400 and answer.json()["error"]
    idp = urls.idp_base(kt2.url, ALPHA, "alpha-clients")
    for params in ({"request": "x" * 5000}, {"request": "ü", "username": "ü" * 1000}, {}):
        assert kt2.http.get(f"{idp}/login", params=params).status_code == 400
    assert kt2.http.post(f"{idp}/login", content=b"\xff" * 10).status_code == 400
    assert kt2.http.get(urls.idp_base(kt2.url, ALPHA, "no-idp") + "/authorize").status_code == 400
    assert kt2.http.delete(f"{idp}/login").status_code == 405
    assert kt2.http.get(f"{idp}/elsewhere").status_code == 404


def test_server_still_works_after_the_abuse(kt2):
    assert kt2.post("alpha-portal", "Patient", patient()).status_code == 201
    assert kt2.request_token("alpha-portal").status_code == 200

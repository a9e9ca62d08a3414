"""KT1 server: hypothesis-driven malformed requests never get a 5xx, and every 4xx is an OperationOutcome.

Complements tests/test_kt1_fuzz.py (mutations of valid bodies): here hypothesis draws whole requests -
method, path (real endpoints, damaged ones, random tails), query, Content-Type and Accept, Authorization
(valid, garbage, non-ASCII bytes) and body (random bytes, random JSON) - against the real server over HTTP.
Derandomised, so CI runs the same cases every time; a failure prints the request that broke it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.kt1.embedded import running_kt1_server

PORTAL = "Basic " + base64.b64encode(b"ktbench-portal:portal-secret").decode()
ENDPOINTS = [
    "/FHIR/Koppeltaal/metadata", "/FHIR/Koppeltaal/Mailbox", "/FHIR/Koppeltaal/MessageHeader/_search",
    "/FHIR/Koppeltaal/MessageHeader/1", "/FHIR/Koppeltaal/MessageHeader/1/_history/2",
    "/FHIR/Koppeltaal/Other/_search", "/FHIR/Koppeltaal/Other", "/FHIR/Koppeltaal/Other/ActivityDefinition:1",
    "/FHIR/Koppeltaal/Patient", "/OAuth2/Koppeltaal/Launch", "/OAuth2/Koppeltaal/Authorize",
    "/OAuth2/Koppeltaal/Token", "/OAuth2/Koppeltaal/MobileLaunch", "/", "/FHIR/Koppeltaal/",
]
SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
FIELD_BYTE = st.sampled_from([9, *range(32, 127), *range(128, 256)])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children,
                                                                                     max_size=4), max_leaves=12)


@st.composite
def requests_(draw: st.DrawFn) -> dict:
    path = draw(st.sampled_from(ENDPOINTS))
    if draw(st.booleans()):
        path = path.rstrip("/") + "/" + "/".join(draw(st.lists(SEGMENT, min_size=1, max_size=3)))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    params = draw(st.dictionaries(st.sampled_from(["_id", "_query", "_count", "_summary", "page", "Patient", "event",
                                                   "ProcessingStatus", "_format", "code", "client_id", "launch",
                                                   "scope", "redirect_uri", "state", "grant_type", "x"]),
                                  SEGMENT, max_size=4))
    headers: dict[str, bytes] = {}
    auth = draw(st.sampled_from(["none", "portal", "garbage", "latin1", "bearer"]))
    if auth == "portal":
        headers["Authorization"] = PORTAL.encode()
    elif auth == "garbage":
        # any bytes a header value may carry (RFC 9110 field-value: visible, obs-text, space and tab); control
        # characters are not HTTP at all and are refused by the HTTP layer before the application sees them
        headers["Authorization"] = b"Basic " + bytes(draw(st.lists(FIELD_BYTE, max_size=20)))
    elif auth == "latin1":
        headers["Authorization"] = "Basic é€ÿ".encode("latin-1", "replace")
    elif auth == "bearer":
        headers["Authorization"] = b"Bearer " + draw(st.text(alphabet="abc-_.=", max_size=30)).encode()
    headers["Content-Type"] = draw(st.sampled_from([b"application/json", b"application/xml", b"text/plain",
                                                   b"application/json; charset=latin-1", b"\xff\xfe", b""]))
    headers["Accept"] = draw(st.sampled_from([b"application/json", b"application/xml", b"*/*", b"text/html",
                                             b"\xc3\x28"]))
    kind = draw(st.sampled_from(["none", "bytes", "json", "xml"]))
    body = b""
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "xml":
        body = b"<" + draw(st.text(max_size=40)).encode("utf-8", "replace") + b">"
    return {"method": method, "path": path, "params": params, "headers": headers, "body": body}


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    with running_kt1_server(db=":memory:") as running, httpx.Client(base_url=running.url, timeout=10) as client:
        yield client


def _is_operation_outcome(response: httpx.Response) -> bool:
    text = response.text
    if "xml" in response.headers.get("content-type", ""):
        return "<OperationOutcome" in text
    try:
        return response.json().get("resourceType") == "OperationOutcome"
    except (ValueError, AttributeError):
        return False


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                      HealthCheck.too_slow])
@given(request=requests_())
def test_malformed_requests_never_get_a_5xx_and_4xx_are_operation_outcomes(server: httpx.Client, request: dict) -> None:
    try:
        response = server.request(request["method"], request["path"], params=request["params"],
                                  headers=request["headers"], content=request["body"])
    except (httpx.InvalidURL, httpx.LocalProtocolError):
        return  # not valid HTTP at all (NUL or trailing white space in a header): the client refuses to send it
    shown = f"{request['method']} {request['path']} params={request['params']} headers={request['headers']}"
    assert response.status_code < 500, f"{shown} -> {response.status_code}: {response.text[:300]}"
    if 400 <= response.status_code < 500 and request["method"] != "HEAD":
        assert _is_operation_outcome(response), f"{shown} -> {response.status_code} without an OperationOutcome: " \
                                                f"{response.headers.get('content-type')} {response.text[:200]!r}"

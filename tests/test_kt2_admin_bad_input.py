"""KT2 domain admin: bad input of every kind is a 4xx with a clear error body, never a 5xx, and stores nothing.

Hand-picked cases (malformed JSON, wrong types, huge bodies, non-UTF-8, lone surrogates, deep nesting, wrong
media types, wrong methods, unknown ids) and generated ones (hypothesis): random JSON bodies and raw bytes on
every POST endpoint, random path segments, random form posts to the web page.
"""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kt2_admin_support import (  # noqa: F401
    API,
    MGMT,
    AdminHarness,
    admin,
    error_of,
    no_unhandled_errors,
)

POSTS = ["/login", "/logout", "/connection-requests", "/connection-requests/{rid}/accept",
         "/connection-requests/{rid}/reject", "/instances/alpha-portal/status", "/accounts/beta-admin/unblock"]
GETS = ["/domains/{x}", "/domains/{x}/instances", "/domains/{x}/connection-requests", "/instances/{x}",
        "/connection-requests/{x}", "/applications/{x}"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=5), max_leaves=12)
field_names = st.sampled_from(["username", "password", "application", "domain", "jwks_uri", "name",
                               "redirect_uris", "launch_url", "role", "reason", "status"])
bodies = st.dictionaries(field_names, json_values, max_size=6) | json_values


def check_answer(response, *, html: bool = False) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text
    if response.status_code >= 400 and not html:
        error_of(response, response.status_code)


def post(admin: AdminHarness, path: str, who: str | None, **kw):
    """POST as `who`; a log-out uses a session of its own (the harness keeps its sessions for the next examples)."""
    if path == "/logout" and who is not None:
        return admin.api("POST", path, token=admin.login(who), **kw)
    return admin.api("POST", path, who, **kw)


def paths(admin: AdminHarness) -> list[str]:
    rid = admin.filed()["id"]
    return [p.format(rid=rid) for p in POSTS]


# -- hand-picked ------------------------------------------------------------------------------------------
RAW_BODIES = [
    (b"", 400), (b"{", 400), (b"not json", 400), (b"[]", 422), (b"null", 422), (b'"text"', 422), (b"42", 422),
    (b"\xff\xfe{}", 400), (b'{"username": "\xff"}', 400), (b'{"reason": "\\ud800"}', 400),
    (b"[" * 50_000 + b"]" * 50_000, 413), (b"[" * 20_000 + b"]" * 20_000, 400), (b'{"a": NaN}', 422),
    (b'{"role": "x", "role": "eHealth Module"}', 200),
]


@pytest.mark.parametrize("raw, status", RAW_BODIES, ids=[str(i) for i in range(len(RAW_BODIES))])
def test_raw_bodies_on_accept(admin: AdminHarness, raw: bytes, status: int) -> None:
    rid = admin.filed()["id"]
    before = admin.snapshot()
    response = admin.api("POST", f"/connection-requests/{rid}/accept", "alpha-admin", content=raw,
                         headers={"Content-Type": "application/json"})
    if status == 200:                       # duplicate keys: the last one wins, as in json.loads
        assert response.status_code == 200, response.text
        return
    body = error_of(response, status)
    assert body["error"] in {"invalid_json", "invalid_request", "body_too_large"}
    assert admin.snapshot() == before


def test_huge_bodies_are_413(admin: AdminHarness) -> None:
    big = json.dumps({"username": "alpha-admin", "password": "x" * 70_000}).encode()
    assert error_of(admin.http.post(f"{API}/login", content=big, headers={"Content-Type": "application/json"}),
                    413)["error"] == "body_too_large"
    # a declared Content-Length over the limit is refused before the body is read
    host, port = admin.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {API}/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     "Content-Length: 10000000\r\n\r\n{}".encode())
        answer = ""
        while '"detail"' not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk.decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"body_too_large"' in answer


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml"])
def test_wrong_media_types_are_415(admin: AdminHarness, content_type: str) -> None:
    response = admin.http.post(f"{API}/login", content=b'{"username": "a", "password": "b"}',
                               headers={"Content-Type": content_type})
    assert error_of(response, 415)["error"] == "unsupported_media_type"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json", None])
def test_json_media_types_are_accepted(admin: AdminHarness, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = admin.http.post(f"{API}/login", content=b'{"username": "alpha-admin", "password": "x"}',
                               headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"username": 1, "password": "x"}, "username"), ({"username": "a"}, "password"), ({"password": "a"}, "username"),
    ({"username": "", "password": "x"}, "username"), ({"username": "a", "password": ""}, "password"),
    ({"username": ["a"], "password": "x"}, "username"), ({"username": "a", "password": "b", "otp": "1"}, "otp"),
    ({"username": "a" * 300, "password": "x"}, "username"), ({"username": "a", "password": "p" * 1100}, "password"),
])
def test_login_body_types(admin: AdminHarness, body: dict, field: str) -> None:
    response = admin.http.post(f"{API}/login", json=body)
    detail = error_of(response, 422)["detail"]
    assert field in detail
    assert "p" * 50 not in detail


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/login", "POST"), ("PUT", "/connection-requests", "GET, HEAD, POST"),
    ("DELETE", "/instances/x", "GET, HEAD"),
    ("PATCH", "/outbox", "GET, HEAD"), ("GET", "/connection-requests/x/accept", "POST"),
])
def test_wrong_methods_are_405_with_allow(admin: AdminHarness, method: str, path: str, allowed: str) -> None:
    response = admin.http.request(method, API + path)
    assert error_of(response, 405)["error"] == "method_not_allowed"
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize("path", ["", "/", "/nothing", "/domains/ktbench-alpha/nothing", "/instances/a/b/c",
                                  "/%FF", "/connection-requests/x/approve"])
def test_unknown_api_paths_are_json_404(admin: AdminHarness, path: str) -> None:
    for method in ("GET", "POST", "OPTIONS"):
        response = admin.http.request(method, API + path, headers={"Authorization": "Bearer x"})
        assert error_of(response, 404)["error"] == "not_found"


@pytest.mark.parametrize("segment", ["%00", "%FF%FE", "%2e%2e%2f", "a" * 3000, "%F0%9F%98%80", "'", "<x>", "%09",
                                     "%22%3E%3Cscript%3E"])
def test_odd_ids_are_404(admin: AdminHarness, segment: str) -> None:
    for template in GETS:
        response = admin.http.get(API + template.format(x=segment),
                                  headers={"Authorization": f"Bearer {admin.session('alpha-admin')}"})
        assert response.status_code in (403, 404), (template, response.status_code, response.text)
        check_answer(response)
        assert "set-cookie" not in response.headers


def test_a_newline_in_the_path_never_reaches_the_admin(admin: AdminHarness) -> None:
    """Starlette's Mount does not match a path with a line break: the app's own 404 answers, without echo."""
    response = admin.http.get(f"{API}/instances/%0d%0aSet-Cookie:x=y",
                              headers={"Authorization": f"Bearer {admin.session('alpha-admin')}"})
    assert response.status_code == 404 and "set-cookie" not in response.headers


def test_query_parameters(admin: AdminHarness) -> None:
    for params in ({"status": "x"}, {"status": ""}, {"limit": "1e3"}):
        path = "/outbox" if "limit" in params else "/connection-requests"
        error_of(admin.api("GET", path, "alpha-admin", params=params), 422)
    ok = admin.api("GET", "/connection-requests", "alpha-admin", params={"domain": "\u0000", "application": "x" * 999})
    assert ok.status_code == 200 and ok.json() == {"connection_requests": []}


# -- generated ---------------------------------------------------------------------------------------------
@FUZZ
@given(body=bodies, which=st.integers(min_value=0, max_value=len(POSTS) - 1), who=st.sampled_from(
    ["alpha-admin", "vendor-admin", None]))
def test_fuzzed_json_bodies(admin: AdminHarness, body, which: int, who: str | None) -> None:
    path = paths(admin)[which]
    response = post(admin, path, who, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    check_answer(response)


@FUZZ
@given(raw=st.binary(max_size=300), which=st.integers(min_value=0, max_value=len(POSTS) - 1),
       content_type=st.sampled_from(["application/json", "", "text/plain", "application/json; charset=latin-1"]))
def test_fuzzed_raw_bodies(admin: AdminHarness, raw: bytes, which: int, content_type: str) -> None:
    path = paths(admin)[which]
    headers = {"Content-Type": content_type} if content_type else {}
    check_answer(post(admin, path, "alpha-admin", content=raw, headers=headers))


@FUZZ
@given(segment=st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s and s not in (".", "..")
                                                       and "\n" not in s and "\r" not in s),
       which=st.integers(min_value=0, max_value=len(GETS) - 1))
def test_fuzzed_path_segments(admin: AdminHarness, segment: str, which: int) -> None:
    from urllib.parse import quote

    response = admin.api("GET", GETS[which].format(x=quote(segment, safe="")), "vendor-admin")
    check_answer(response)


@FUZZ
@given(header=st.binary(max_size=80).filter(lambda b: all(c >= 0x20 and c != 0x7F for c in b) and b.strip() == b))
def test_fuzzed_authorization_headers(admin: AdminHarness, header: bytes) -> None:
    response = admin.http.get(f"{API}/me", headers={"Authorization": header})
    assert response.status_code == 401, response.text
    check_answer(response)


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["csrf", "username", "password", "role", "reason", "status", "domain",
                                             "jwks_uri", "application", "redirect_uris", "x"]),
                            st.text(max_size=30), max_size=6),
       raw=st.none() | st.binary(max_size=120),
       target=st.sampled_from(["/login", "/logout", "/connection-requests", "/instances/alpha-portal/status",
                               "/connection-requests/none/accept"]))
def test_fuzzed_form_posts(admin: AdminHarness, form: dict, raw: bytes | None, target: str) -> None:
    cookies = {"Cookie": f"kt2mgmt_session={admin.session('alpha-admin')}"}
    if raw is None:
        response = admin.http.post(MGMT + target, data=form, headers=cookies)
    else:
        response = admin.http.post(MGMT + target, content=raw,
                                   headers={**cookies, "Content-Type": "application/x-www-form-urlencoded"})
    check_answer(response, html=True)
    assert response.status_code in (303, 400, 401, 403, 404, 409, 415, 422)
    assert admin.registry_status("alpha-portal") == "active"          # without a valid CSRF token nothing changes


def test_the_admin_still_works_after_the_fuzzing(admin: AdminHarness) -> None:
    accepted = admin.accepted()
    assert admin.registry_status(accepted["client_id"]) == "active"

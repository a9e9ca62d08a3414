"""Token introspection of HTI launch tokens (and access tokens) by a module with its own client assertion
(KT2-INTRO-*)."""

from __future__ import annotations

import base64
import json
import time
import uuid

from joserfc.jwk import RSAKey
from kt2_support import ALPHA, APPS, JWT_BEARER, jwks_host, kt2, no_unhandled_errors  # noqa: F401

from simulators.kt2 import urls


def _introspect(kt2, token: str | None, *, caller: str = "alpha-module", aud: str | None = None, **extra):
    app = APPS[caller]
    form = {"client_assertion_type": JWT_BEARER,
            "client_assertion": app.assertion(aud or urls.introspection_url(kt2.url, ALPHA)), **extra}
    if token is not None:
        form["token"] = token
    return kt2.http.post(urls.introspection_url(kt2.url, ALPHA), data=form)


def _hti(module: str = "alpha-module", **claims) -> str:
    return APPS["alpha-portal"].hti(APPS[module], "Patient/p1", "Task/t1", **claims)


def test_valid_hti_is_active_with_its_claims_once(kt2):
    trace = uuid.uuid4().hex
    token = _hti(intent="plan")
    answer = kt2.http.post(urls.introspection_url(kt2.url, ALPHA), headers={"X-Trace-Id": trace}, data={
        "token": token, "client_assertion_type": JWT_BEARER,
        "client_assertion": APPS["alpha-module"].assertion(urls.introspection_url(kt2.url, ALPHA))})
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True
    assert (body["iss"], body["aud"], body["sub"], body["resource"], body["intent"]) == \
        ("alpha-portal", "Device/alpha-module", "Patient/p1", "Task/t1", "plan")
    again = _introspect(kt2, token)
    assert again.status_code == 200 and again.json() == {"active": False}
    events = kt2.audit_events(traceId=trace)
    assert len(events) == 1 and events[0]["outcomeDesc"].startswith("introspect: ")
    assert events[0]["type"]["code"] == "110114"


def test_caller_assertion_may_name_the_token_url(kt2):
    answer = _introspect(kt2, _hti(), aud=kt2.token_url())
    assert answer.status_code == 200 and answer.json()["active"] is True


def test_inactive_tokens(kt2):
    now = int(time.time())
    foreign_key = RSAKey.generate_key(2048)
    cases = {
        "other module": _hti("alpha-module-2"),
        "expired": APPS["alpha-portal"].hti(APPS["alpha-module"], "Patient/p", "Task/t", lifetime=-120),
        "bad signature": APPS["alpha-portal"].sign({"iss": "alpha-portal", "aud": "Device/alpha-module",
                                                    "sub": "Patient/p", "resource": "Task/t", "iat": now,
                                                    "exp": now + 60, "jti": "x"}, key=foreign_key),
        "unknown issuer": APPS["beta-portal"].hti(APPS["alpha-module"], "Patient/p", "Task/t"),
        "garbage": "not.a.jwt",
        "no jwt": "plain",
        "closed issuer": APPS["alpha-closed"].hti(APPS["alpha-module"], "Patient/p", "Task/t"),
    }
    for name, token in cases.items():
        answer = _introspect(kt2, token)
        assert answer.status_code == 200, name
        assert answer.json() == {"active": False}, name


def test_launch_token_used_by_authorize_is_inactive(kt2):
    token = _hti()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    # what authorize does with the token: the replay store is shared with introspection
    kt2.services.tokens.checks.use_jti(f"hti:{ALPHA}", claims, time.time() + 60, "launch token")
    assert _introspect(kt2, token).json() == {"active": False}


def test_caller_must_authenticate(kt2):
    token = _hti()
    bad = kt2.http.post(urls.introspection_url(kt2.url, ALPHA), data={
        "token": token, "client_assertion_type": JWT_BEARER, "client_assertion": "garbage"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    missing = kt2.http.post(urls.introspection_url(kt2.url, ALPHA), data={"token": token})
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"   # TOP-KT-021
    assert _introspect(kt2, token, caller="alpha-maintenance").status_code == 401
    wrong_aud = _introspect(kt2, token, aud="https://elsewhere.example.org/token")
    assert wrong_aud.status_code == 401
    assert _introspect(kt2, None).status_code == 400
    assert _introspect(kt2, token).json()["active"] is True   # refused callers did not consume it


def test_access_tokens_of_the_domain_are_introspectable(kt2):
    access = kt2.token("alpha-portal")
    body = _introspect(kt2, access).json()
    assert body["active"] is True and body["azp"] == "alpha-portal" and body["type"] == "access"
    now = int(time.time())
    expired = kt2.services.tokens.sign(ALPHA, {"iss": urls.oauth_base(kt2.url, ALPHA), "aud": kt2.base(),
                                               "azp": "alpha-portal", "exp": now - 400, "iat": now - 700,
                                               "type": "access", "scope": ""})
    assert _introspect(kt2, expired).json() == {"active": False}


def test_es384_launch_tokens_are_verified(kt2):
    token = APPS["alpha-es"].hti(APPS["alpha-module"], "Patient/p", "Task/t")
    body = _introspect(kt2, token).json()
    assert body["active"] is True and body["iss"] == "alpha-es"

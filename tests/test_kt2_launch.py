"""The HTI launch as SMART app launch: authorize, the simulated IdP, the identity check, the code exchange with
PKCE, the id_token and NOOP access token, and every refusal on the way (KT2-LAUNCH-*)."""

from __future__ import annotations

import secrets
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from kt2_support import (  # noqa: F401
    ALPHA,
    APPS,
    MODULE_REDIRECT,
    PATIENT_USER,
    Launch,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    practitioner,
    related_person,
    task,
)

from simulators.kt2 import urls

STAFF_USER = ("dr.bakker", "dr.bakker@ktbench.test")


def _redirect_error(answer, error: str, state: str | None) -> str:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(MODULE_REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == [error], query
    assert query.get("state") == ([state] if state else None)
    return query["error_description"][0]


@pytest.fixture
def scene(kt2):
    person = kt2.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
    world = kt2.world()
    chosen = kt2.create("alpha-portal", task(person["id"], world["definition"]["id"]))
    return {"patient": person, "task": chosen, "definition": world["definition"]}


def test_patient_launch_end_to_end(kt2, scene):
    pid, tid = scene["patient"]["id"], scene["task"]["id"]
    launch = Launch(kt2, f"Patient/{pid}", tid, patient=f"Patient/{pid}",
                    definition=f"ActivityDefinition/{scene['definition']['id']}", intent="plan")
    answer = launch.exchange(launch.code(PATIENT_USER[0]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["access_token"] == "NOOP" and body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "launch openid fhirUser"
    assert (body["resource"], body["sub"], body["patient"], body["intent"]) == \
        (f"Task/{tid}", f"Patient/{pid}", f"Patient/{pid}", "plan")
    assert body["definition"] == f"ActivityDefinition/{scene['definition']['id']}"
    keys = KeySet.import_key_set(kt2.http.get(urls.jwks_url(kt2.url, ALPHA)).json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS512"]).claims
    assert id_token["iss"] == urls.oauth_base(kt2.url, ALPHA)
    assert id_token["aud"] == "alpha-module" and id_token["azp"] == "alpha-module"
    assert id_token["sub"] == f"Patient/{pid}"
    assert id_token["fhirUser"] == f"{kt2.base()}/Patient/{pid}"
    assert id_token["exp"] > id_token["iat"]
    noop = kt2.http.get(f"{kt2.base()}/Task/{tid}", headers={"Authorization": "Bearer NOOP"})
    assert noop.status_code == 401


def test_practitioner_goes_to_the_staff_idp(kt2, scene):
    doctor = kt2.create("alpha-portal", practitioner(STAFF_USER[1]))
    launch = Launch(kt2, f"Practitioner/{doctor['id']}", scene["task"]["id"])
    assert launch.exchange(launch.code(STAFF_USER[0])).status_code == 200
    assert "/idp/alpha-staff/authorize?request=" in launch.idp_page


def test_authorize_by_post_form(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    answer = kt2.http.post(urls.authorize_url(kt2.url, ALPHA), data=launch.params())
    assert answer.status_code == 302 and "/idp/alpha-clients/authorize?request=" in answer.headers["location"]


def test_identity_mismatch_is_403(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    callback = kt2.http.get(launch.login("petra.de.vries"))
    assert callback.status_code == 403 and callback.json()["error"] == "access_denied"
    assert "petra.de.vries@ktbench.test" in callback.json()["error_description"]


def test_related_person_must_belong_to_the_hti_patient(kt2, scene):
    pid = scene["patient"]["id"]
    friend = kt2.create("alpha-portal", related_person(pid, "petra.de.vries@ktbench.test"))
    ok = Launch(kt2, f"RelatedPerson/{friend['id']}", scene["task"]["id"], patient=f"Patient/{pid}")
    assert ok.exchange(ok.code("petra.de.vries")).status_code == 200
    other = kt2.create("alpha-portal", patient())
    wrong = Launch(kt2, f"RelatedPerson/{friend['id']}", scene["task"]["id"], patient=f"Patient/{other['id']}")
    assert kt2.http.get(wrong.login("petra.de.vries")).status_code == 403


def test_idp_hint(kt2, scene):
    sub = f"Patient/{scene['patient']['id']}"
    hinted = Launch(kt2, sub, scene["task"]["id"], idp_hint="alpha-clients")
    assert "/idp/alpha-clients/" in hinted.authorize().headers["location"]
    unknown = Launch(kt2, sub, scene["task"]["id"], idp_hint="no-such-idp")
    assert "idp_hint" in _redirect_error(unknown.authorize(), "invalid_request", unknown.state)
    wrong_kind = Launch(kt2, sub, scene["task"]["id"], idp_hint="alpha-staff")
    assert "Patient" in _redirect_error(wrong_kind.authorize(), "invalid_request", wrong_kind.state)


@pytest.mark.parametrize("changes, error", [
    ({"scope": "launch openid"}, "invalid_scope"),
    ({"scope": "launch openid fhirUser patient/*.read"}, "invalid_scope"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"aud": "https://elsewhere.example.org/fhir"}, "invalid_request"),
    ({"launch": "not-a-jwt"}, "invalid_request"),
    ({"launch": None}, "invalid_request"),
], ids=["scope-missing-one", "scope-extra", "response-type", "pkce-plain", "pkce-missing", "aud", "launch-garbage",
        "launch-missing"])
def test_authorize_refusals_after_redirect_check_redirect_with_state(kt2, scene, changes, error):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    _redirect_error(launch.authorize(**changes), error, launch.state)


def test_missing_state_is_refused(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    _redirect_error(launch.authorize(state=None), "invalid_request", None)


@pytest.mark.parametrize("changes", [{"client_id": "nobody"}, {"client_id": None}, {"client_id": "alpha-maintenance"},
                                     {"redirect_uri": "https://attacker.example.org/cb"}, {"redirect_uri": None}])
def test_refusals_before_the_redirect_check_are_400_json(kt2, scene, changes):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    answer = launch.authorize(**changes)
    assert answer.status_code == 400 and answer.json()["error"] in ("invalid_request", "invalid_client")


def _hti(kt2, scene, **kwargs) -> str:
    portal, module = kwargs.pop("portal", APPS["alpha-portal"]), kwargs.pop("module", APPS["alpha-module"])
    sub = kwargs.pop("sub", f"Patient/{scene['patient']['id']}")
    resource = kwargs.pop("resource", f"Task/{scene['task']['id']}")
    return portal.hti(module, sub, resource, **kwargs)


@pytest.mark.parametrize("make, expected", [
    (lambda k, s: _hti(k, s, module=APPS["alpha-module-2"]), "aud"),
    (lambda k, s: _hti(k, s, lifetime=-100), "expired"),
    (lambda k, s: _hti(k, s, lifetime=900), "at most"),
    (lambda k, s: _hti(k, s, drop=("iat",)), "iat"),
    (lambda k, s: _hti(k, s, drop=("jti",)), "jti"),
    (lambda k, s: _hti(k, s, drop=("resource",)), "resource"),
    (lambda k, s: _hti(k, s, sub="Device/x"), "sub"),
    (lambda k, s: _hti(k, s, resource="Patient/1"), "resource"),
    (lambda k, s: _hti(k, s, portal=APPS["alpha-closed"]), "not active"),
    (lambda k, s: _hti(k, s, iss="someone-else"), "iss"),
    (lambda k, s: APPS["alpha-portal"].sign({"iss": "alpha-portal", "aud": "Device/alpha-module",
                                             "sub": "Patient/1", "resource": "Task/1", "iat": int(time.time()),
                                             "exp": int(time.time()) + 60, "jti": "k"},
                                            key=RSAKey.generate_key(2048)), "signature"),
], ids=["aud", "expired", "too-long", "no-iat", "no-jti", "no-resource", "bad-sub", "bad-resource", "closed-portal",
        "unknown-iss", "bad-signature"])
def test_bad_launch_tokens_are_refused(kt2, scene, make, expected):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    description = _redirect_error(launch.authorize(launch=make(kt2, scene)), "invalid_request", launch.state)
    assert expected in description


def test_a_launch_token_is_single_use(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    assert launch.authorize().status_code == 302
    assert "replay" in _redirect_error(launch.authorize(), "invalid_request", launch.state)


def test_code_exchange_refusals(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    code = launch.code(PATIENT_USER[0])
    wrong = launch.exchange(code, code_verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    code = again.code(PATIENT_USER[0])
    assert again.exchange(code, redirect_uri="https://module.ktbench.test/other").json()["error"] == "invalid_grant"
    third = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    code = third.code(PATIENT_USER[0])
    assert third.exchange(code, client="alpha-module-2").json()["error"] == "invalid_grant"
    fourth = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    code = fourth.code(PATIENT_USER[0])
    assert fourth.exchange(code, client_assertion="garbage").status_code == 401
    assert fourth.exchange(code, code_verifier=None).status_code == 400
    assert fourth.exchange(code).status_code == 200
    reused = fourth.exchange(code)
    assert reused.status_code == 400 and "used before" in reused.json()["error_description"]
    assert fourth.exchange("unknown-code").json()["error"] == "invalid_grant"


def test_expired_code_is_refused(make_kt2):
    with make_kt2() as k:
        person = k.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
        world = k.world()
        launch = Launch(k, f"Patient/{person['id']}", world["task"]["id"])
        code = launch.code(PATIENT_USER[0])
        k.ctx.clock.offset = k.ctx.settings.authorization_code_seconds + 1
        answer = launch.exchange(code)
        assert answer.status_code == 400 and "expired" in answer.json()["error_description"]


def test_idp_refusals_are_plain_400_pages(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    idp_page = launch.authorize().headers["location"]
    request_id = parse_qs(urlsplit(idp_page).query)["request"][0]
    base = urls.idp_base(kt2.url, ALPHA, "alpha-clients")
    unknown_user = kt2.http.get(f"{base}/login", params={"request": request_id, "username": "nobody"})
    assert unknown_user.status_code == 400 and "text/html" in unknown_user.headers["content-type"]
    assert kt2.http.get(f"{base}/login", params={"request": "nope", "username": "jan.jansen"}).status_code == 400
    assert kt2.http.get(f"{base}/authorize", params={"request": "nope"}).status_code == 400
    other_idp = urls.idp_base(kt2.url, ALPHA, "alpha-staff")
    assert kt2.http.get(f"{other_idp}/login", params={"request": request_id, "username": "dr.bakker"}).status_code \
        == 400
    posted = kt2.http.post(f"{base}/login", data={"request": request_id, "username": "jan.jansen"})
    assert posted.status_code == 302
    skipped = kt2.http.get(urls.oauth_base(kt2.url, ALPHA) + "/idp-callback", params={"request": request_id,
                                                                                       "code": "guess"})
    assert skipped.status_code == 400


def test_launch_steps_are_audited(kt2, scene):
    trace = uuid.uuid4().hex
    kt2.http.headers["X-Trace-Id"] = trace
    try:
        launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
        assert launch.exchange(launch.code(PATIENT_USER[0])).status_code == 200
    finally:
        del kt2.http.headers["X-Trace-Id"]
    events = kt2.audit_events(traceId=trace, type="110114")
    steps = sorted(e["outcomeDesc"].split(":")[0] for e in events)
    assert steps == ["authorize", "idp call", "idp login", "token"]
    login = next(e for e in events if e["outcomeDesc"].startswith("idp login"))
    assert login["entity"][0]["what"]["reference"] == f"Patient/{scene['patient']['id']}"
    assert login["entity"][0]["role"]["code"] == "1"
    assert login["agent"][1]["who"]["identifier"]["value"] == "alpha-clients"
    assert all(e["subtype"][0]["code"] == "110122" for e in events)


def test_instances_of_another_domain_cannot_launch_here(kt2, scene):
    launch = Launch(kt2, f"Patient/{scene['patient']['id']}", scene["task"]["id"])
    answer = launch.authorize(client_id="beta-module")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    beta_hti = APPS["beta-portal"].hti(APPS["alpha-module"], f"Patient/{scene['patient']['id']}",
                                       f"Task/{scene['task']['id']}")
    assert "iss" in _redirect_error(launch.authorize(launch=beta_hti), "invalid_request", launch.state)
    elsewhere = kt2.http.get(urls.authorize_url(kt2.url, "no-such-domain"), params=launch.params())
    assert elsewhere.status_code == 404 and elsewhere.json()["error"] == "invalid_request"

"""KT1 server: single sign-on — Launch, Authorize, Token, MobileLaunch and Bearer access (kt1-protocol §3, §9.8).

Codes and activation codes are single use and expire; a refresh rotates
both tokens and kills the old ones; a Bearer token reaches only its own
patient's messages.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from kt1_builders import Kt1World, ack_body, processing_status
from kt1_support import (  # noqa: F401
    AUTHORIZE,
    JSON_CT,
    LAUNCH,
    MH_SEARCH,
    MOBILE_LAUNCH,
    OTHER,
    TOKEN,
    details,
    kt1,
    outcome,
    write_data,
)
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

MODULE = "ktbench-module"
MODULE_CLIENT = (MODULE, "module-oauth-secret")
REDIRECT = "https://example.com/koppeltaalauth"
PATIENT = "https://portal.example.org/fhir/Koppeltaal/Patient/1"
USER = "https://portal.example.org/fhir/Koppeltaal/Practitioner/2"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _launch(kt1, patient=PATIENT, who="portal", **extra):
    params = {"client_id": MODULE, "patient": patient, "user": USER, "resource": "act-1", **extra}
    return kt1.request("GET", LAUNCH, who, params=params)


def _launch_id(kt1, patient=PATIENT, **extra) -> str:
    response = _launch(kt1, patient, **extra)
    assert response.status_code == 302, response.text
    return _query(response.headers["location"])["launch"]


def _authorize(kt1, launch_ref, client_id=MODULE, redirect_uri=REDIRECT, state="xyz", scope=None):
    params = {"response_type": "code", "client_id": client_id, "scope": scope or f"patient/*.read launch:{launch_ref}"}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    if state is not None:
        params["state"] = state
    return kt1.request("GET", AUTHORIZE, None, params=params)


def _code(kt1, patient=PATIENT, **extra) -> str:
    response = _authorize(kt1, _launch_id(kt1, patient, **extra))
    assert response.status_code == 302, response.text
    return _query(response.headers["location"])["code"]


def _token_get(kt1, code, auth=MODULE_CLIENT, redirect_uri=REDIRECT):
    params = {"code": code, "grant_type": "authorization_code"}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    return kt1.request("GET", TOKEN, None, params=params, auth=auth)


def _token(kt1, patient=PATIENT, **extra) -> dict:
    response = _token_get(kt1, _code(kt1, patient, **extra))
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


# -- Launch ---------------------------------------------------------------------------------------
def test_launch_redirects_to_the_module_with_iss_launch_application_id_and_launch_id(kt1):
    response = _launch(kt1)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:9/module/launch?")
    query = _query(location)
    assert query["iss"] == kt1.url + "/FHIR/Koppeltaal"
    assert query["application_id"] == MODULE
    assert query["launch"] and query["launch_id"] == query["launch"]


def test_launch_iss_uses_the_public_base(kt1):
    kt1.use(public_base="https://kt.example.org")
    assert _query(_launch(kt1).headers["location"])["iss"] == "https://kt.example.org/FHIR/Koppeltaal"


def test_launch_ids_are_unique(kt1):
    assert len({_launch_id(kt1) for _ in range(5)}) == 5


@pytest.mark.parametrize("auth", [None, ("ktbench-portal", "wrong")], ids=["no credentials", "wrong password"])
def test_launch_needs_the_portals_basic_credentials(kt1, auth):
    response = kt1.request("GET", LAUNCH, None, auth=auth,
                           params={"client_id": MODULE, "patient": PATIENT, "user": USER})
    outcome(response, 401)


def test_launch_of_an_unknown_or_foreign_application_is_refused(kt1):
    for client_id in ("no-such-app", "ktbench-beta-module"):
        text = details(kt1.request("GET", LAUNCH, "portal",
                                   params={"client_id": client_id, "patient": PATIENT, "user": USER}), 400)
        assert text == [f"Unknown application '{client_id}' in domain 'ktbench-alpha'"]


def test_launch_without_patient_is_refused(kt1):
    response = kt1.request("GET", LAUNCH, "portal", params={"client_id": MODULE, "user": USER})
    assert details(response, 400) == ["Missing parameter 'patient'"]


# -- Authorize ------------------------------------------------------------------------------------
def test_authorize_needs_no_credentials_and_redirects_with_code_and_state(kt1):
    response = _authorize(kt1, _launch_id(kt1))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = _query(location)
    assert query["code"] and query["state"] == "xyz"


def test_authorize_accepts_scopes_in_any_order_and_keeps_redirect_query(kt1):
    launch_id = _launch_id(kt1)
    response = _authorize(kt1, launch_id, redirect_uri=REDIRECT + "?a=1", state=None,
                          scope=f"launch:{launch_id} patient/*.read")
    assert response.status_code == 302
    query = _query(response.headers["location"])
    assert query["a"] == "1" and query["code"] and "state" not in query


def test_authorize_a_launch_only_once(kt1):
    launch_id = _launch_id(kt1)
    assert _authorize(kt1, launch_id).status_code == 302
    assert details(_authorize(kt1, launch_id), 400) == ["This launch has already been used"]


def test_authorize_refuses_another_client_and_unknown_launches(kt1):
    launch_id = _launch_id(kt1)
    assert details(_authorize(kt1, launch_id, client_id="ktbench-portal"), 400) == ["Unknown launch for this client"]
    assert details(_authorize(kt1, "nonsense"), 400) == ["Unknown launch for this client"]
    assert _authorize(kt1, launch_id).status_code == 302  # the failed attempts did not use it up


def test_authorize_refuses_a_launch_after_its_lifetime(kt1, monkeypatch):
    launch_id = _launch_id(kt1)
    real_now = kt1.ctx.now
    monkeypatch.setattr(kt1.ctx, "now", lambda: real_now() + kt1.ctx.settings.launch_seconds + 1)
    assert details(_authorize(kt1, launch_id), 400) == ["This launch has expired"]


# -- Token ----------------------------------------------------------------------------------------
def _check_token(body: dict, *, intent: str | None = None) -> None:
    expected = {"access_token", "refresh_token", "token_type", "expires_in", "scope", "domain", "patient", "user",
                "resource"} | ({"intent"} if intent else set())
    assert set(body) == expected
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600 and isinstance(body["expires_in"], int)
    assert body["scope"] == "patient/*.read"
    assert body["domain"] == "ktbench-alpha"
    assert (body["patient"], body["user"], body["resource"]) == (PATIENT, USER, "act-1")
    assert body["access_token"] != body["refresh_token"]
    if intent:
        assert body["intent"] == intent


def test_token_by_get_has_the_fields_the_connector_checks(kt1):
    response = _token_get(kt1, _code(kt1))
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CT
    assert response.headers["cache-control"] == "no-store"
    _check_token(response.json())


def test_token_carries_the_launch_intent(kt1):
    _check_token(_token(kt1, intent="plan"), intent="plan")


def test_token_by_post_form(kt1):
    code = _code(kt1)
    response = kt1.request("POST", TOKEN, None, auth=MODULE_CLIENT,
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert response.status_code == 200, response.text
    _check_token(response.json())


def test_token_for_a_public_client_without_credentials(kt1):
    response = _token_get(kt1, _code(kt1), auth=None)
    assert response.status_code == 200
    _check_token(response.json())


def test_token_refuses_a_wrong_client_secret(kt1):
    code = _code(kt1)
    assert details(_token_get(kt1, code, auth=(MODULE, "wrong")), 401) == ["Client authentication failed"]
    assert _token_get(kt1, code).status_code == 200  # the refused attempt did not use the code


def test_token_refuses_a_code_of_another_client(kt1):
    response = _token_get(kt1, _code(kt1), auth=("ktbench-portal", "portal-oauth-secret"))
    assert details(response, 400) == ["The authorization code was issued to another client"]


def test_token_refuses_a_different_redirect_uri(kt1):
    response = _token_get(kt1, _code(kt1), redirect_uri="https://evil.example/cb")
    assert details(response, 400) == ["redirect_uri does not match the one of the authorization request"]


def test_code_is_single_use_and_a_replay_revokes_its_tokens(kt1):
    code = _code(kt1)
    first = _token_get(kt1, code).json()
    assert kt1.request("GET", MH_SEARCH, None, headers=_bearer(first), params={"_summary": "true"}).status_code == 200
    assert details(_token_get(kt1, code), 400) == ["The authorization code has already been used"]
    outcome(kt1.request("GET", MH_SEARCH, None, headers=_bearer(first), params={"_summary": "true"}), 401)


def test_code_expires_after_its_configured_lifetime(kt1, tmp_path):
    kt1.use(write_data(tmp_path, server={"authorization_code_seconds": 1}))
    code = _code(kt1)
    time.sleep(1.1)
    assert details(_token_get(kt1, code), 400) == ["The authorization code has expired"]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_refresh_rotates_both_tokens_and_kills_the_old_access_token(kt1, method):
    old = _token(kt1)
    params = {"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}
    if method == "POST":
        response = kt1.request("POST", TOKEN, None, auth=MODULE_CLIENT, data=params)
    else:
        response = kt1.request("GET", TOKEN, None, auth=MODULE_CLIENT, params=params)
    assert response.status_code == 200, response.text
    new = response.json()
    _check_token(new)
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    search = {"_summary": "true"}
    outcome(kt1.request("GET", MH_SEARCH, None, headers=_bearer(old), params=search), 401)
    assert kt1.request("GET", MH_SEARCH, None, headers=_bearer(new), params=search).status_code == 200
    reused = kt1.request("POST", TOKEN, None, auth=MODULE_CLIENT, data=params)
    assert details(reused, 400) == ["Unknown or revoked refresh token"]


def test_token_refuses_unknown_grants(kt1):
    response = kt1.request("POST", TOKEN, None, auth=MODULE_CLIENT, data={"grant_type": "password"})
    assert details(response, 400) == ["Unsupported grant_type 'password'"]


# -- MobileLaunch ---------------------------------------------------------------------------------
def _mobile(kt1):
    response = kt1.request("GET", MOBILE_LAUNCH, "portal",
                           params={"client_id": MODULE, "patient": PATIENT, "user": USER, "resource": "act-1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    return response.json()


def test_mobile_launch_gives_an_activation_code_valid_for_days(kt1):
    body = _mobile(kt1)
    assert set(body) == {"activation_code", "expires_in"}
    assert re.fullmatch(r"\d{6}", body["activation_code"])
    assert body["expires_in"] == 7


def test_mobile_activation_code_buys_an_authorization_code_once(kt1):
    activation = _mobile(kt1)["activation_code"]
    response = _authorize(kt1, activation, redirect_uri=None, state=None,
                          scope=f"launch:{activation} patient/*.read")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    code = response.json()["authorization_code"]
    token = _token_get(kt1, code, redirect_uri=None)
    assert token.status_code == 200
    _check_token(token.json())
    again = _authorize(kt1, activation, redirect_uri=None, state=None)
    assert details(again, 400) == ["This launch has already been used"]


@pytest.mark.parametrize("days, ok", [(6.9, True), (7.1, False)])
def test_mobile_activation_code_expires_in_days(kt1, monkeypatch, days, ok):
    activation = _mobile(kt1)["activation_code"]
    real_now = kt1.ctx.now
    monkeypatch.setattr(kt1.ctx, "now", lambda: real_now() + days * 86400)
    response = _authorize(kt1, activation, redirect_uri=None, state=None)
    if ok:
        assert response.status_code == 200
    else:
        assert details(response, 400) == ["This launch has expired"]


def test_mobile_activation_lifetime_comes_from_the_data_file(kt1, tmp_path):
    kt1.use(write_data(tmp_path, server={"activation_code_days": 3}))
    assert _mobile(kt1)["expires_in"] == 3


def test_mobile_launch_needs_credentials(kt1):
    outcome(kt1.request("GET", MOBILE_LAUNCH, None, params={"client_id": MODULE, "patient": PATIENT,
                                                              "user": USER}), 401)


# -- Bearer tokens on the FHIR endpoints ----------------------------------------------------------
@pytest.fixture
def two_patients(kt1):
    """Two CarePlan messages for two patients in the module's mailbox; returns (world, [(ident, patient)])."""
    world = Kt1World(seed=70)
    sent = []
    for _ in range(2):
        careplan, patient, practitioner, related = world.careplan_set()
        bundle = world.careplan_message(careplan, patient, practitioner, related)
        world.learn(kt1.send(bundle))
        sent.append((bundle["entry"][0]["content"]["identifier"], patient))
    return world, sent


def test_bearer_summary_search_shows_only_the_token_patient(kt1, two_patients):
    _, sent = two_patients
    token = _token(kt1, sent[0][1].url)
    for params in ({}, {"Patient": sent[1][1].url}):
        response = kt1.request("GET", MH_SEARCH, None, headers=_bearer(token), params={"_summary": "true", **params})
        assert response.status_code == 200
        idents = [e["content"]["identifier"] for e in response.json()["entry"]]
        assert idents == ([sent[0][0]] if not params else [])


def test_bearer_claim_and_id_reach_only_the_token_patient(kt1, two_patients):
    _, sent = two_patients
    token = _token(kt1, sent[1][1].url)
    claim = kt1.request("GET", MH_SEARCH, None, headers=_bearer(token),
                        params={"_query": "MessageHeader.GetNextNewAndClaim"}).json()
    assert claim["entry"][0]["content"]["identifier"] == sent[1][0]
    other = next(h for h in kt1.headers_of("module") if h["identifier"] == sent[0][0])
    other_entry = next(e for e in kt1.summary("module")["entry"] if e["content"]["identifier"] == sent[0][0])
    by_id = kt1.request("GET", MH_SEARCH, None, headers=_bearer(token), params={"_id": other_entry["id"]})
    assert by_id.status_code == 200 and by_id.json()["entry"] == []
    before = kt1.snapshot()
    ack = kt1.request("PUT", other_entry["id"], None, headers=_bearer(token), json=ack_body(other, "Success"))
    outcome(ack, 404)
    assert kt1.snapshot() == before


def test_bearer_ack_of_the_token_patients_message(kt1, two_patients):
    _, sent = two_patients
    token = _token(kt1, sent[0][1].url)
    entry = kt1.request("GET", MH_SEARCH, None, headers=_bearer(token),
                        params={"_query": "MessageHeader.GetNextNewAndClaim"}).json()["entry"][0]
    response = kt1.request("PUT", entry["id"], None, headers=_bearer(token),
                           json=ack_body(entry["content"], "Success"))
    assert response.status_code == 200, response.text
    statuses = {h["identifier"]: processing_status(h)["status"] for h in kt1.headers_of("module")}
    assert statuses == {sent[0][0]: "Success", sent[1][0]: "New"}


def test_bearer_mailbox_post_only_for_the_token_patient(kt1, two_patients):
    world, sent = two_patients
    token = _token(kt1, sent[0][1].url)
    mine = world.activity_status(world.careplan(sent[0][1], world.practitioner()))
    theirs = world.activity_status(world.careplan(sent[1][1], world.practitioner()))
    before = kt1.snapshot()
    refused = kt1.post_message(world.message("UpdateCarePlanActivityStatus", theirs, patient=sent[1][1]), None,
                               headers=_bearer(token))
    assert details(refused, 403) == ["The access token does not grant access to this patient"]
    assert kt1.snapshot() == before
    accepted = kt1.post_message(world.message("UpdateCarePlanActivityStatus", mine, patient=sent[0][1]), None,
                                headers=_bearer(token))
    assert accepted.status_code == 200, accepted.text


def test_bearer_is_not_accepted_for_activity_definition_changes(kt1):
    from kt1_builders import activity_definition
    response = kt1.request("POST", OTHER, None, headers=_bearer(_token(kt1)), json=activity_definition("x"))
    outcome(response, 401)


def test_expired_bearer_token_is_refused(kt1, monkeypatch):
    token = _token(kt1)
    real_now = kt1.ctx.now
    monkeypatch.setattr(kt1.ctx, "now", lambda: real_now() + 3601)
    body = outcome(kt1.request("GET", MH_SEARCH, None, headers=_bearer(token), params={"_summary": "true"}), 401)
    assert body["issue"][0]["type"]["code"] == "expired"
    assert body["issue"][0]["details"].startswith("Authentication failed: Bearer token has expired at ")
    assert token["access_token"] not in body["issue"][0]["details"]  # secrets never echo back


def test_unknown_bearer_token_is_refused(kt1):
    response = kt1.request("GET", MH_SEARCH, None, headers={"Authorization": "Bearer nonsense"},
                           params={"_summary": "true"})
    assert details(response, 401) == ["Authentication failed: unknown or revoked Bearer token"]

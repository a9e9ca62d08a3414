"""Steps for KT1 single sign-on: Launch, Authorize, Token, refresh, mobile launch, Bearer access
(features/kt1/sso.feature).

Tokens and codes stay inside `Secret`s in the world; steps never pass them as
step arguments (allure-pytest-bdd would print them) and assertion messages
never quote them.
"""

from __future__ import annotations

import secrets
import time

from pytest_bdd import given, parsers, then, when

from ktbench.fhir.dstu1.constants import FHIR_BASE_PATH
from ktbench.fhir.dstu1.links import path_of
from simulators.kt1.actors.kt1_application import query_of
from steps.kt1.checks import check_empty_claim
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from steps.kt1.world import Kt1World

REDIRECT_CODES = (301, 302, 303, 307, 308)
EXPIRY_MARGIN = 0.1


# ---------------------------------------------------------------------------------------------------------------
# Launch
# ---------------------------------------------------------------------------------------------------------------
def _launch(kt1: Kt1World, mobile: bool = False) -> None:
    patient = kt1.need(kt1.patient, "a patient")
    kt1.activity_id = kt1.activity_id or f"act-{kt1.people.unique_id()}"
    kt1.sso.launch = kt1.portal.launch_module(kt1.module.app_id, patient, kt1.practitioner.url, kt1.activity_id,
                                              intent="start", mobile=mobile)


@when("the portal launches the module for the patient")
def _(kt1: Kt1World) -> None:
    _launch(kt1)


@given("the portal has launched the module for the patient")
def _(kt1: Kt1World) -> None:
    _launch(kt1)
    answer = kt1.sso.launch
    require(answer.status in REDIRECT_CODES and answer.location, "KT1-SSO-LAUNCH",
            f"Launch should redirect to the module, got {answer.brief()}")
    kt1.sso.launch_ref = kt1.module.launch_id_from(answer.location)
    require(kt1.sso.launch_ref, "KT1-SSO-LAUNCH", "the Launch redirect carries no launch id")


@then("the server redirects to the module's launch URL with the issuer and a launch id")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.sso.launch, "a launch")
    require(answer.status in REDIRECT_CODES, "KT1-SSO-LAUNCH",
            f"Launch should answer with a redirect (301/302/303/307/308), got {answer.brief()}")
    location = answer.location
    require(location, "KT1-SSO-LAUNCH", "the Launch redirect has no Location header")
    query = query_of(location)
    iss = query.get("iss", "")
    require(iss and path_of(iss).rstrip("/") == FHIR_BASE_PATH, "KT1-SSO-LAUNCH",
            f"the redirect's iss should be the server's FHIR base <server>{FHIR_BASE_PATH}, got {iss!r}")
    require(query.get("launch"), "KT1-SSO-LAUNCH", "the redirect carries no launch parameter")
    require("?" in location and location.split("?", 1)[0].startswith(("http://", "https://")), "KT1-SSO-LAUNCH",
            f"the redirect should go to the module's registered launch URL, got {location.split('?', 1)[0]!r}")


@then("the redirect also names the application and the launch the way the Python connector expects")
def _(kt1: Kt1World) -> None:
    query = query_of(kt1.need(kt1.sso.launch, "a launch").location)
    require(query.get("application_id") == kt1.module.app_id, "KT1-SSO-LAUNCH-IDS",
            f"the redirect should carry application_id={kt1.module.app_id}, got {query.get('application_id')!r}")
    require(query.get("launch_id") and query.get("launch_id") == query.get("launch"), "KT1-SSO-LAUNCH-IDS",
            "the redirect should carry launch_id equal to launch")


@then("a launch without application credentials is refused")
def _(kt1: Kt1World) -> None:
    answer = kt1.portal.call("GET", "/OAuth2/Koppeltaal/Launch", auth="none",
                             params={"client_id": kt1.module.app_id, "patient": kt1.patient.url,
                                     "user": kt1.practitioner.url, "resource": "x"})
    require(answer.status == 401, "KT1-SEC-BASIC", f"an anonymous Launch must be refused with 401, got {answer.brief()}")


# ---------------------------------------------------------------------------------------------------------------
# Authorize and Token
# ---------------------------------------------------------------------------------------------------------------
def _authorize(kt1: Kt1World, state: str | None = None) -> None:
    ref = kt1.need(kt1.sso.launch_ref, "a launch id or activation code")
    kt1.sso.state = state
    kt1.sso.authorize = kt1.module.authorize(ref, kt1.sso.redirect_uri if not kt1.sso.mobile else None, state)
    kt1.sso.code = kt1.module.authorize_code(kt1.sso.authorize)


@when("the module asks for authorization of the launch with a state value")
def _(kt1: Kt1World) -> None:
    _authorize(kt1, state=secrets.token_hex(8))


@then("the server redirects to the module's redirect URI with a code and the same state")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.sso.authorize, "an authorization request")
    require(answer.status in REDIRECT_CODES and answer.location, "KT1-SSO-AUTHORIZE",
            f"Authorize should redirect to the redirect_uri, got {answer.brief()}")
    location = answer.location
    require(location.startswith(kt1.sso.redirect_uri), "KT1-SSO-AUTHORIZE",
            f"the redirect should go to {kt1.sso.redirect_uri}, got {location.split('?', 1)[0]!r}")
    require(kt1.sso.code is not None, "KT1-SSO-AUTHORIZE", "the redirect carries no code")
    require(query_of(location).get("state") == kt1.sso.state, "KT1-SSO-STATE",
            "the redirect must return the state value the module sent, unchanged")


def _tokens(kt1: Kt1World, method: str = "GET") -> None:
    code = kt1.need(kt1.sso.code, "an authorization code")
    kt1.sso.token_attempt = kt1.module.exchange_code(code, kt1.sso.redirect_uri if not kt1.sso.mobile else None,
                                                     method=method)
    if kt1.sso.token_attempt.answer.status == 200:
        kt1.sso.tokens = kt1.sso.token_attempt


@given("the module has an authorization code for the launch")
def _(kt1: Kt1World) -> None:
    _authorize(kt1, state=secrets.token_hex(8))
    require(kt1.sso.code is not None, "KT1-SSO-AUTHORIZE",
            f"Authorize should give the module a code, got {kt1.sso.authorize.brief()}")


@when("the module exchanges the code for a token")
def _(kt1: Kt1World) -> None:
    _tokens(kt1)


@when(parsers.re(r"the module exchanges the code for a token using (?P<how>GET|a POST form)(, .*)?"))
def _(how: str, kt1: Kt1World) -> None:
    _tokens(kt1, method="GET" if how == "GET" else "POST")


@then("the token answer holds a Bearer access token, a refresh token, an integer lifetime and the scope")
def _(kt1: Kt1World) -> None:
    attempt = kt1.need(kt1.sso.token_attempt, "a token request")
    answer = attempt.answer
    require(answer.status == 200, "KT1-SSO-TOKEN", f"the token request should succeed, got {answer.brief()}")
    require(answer.is_json, "KT1-META-JSON-CONTENT-TYPE",
            f"the token answer must be application/json, got {answer.content_type!r}")
    fields = attempt.fields
    require(attempt.access_token is not None, "KT1-SSO-TOKEN", "the token answer has no access_token")
    require(attempt.refresh_token is not None, "KT1-SSO-TOKEN", "the token answer has no refresh_token")
    require(str(fields.get("token_type", "")).lower() == "bearer", "KT1-SSO-TOKEN",
            f"token_type should be Bearer, got {fields.get('token_type')!r}")
    expires = fields.get("expires_in")
    require(isinstance(expires, int) and not isinstance(expires, bool) and expires > 0, "KT1-SSO-TOKEN",
            f"expires_in must be a positive JSON integer (the connector does arithmetic with it), got {expires!r}")
    require(isinstance(fields.get("scope"), str) and "patient/" in fields["scope"].lower(), "KT1-SSO-TOKEN",
            f"scope should be the patient scope granted (patient/*.read), got {fields.get('scope')!r}")


@then("the token answer names the patient, the user, the activity and the domain of the launch")
def _(kt1: Kt1World) -> None:
    fields = kt1.need(kt1.sso.token_attempt, "a token request").fields
    expected = {"patient": kt1.patient.url, "user": kt1.practitioner.url, "resource": kt1.activity_id,
                "domain": kt1.module.creds.domain}
    for key, value in expected.items():
        require(fields.get(key) == value, "KT1-SSO-TOKEN-CONTEXT",
                f"the token answer's {key!r} should be {value!r} (from the launch), got {fields.get(key)!r}")


@given("the module has exchanged its authorization code for a token")
@given("the module has a token for the patient")
def _(kt1: Kt1World) -> None:
    if kt1.sso.launch_ref is None:
        _launch(kt1)
        kt1.sso.launch_ref = kt1.module.launch_id_from(kt1.sso.launch.location)
    _authorize(kt1, state=secrets.token_hex(8))
    require(kt1.sso.code is not None, "KT1-SSO-AUTHORIZE",
            f"Authorize should give the module a code, got {kt1.sso.authorize.brief()}")
    _tokens(kt1)
    require(kt1.sso.tokens is not None, "KT1-SSO-TOKEN",
            f"the code should buy a token, got {kt1.sso.token_attempt.answer.brief()}")


@when("the module exchanges the same code again")
def _(kt1: Kt1World) -> None:
    _tokens(kt1)


@then("the token request is refused")
def _(kt1: Kt1World, kt_requirements: ScenarioRequirements) -> None:
    answer = kt1.need(kt1.sso.token_attempt, "a token request").answer
    req = kt_requirements.pick("KT1-SSO-CODE-EXPIRY", "KT1-SSO-CODE-SINGLE-USE")
    require(400 <= answer.status < 500, req, f"the token request must be refused (4xx), got {answer.brief()}")
    require(kt1.sso.token_attempt.access_token is None, req, "the refused request still handed out an access token")


@given("the target declares a short authorization code lifetime")
def _(kt1: Kt1World) -> None:
    kt1.skip_unless_timer(kt1.options.code_seconds, "authorization_code_seconds", "authorization-code lifetime")


@when("the authorization code lifetime has passed")
def _(kt1: Kt1World) -> None:
    time.sleep(float(kt1.options.code_seconds) + EXPIRY_MARGIN)


# ---------------------------------------------------------------------------------------------------------------
# Refresh
# ---------------------------------------------------------------------------------------------------------------
@when("the module refreshes its token")
def _(kt1: Kt1World) -> None:
    tokens = kt1.need(kt1.sso.tokens, "a token")
    kt1.sso.old_tokens = tokens
    refresh = kt1.need(tokens.refresh_token, "a refresh token")
    kt1.sso.token_attempt = kt1.module.refresh(refresh)
    if kt1.sso.token_attempt.answer.status == 200:
        kt1.sso.tokens = kt1.sso.token_attempt


@then("the module gets a new access token and a new refresh token")
def _(kt1: Kt1World) -> None:
    attempt, old = kt1.sso.token_attempt, kt1.sso.old_tokens
    require(attempt.answer.status == 200, "KT1-SSO-REFRESH", f"refreshing should succeed, got {attempt.answer.brief()}")
    require(attempt.access_token is not None and attempt.access_token != old.access_token, "KT1-SSO-REFRESH",
            "refreshing should hand out a new access token")
    require(attempt.refresh_token is not None and attempt.refresh_token != old.refresh_token, "KT1-SSO-REFRESH",
            "refreshing should hand out a new refresh token (rotation)")


@then("the old access token is refused")
def _(kt1: Kt1World) -> None:
    old = kt1.need(kt1.sso.old_tokens, "the previous token")
    answer = kt1.module.with_bearer(old.access_token).search(patient_url=kt1.patient.url)
    require(answer.status == 401, "KT1-SSO-REFRESH",
            f"after a refresh the old access token must be refused with 401, got {answer.brief()}")


@then("the old refresh token is refused")
def _(kt1: Kt1World) -> None:
    old = kt1.need(kt1.sso.old_tokens, "the previous token")
    attempt = kt1.module.refresh(old.refresh_token)
    require(400 <= attempt.answer.status < 500 and attempt.access_token is None, "KT1-SSO-REFRESH",
            f"a refresh token that was already used must be refused, got {attempt.answer.brief()}")


@then("the new access token reads the patient's messages")
def _(kt1: Kt1World) -> None:
    tokens = kt1.need(kt1.sso.tokens, "a token")
    answer = kt1.module.with_bearer(tokens.access_token).search(patient_url=kt1.patient.url)
    require(answer.status == 200 and answer.resource_type == "Bundle", "KT1-SSO-BEARER-ACCESS",
            f"the new access token should be accepted for the patient's messages, got {answer.brief()}")


# ---------------------------------------------------------------------------------------------------------------
# Mobile launch
# ---------------------------------------------------------------------------------------------------------------
@when("the portal asks for a mobile activation code for the patient")
def _(kt1: Kt1World) -> None:
    _launch(kt1, mobile=True)
    kt1.sso.mobile = kt1.sso.launch


@given("the portal has asked for a mobile activation code for the patient")
def _(kt1: Kt1World) -> None:
    _launch(kt1, mobile=True)
    kt1.sso.mobile = kt1.sso.launch
    body = kt1.sso.mobile.body if isinstance(kt1.sso.mobile.body, dict) else {}
    require(kt1.sso.mobile.status == 200 and body.get("activation_code"), "KT1-SSO-MOBILE",
            f"MobileLaunch should hand out an activation code, got {kt1.sso.mobile.brief()}")
    kt1.sso.launch_ref = str(body["activation_code"])


@then("the server answers with an activation code and its lifetime in days")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.sso.mobile, "a mobile launch")
    require(answer.status == 200, "KT1-SSO-MOBILE", f"MobileLaunch should answer 200, got {answer.brief()}")
    require(answer.is_json, "KT1-META-JSON-CONTENT-TYPE",
            f"the MobileLaunch answer must be labelled application/json, got {answer.content_type!r}")
    body = answer.body if isinstance(answer.body, dict) else {}
    code = body.get("activation_code")
    require(isinstance(code, str) and code, "KT1-SSO-MOBILE", f"no activation_code in {sorted(body)}")
    require(isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, "KT1-SSO-MOBILE",
            f"expires_in (days) should be a positive integer, got {body.get('expires_in')!r}")
    kt1.sso.launch_ref = code


@when(parsers.re(r"the module asks for authorization with the activation code(?P<again> again)?"))
def _(again: str | None, kt1: Kt1World) -> None:
    _authorize(kt1)


@then("the server answers with an authorization code in JSON")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.sso.authorize, "an authorization request")
    require(answer.status == 200, "KT1-SSO-MOBILE",
            f"Authorize with an activation code should answer 200 with JSON, got {answer.brief()}")
    require(answer.is_json, "KT1-META-JSON-CONTENT-TYPE",
            f"the Authorize answer must be labelled application/json, got {answer.content_type!r}")
    require(kt1.sso.code is not None, "KT1-SSO-MOBILE", "the answer holds no authorization_code")


@then("the module exchanges it for a token naming the patient")
def _(kt1: Kt1World) -> None:
    _tokens(kt1)
    attempt = kt1.sso.token_attempt
    require(attempt.answer.status == 200 and attempt.access_token is not None, "KT1-SSO-MOBILE",
            f"the mobile authorization code should buy a token, got {attempt.answer.brief()}")
    require(attempt.fields.get("patient") == kt1.patient.url, "KT1-SSO-MOBILE",
            f"the token should name the patient of the mobile launch, got {attempt.fields.get('patient')!r}")


@given("the module has used the activation code")
def _(kt1: Kt1World) -> None:
    _authorize(kt1)
    require(kt1.sso.code is not None, "KT1-SSO-MOBILE",
            f"the activation code should give an authorization code, got {kt1.sso.authorize.brief()}")


@then("the authorization request is refused")
def _(kt1: Kt1World) -> None:
    answer = kt1.need(kt1.sso.authorize, "an authorization request")
    what, req = (("an activation code", "KT1-SSO-MOBILE-ONCE") if kt1.sso.mobile is not None
                 else ("a launch", "KT1-SSO-LAUNCH-ONCE"))
    require(400 <= answer.status < 500 and kt1.sso.code is None, req,
            f"{what} can be used once; the second use must be refused, got {answer.brief()}")


# ---------------------------------------------------------------------------------------------------------------
# Bearer access
# ---------------------------------------------------------------------------------------------------------------
def _bearer(kt1: Kt1World):
    tokens = kt1.need(kt1.sso.tokens, "a token")
    return kt1.module.with_bearer(tokens.access_token)


@when("the module searches its mailbox with the token")
def _(kt1: Kt1World) -> None:
    kt1.answers = [_bearer(kt1).search()]


@then("the search lists the patient's messages only")
def _(kt1: Kt1World) -> None:
    from simulators.kt1.actors.kt1_messages import header_summaries

    answer = kt1.answers[-1]
    require(answer.status == 200 and answer.resource_type == "Bundle", "KT1-SSO-BEARER-ACCESS",
            f"the Bearer token should be accepted for a mailbox search, got {answer.brief()}")
    listed = header_summaries(answer.body)
    mine = kt1.sent("careplan").identifier
    require(any(h.identifier == mine for h in listed), "KT1-SSO-BEARER-ACCESS",
            "the token's own patient's care plan message should be listed")
    others = sorted({h.patient or "?" for h in listed if h.patient != kt1.patient.url})
    require(not others, "KT1-SSO-BEARER-PATIENT",
            f"a token for one patient listed messages about other patients: {others[:3]}")


@then("looking up the other patient's message with the token returns nothing")
def _(kt1: Kt1World) -> None:
    other = kt1.sent("other patient's care plan")
    summary = kt1.module.find(other.identifier, patient_url=kt1.other_patient.url)
    precondition(summary is not None, "KT1-ROUTE-SUBSCRIBED",
                 "the module (Basic) should have the other patient's message")
    answer, message = _bearer(kt1).message(summary.entry_id)
    require(message is None, "KT1-SSO-BEARER-PATIENT",
            f"a token for one patient could read message {summary.entry_id} about another patient")
    require(answer.status in (200, 403, 404), "KT1-SSO-BEARER-PATIENT",
            f"the refused lookup should be an empty result or 403/404, got {answer.brief()}")


@then("claiming with the token for the other patient returns no message")
def _(kt1: Kt1World) -> None:
    answer, message = _bearer(kt1).claim(kt1.other_patient.url)
    if answer.status in (401, 403):
        return
    check_empty_claim(answer, message, "KT1-SSO-BEARER-PATIENT")


@given("the target declares a short access token lifetime")
def _(kt1: Kt1World) -> None:
    kt1.skip_unless_timer(kt1.options.token_seconds, "access_token_seconds", "access-token lifetime")


@when("the access token lifetime has passed")
def _(kt1: Kt1World) -> None:
    time.sleep(float(kt1.options.token_seconds) + EXPIRY_MARGIN)


@then("the request is refused as unauthorized because the token has expired")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.status == 401, "KT1-SSO-TOKEN-EXPIRY",
            f"an expired access token must be refused with 401, got {answer.brief()}")
    require("expired" in answer.issue_codes() or any("expired" in d.lower() for d in answer.issue_details()),
            "KT1-SSO-TOKEN-EXPIRY", f"the OperationOutcome should say the token expired, got {answer.brief()}")

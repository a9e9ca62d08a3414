"""Steps of features/kt2/tokens.feature: client assertions, the token endpoint, and access tokens at the store.

The refusals build each defective assertion exactly as a careless or hostile client would: a replayed jti,
the FHIR base as audience, an hour's lifetime, another key under the registered kid, HS256 keyed with the
client's public JWK (the algorithm-confusion attack), an unsigned `alg: none` token.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import ScenarioRequirements, require
from simulators.kt2.actors import Kt2Portal
from simulators.kt2.actors.keys import SigningKey, generate_key
from steps.kt2.checks import expect_status, json_object, oauth_error
from steps.kt2.world import Kt2World

TOKEN_REQUIREMENTS = ("KT2-TOKEN-ISSUE", "KT2-TOKEN-ALG", "KT2-TOKEN-KEY-ROTATION", "KT2-TOKEN-JTI-REPLAY",
                      "KT2-TOKEN-AUD", "KT2-TOKEN-EXP", "KT2-TOKEN-SIGNATURE", "KT2-TOKEN-KID",
                      "KT2-TOKEN-ASYMMETRIC", "KT2-TOKEN-CLIENT", "KT2-TOKEN-ASSERTION-TYPE", "KT2-TOKEN-APPROVED",
                      "KT2-ADMIN-ACCEPT", "KT2-ADMIN-STATUS-ACTIVE")
STORE_REQUIREMENTS = ("KT2-AT-REQUIRED", "KT2-AT-FORGED", "KT2-AT-NOOP", "KT2-AT-EXPIRED", "KT2-AT-DOMAIN",
                      "KT2-PERM-DOMAIN")
ELSEWHERE = "https://auth.other-voorziening.example/api/v1/other/oauth2/token"
RFC7638_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def _public_key_forms(key, kid: str, algorithm: str) -> list[bytes]:
    from simulators.kt2.actors.keys import public_jwk

    public = key.as_dict(private=False)
    members = RFC7638_MEMBERS.get(public["kty"], tuple(sorted(public)))
    canonical = {m: public[m] for m in members}
    published = public_jwk(key, kid, algorithm)
    pem = key.as_pem(private=False)
    return [json.dumps(form, separators=(",", ":"), sort_keys=True).encode() for form in (canonical, published)] + [pem]


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- asking for tokens -----------------------------------------------------------------------------------------
@when("the portal requests a token with a valid assertion")
def portal_token(kt2: Kt2World) -> None:
    assertion = kt2.portal.assertion()
    kt2.notes["assertion"] = assertion
    kt2.remember("token", kt2.portal.request_token(assertion))


@given(parsers.parse("a portal instance that signs with {alg} is registered"))
def portal_with_algorithm(kt2: Kt2World, alg: str) -> None:
    kt2.need_admin()
    declared = kt2.bench.configuration().get("token_endpoint_auth_signing_alg_values_supported") or []
    if alg not in declared:
        pytest.skip(f"the voorziening does not declare {alg} (token_endpoint_auth_signing_alg_values_supported: "
                    f"{declared})")
    kt2.notes["instance"] = kt2.bench.registered(Kt2Portal, "portal", role_name=kt2.bench.setting("portal_role"),
                                                  algorithm=alg)


@when("that instance requests a token with a valid assertion")
def instance_token(kt2: Kt2World) -> None:
    kt2.remember("token", kt2.notes["instance"].request_token())


@given("that instance has used its key for a token")
def instance_used_key(kt2: Kt2World) -> None:
    answer = kt2.notes["instance"].request_token()
    expect_status(answer, 200, "KT2-TOKEN-ISSUE", "the instance's first token (before its key rotates)")


@when("that instance publishes a new key and signs with its new kid")
def instance_rotates(kt2: Kt2World) -> None:
    instance = kt2.notes["instance"]
    instance.keys.rotate()
    kt2.remember("token", instance.request_token())


@when("the portal sends the same assertion again")
def portal_replays(kt2: Kt2World) -> None:
    first = kt2.answers["token"]
    expect_status(first, 200, "KT2-TOKEN-ISSUE", "the first use of the assertion")
    kt2.remember("token", kt2.portal.request_token(kt2.notes["assertion"]))


@when(parsers.parse("the portal requests a token with an assertion whose aud is {aud}"))
def portal_wrong_aud(kt2: Kt2World, aud: str) -> None:
    audience = kt2.bench.fhir_base if aud == "the FHIR base" else ELSEWHERE
    kt2.remember("token", kt2.portal.request_token(kt2.portal.assertion(audience)))


@when(parsers.re(r"the portal requests a token with an assertion that (?P<expiry>expired a minute ago|expires in an "
                 r"hour|has no exp)"))
def portal_bad_expiry(kt2: Kt2World, expiry: str) -> None:
    now = int(time.time())
    portal = kt2.portal
    if expiry == "expired a minute ago":
        assertion = portal.assertion(iat=now - 120, exp=now - 60)
    elif expiry == "expires in an hour":
        assertion = portal.assertion(lifetime=3600)
    else:
        assertion = portal.assertion(drop=("exp",))
    kt2.remember("token", portal.request_token(assertion))


@when("the portal requests a token with an assertion signed by a key it never published")
def portal_foreign_key(kt2: Kt2World) -> None:
    portal = kt2.portal
    current = portal.keys.current
    impostor = SigningKey(generate_key(current.algorithm), current.kid, current.algorithm)
    kt2.remember("token", portal.request_token(impostor.sign(portal.assertion_claims())))


@when(parsers.re(r"the portal requests a token with an assertion (?P<kid>naming a kid it never published|without a "
                 r"kid)"))
def portal_bad_kid(kt2: Kt2World, kid: str) -> None:
    header = {"kid": f"never-published-{uuid.uuid4().hex[:8]}"} if kid.startswith("naming") else {"kid": None}
    kt2.remember("token", kt2.portal.request_token(kt2.portal.assertion(header=header)))


@when(parsers.re(r"the portal requests a token with an assertion (?P<signed>signed HS256 with its public key as the "
                 r"secret|with alg none and no signature)"))
def portal_symmetric(kt2: Kt2World, signed: str) -> None:
    portal = kt2.portal
    claims = portal.assertion_claims()
    current = portal.keys.current
    if signed.startswith("signed HS256"):
        # the algorithm-confusion attack: HMAC keyed with what the attacker knows of the public key, in each
        # form a server might hold it (RFC 7638 members, the JWK as published, PEM); every one must be refused
        for secret in _public_key_forms(current.key, current.kid, current.algorithm):
            try:
                hmac_key = OctKey.import_key(secret)
            except (ValueError, TypeError, JoseError):   # joserfc refuses PEM-looking HMAC keys by design
                continue
            token = jwt.encode({"alg": "HS256", "kid": current.kid, "typ": "JWT"}, portal.assertion_claims(),
                               hmac_key, algorithms=["HS256"])
            answer = kt2.remember("token", portal.request_token(token))
            if answer.status_code == 200:
                return
        return
    token = f"{_b64({'alg': 'none', 'kid': current.kid, 'typ': 'JWT'})}.{_b64(claims)}."
    kt2.remember("token", portal.request_token(token))


@when("an unregistered client requests a token with a valid assertion")
def unregistered_token(kt2: Kt2World) -> None:
    app = kt2.bench.probe_application()
    app.client_id = f"ktbench-unknown-{uuid.uuid4().hex[:8]}"
    kt2.remember("token", app.request_token())


@when("the portal requests a token with an assertion whose sub is the module")
def portal_sub_module(kt2: Kt2World) -> None:
    kt2.remember("token", kt2.portal.request_token(kt2.portal.assertion(sub=kt2.module.client_id)))


@when(parsers.parse('the portal requests a token with client_assertion_type "{kind}"'))
def portal_assertion_type(kt2: Kt2World, kind: str) -> None:
    kt2.remember("token", kt2.portal.request_token(client_assertion_type=kind))


@when(parsers.parse('the portal requests a token with grant_type "{grant}"'))
def portal_grant(kt2: Kt2World, grant: str) -> None:
    kt2.remember("token", kt2.portal.request_token(grant_type=grant))


@when(parsers.re(r"the portal requests a token with (?P<assertion>no client_assertion|a client_assertion that is not "
                 r"a JWT)"))
def portal_no_assertion(kt2: Kt2World, assertion: str) -> None:
    if assertion.startswith("no "):
        kt2.remember("token", kt2.portal.request_token(client_assertion=None))
    else:
        kt2.remember("token", kt2.portal.request_token("abc.def"))


@when(parsers.parse('the module requests a token asking for scope "{scope}"'))
def module_scope(kt2: Kt2World, scope: str) -> None:
    kt2.remember("token", kt2.module.request_token(scope=scope))


# -- judging the token endpoint ------------------------------------------------------------------------------------
@then("the token endpoint issues a Bearer token with expires_in and scope")
def token_issued(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*TOKEN_REQUIREMENTS)
    answer = kt2.answers["token"]
    expect_status(answer, 200, req, "the token request")
    body = json_object(answer, req, "the token answer")
    require(isinstance(body.get("access_token"), str) and body["access_token"], req, "no access_token")
    require(str(body.get("token_type", "")).lower() == "bearer", req,
            f"token_type is {body.get('token_type')!r}, not Bearer")
    require(isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, req,
            f"expires_in is {body.get('expires_in')!r}, not a positive number of seconds")
    require(isinstance(body.get("scope"), str) and body["scope"].strip(), req, "no scope")


@then("the token endpoint refuses it as invalid_client")
def token_refused(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*TOKEN_REQUIREMENTS)
    oauth_error(kt2.answers["token"], req, (400, 401), ("invalid_client",), "the token request")


@then("the token endpoint answers 400 unsupported_grant_type")
def token_grant_refused(kt2: Kt2World) -> None:
    oauth_error(kt2.answers["token"], "KT2-TOKEN-GRANT-TYPE", (400,), ("unsupported_grant_type",), "the token request")


@then("the token endpoint refuses the request as invalid_request or invalid_client")
def token_request_refused(kt2: Kt2World) -> None:
    oauth_error(kt2.answers["token"], "KT2-TOKEN-JWT", (400, 401), ("invalid_request", "invalid_client"),
                "the token request")


def _scope_grants(scope: str, rtype: str, letter: str) -> list[str]:
    granted = []
    for entry in scope.split():
        if not entry.startswith("system/"):
            continue
        resource, _, rest = entry[len("system/"):].partition(".")
        letters = rest.split("?", 1)[0]
        if resource in (rtype, "*") and letter in letters:
            granted.append(entry)
    return granted


@then("the token's scope is the eHealth module role's, not what it asked for")
def scope_by_role(kt2: Kt2World) -> None:
    req = "KT2-TOKEN-SCOPE-ROLE"
    answer = kt2.answers["token"]
    expect_status(answer, 200, req, "the token request with a scope")
    scope = str(json_object(answer, req, "the token answer").get("scope", ""))
    require("system/*.cruds" not in scope.split(), req, f"the module was given the scope it asked for: {scope!r}")
    wrong = _scope_grants(scope, "Patient", "c")
    require(not wrong, req, f"an eHealth module may not create Patients, but its scope grants it: {wrong}")
    require(_scope_grants(scope, "Task", "u"), req, f"an eHealth module updates Tasks, but its scope {scope!r} "
                                                    "does not say so")


# -- access tokens at the store -----------------------------------------------------------------------------------
@when("an unregistered client searches Patient without a token")
def search_without_token(kt2: Kt2World) -> None:
    kt2.remember("search", kt2.bench.probe_application().fhir("GET", "Patient", authenticated=False))


@when("the portal searches Patient with its access token altered")
def search_altered(kt2: Kt2World) -> None:
    token = kt2.portal.access_token()
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    altered = f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1:]}"
    kt2.remember("search", kt2.portal.search("Patient", token=altered))


@when(parsers.parse('the portal searches Patient with the access token "{token}"'))
def search_literal(kt2: Kt2World, token: str) -> None:
    kt2.remember("search", kt2.portal.search("Patient", token=token))


@given("the portal holds an access token that has expired")
def expired_token(kt2: Kt2World) -> None:
    answer = kt2.portal.request_token()
    expect_status(answer, 200, "KT2-TOKEN-ISSUE", "the token request")
    body = json_object(answer, "KT2-TOKEN-ISSUE", "the token answer")
    lifetime = kt2.bench.setting("access_token_seconds") or body.get("expires_in")
    if not isinstance(lifetime, (int, float)) or lifetime <= 0:
        lifetime = 300
    kt2.skip_unless_waitable(float(lifetime) + 1.0, "waiting for an access token to expire")
    kt2.notes["expired"] = body["access_token"]
    kt2.notes["expires_at"] = time.monotonic() + float(lifetime)
    time.sleep(float(lifetime) + 0.2)


@when("the portal searches Patient with that expired token")
def search_expired(kt2: Kt2World) -> None:
    """Past exp the store may allow its declared leeway (clock skew); the search is repeated until the token is
    refused, the leeway is over (then the last answer is judged) or the run's waiting budget is spent (skip)."""
    leeway = float(kt2.bench.setting("clock_skew_seconds", 60))
    give_up = kt2.notes["expires_at"] + leeway + 1.0
    budget_end = kt2.notes["expires_at"] + kt2.max_wait
    while True:
        answer = kt2.remember("search", kt2.portal.search("Patient", token=kt2.notes["expired"]))
        now = time.monotonic()
        if answer.status_code == 401 or now >= give_up:
            return
        if now >= budget_end:
            pytest.skip(f"the expired token was still accepted {now - kt2.notes['expires_at']:.0f} s after exp, "
                        f"within the {leeway:.0f} s leeway the target may give; declare "
                        f"{kt2.setting_key('clock_skew_seconds')} or run with --slow")
        time.sleep(0.5)


@when("the other domain's portal searches Patient at this domain with its own token")
def search_other_domain(kt2: Kt2World) -> None:
    other = kt2.app("other domain's portal")
    kt2.remember("search", other.fhir("GET", kt2.bench.fhir_base + "/Patient", token=other.access_token()))


@then("the store answers 401 with WWW-Authenticate Bearer")
def store_401(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*STORE_REQUIREMENTS)
    answer = kt2.answers["search"]
    expect_status(answer, 401, req, "the search")
    challenge = answer.headers.get("www-authenticate", "")
    require(challenge.lower().startswith("bearer"), req,
            f"a 401 must say how to authenticate: WWW-Authenticate is {challenge!r}, not Bearer ...")

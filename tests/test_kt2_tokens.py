"""SMART backend services at the token endpoint, the domain JWKS, smart-configuration and Bearer checks
(KT2-TOKEN-*, KT2-AT-*, KT2-DISC-SMART-*, KT2-DISC-JWKS), with real signed assertions from real keys."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from kt2_support import (  # noqa: F401
    ALPHA,
    APPS,
    BETA,
    JWT_BEARER,
    TestApp,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
)

from simulators.kt2 import urls
from simulators.kt2.scopes import ScopeSet


def _error(answer: httpx.Response, status: int, error: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error and body["error_description"], body
    assert answer.headers["cache-control"] == "no-store"
    return body["error_description"]


def test_client_credentials_issues_a_signed_access_token(kt2):
    answer = kt2.request_token("alpha-portal", scope="system/*.cruds")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert answer.headers["cache-control"] == "no-store"
    jwks = kt2.http.get(urls.jwks_url(kt2.url, ALPHA)).json()
    token = jwt.decode(body["access_token"], KeySet.import_key_set(jwks), algorithms=["RS512"])
    claims = token.claims
    assert token.header["alg"] == "RS512" and token.header["kid"] == jwks["keys"][0]["kid"]
    assert claims["iss"] == urls.oauth_base(kt2.url, ALPHA)
    assert claims["aud"] == urls.fhir_base(kt2.url, ALPHA)
    assert claims["sub"] == claims["azp"] == "alpha-portal"
    assert claims["type"] == "access" and claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert claims["scope"] == body["scope"]
    assert "system/Patient.cruds" in body["scope"].split()            # the role decides, not the request
    assert "system/Subscription.cruds?resource-origin=Device/alpha-portal" in body["scope"].split()
    assert not any(t.startswith("system/*") for t in body["scope"].split())


def test_scope_follows_the_role(kt2):
    module = kt2.request_token("alpha-module").json()["scope"].split()
    assert "system/Task.rus" in module and "system/Task.cd?resource-origin=Device/alpha-module" in module
    assert "system/Patient.rs" in module
    client_portal = ScopeSet(kt2.request_token("alpha-client-portal").json()["scope"])
    assert client_portal.allows("Patient", "u", None) and not client_portal.any("Patient", "c")


@pytest.mark.parametrize("alg", ["RS384", "RS512", "RS256"])
def test_rsa_algorithms_are_accepted(kt2, alg):
    app = APPS["alpha-any-alg"]
    now = int(time.time())
    assertion = app.sign({"iss": app.client_id, "sub": app.client_id, "aud": kt2.token_url(), "exp": now + 60,
                          "jti": f"alg-{alg}-{now}-{time.monotonic_ns()}"}, alg=alg)
    assert kt2.request_token("alpha-any-alg", assertion).status_code == 200


def test_algorithm_must_fit_the_published_key(kt2):
    app = APPS["alpha-portal"]   # its JWK says alg RS512
    now = int(time.time())
    assertion = app.sign({"iss": app.client_id, "sub": app.client_id, "aud": kt2.token_url(), "exp": now + 60,
                          "jti": f"fit-{time.monotonic_ns()}"}, alg="RS384")
    _error(kt2.request_token("alpha-portal", assertion), 401, "invalid_client")


def test_es384_client_gets_a_token(kt2):
    assert kt2.request_token("alpha-es").status_code == 200


def test_inline_jwks_instance_gets_a_token(kt2):
    assert kt2.request_token("alpha-inline").status_code == 200


def test_hs256_and_none_are_refused(kt2):
    app = APPS["alpha-portal"]
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": kt2.token_url(), "exp": now + 60, "jti": "hs"}
    secret = json.dumps(app.jwk(), sort_keys=True).encode()
    oct_key = OctKey.import_key({"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()})
    forged = jwt.encode({"alg": "HS256", "kid": app.kid}, claims, oct_key, algorithms=["HS256"])
    assert "asymmetric" in _error(kt2.request_token("alpha-portal", forged), 401, "invalid_client")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": app.kid}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({**claims, "jti": "none"}).encode()).rstrip(b"=").decode()
    _error(kt2.request_token("alpha-portal", f"{header}.{payload}."), 401, "invalid_client")


def test_ps256_is_not_in_the_configured_algorithms(kt2):
    app = APPS["alpha-any-alg"]
    now = int(time.time())
    assertion = app.sign({"iss": app.client_id, "sub": app.client_id, "aud": kt2.token_url(), "exp": now + 60,
                          "jti": f"ps-{now}"}, alg="PS256")
    assert "not supported" in _error(kt2.request_token("alpha-any-alg", assertion), 401, "invalid_client")


@pytest.mark.parametrize("mutation, expected", [
    (lambda a, url: a.assertion(url, drop=("jti",)), "jti"),
    (lambda a, url: a.assertion(url, drop=("exp",)), "exp"),
    (lambda a, url: a.assertion(url, drop=("iss",)), "iss"),
    (lambda a, url: a.assertion(url, sub="someone-else"), "sub"),
    (lambda a, url: a.assertion(url + "/other"), "aud"),
    (lambda a, url: a.assertion(url.replace("/token", "/introspect")), "aud"),
    (lambda a, url: a.assertion(url, lifetime=-120), "expired"),
    (lambda a, url: a.assertion(url, lifetime=900), "ahead"),
    (lambda a, url: a.assertion(url, iat=int(time.time()) + 600), "future"),
    (lambda a, url: a.assertion(url, exp="soon"), "exp"),
    (lambda a, url: a.assertion(url, iat=True), "iat"),
    (lambda a, url: a.assertion(url, jti=12), "jti"),
    (lambda a, url: a.assertion(url, nbf=int(time.time()) + 600), "nbf"),
], ids=["no-jti", "no-exp", "no-iss", "sub-differs", "aud-other", "aud-introspection", "expired", "too-long",
        "iat-future", "exp-string", "iat-bool", "jti-number", "nbf-future"])
def test_bad_claims_are_401_invalid_client(kt2, mutation, expected):
    app = APPS["alpha-portal"]
    description = _error(kt2.request_token("alpha-portal", mutation(app, kt2.token_url())), 401, "invalid_client")
    assert expected in description


def test_iat_is_optional_and_aud_may_be_a_list(kt2):
    app = APPS["alpha-portal"]
    assert kt2.request_token("alpha-portal", app.assertion(kt2.token_url(), drop=("iat",))).status_code == 200
    assert kt2.request_token("alpha-portal", app.assertion([kt2.token_url(), "x"])).status_code == 200


def test_replayed_jti_is_refused(kt2):
    assertion = APPS["alpha-portal"].assertion(kt2.token_url())
    assert kt2.request_token("alpha-portal", assertion).status_code == 200
    assert "replay" in _error(kt2.request_token("alpha-portal", assertion), 401, "invalid_client")


def test_unknown_client_and_instances_not_active_get_no_token(kt2):
    stranger = TestApp("nobody", ALPHA, "Behandelaarsportaal", "x")
    answer = kt2.http.post(kt2.token_url(), data={"grant_type": "client_credentials", "client_assertion_type":
                                                  JWT_BEARER, "client_assertion": stranger.assertion(kt2.token_url())})
    assert "not registered" in _error(answer, 401, "invalid_client")
    for name, status in (("alpha-maintenance", "maintenance"), ("alpha-closed", "closed")):
        description = _error(kt2.request_token(name), 401, "invalid_client")
        assert f"has status {status!r}" in description and "only active instances get tokens" in description


def test_client_of_another_domain_is_unknown_here(kt2):
    beta = APPS["beta-portal"]
    answer = kt2.http.post(kt2.token_url(ALPHA), data={"grant_type": "client_credentials", "client_assertion_type":
                                                       JWT_BEARER, "client_assertion": beta.assertion(kt2.token_url())})
    _error(answer, 401, "invalid_client")


def test_wrong_key_and_missing_kid_are_refused(kt2):
    app = APPS["alpha-portal"]
    other = RSAKey.generate_key(2048)
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": kt2.token_url(), "exp": now + 60, "jti": "wk"}
    assert "does not verify" in _error(kt2.request_token("alpha-portal", app.sign(claims, key=other)), 401,
                                       "invalid_client")
    no_kid = jwt.encode({"alg": "RS512"}, {**claims, "jti": "nokid"}, app.key, algorithms=["RS512"])
    assert "kid" in _error(kt2.request_token("alpha-portal", no_kid), 401, "invalid_client")
    ec_claims = {**claims, "jti": "ec-with-rs"}
    assert kt2.request_token("alpha-portal", app.sign(ec_claims, alg="ES384", key=ECKey.generate_key("P-384"))) \
        .status_code == 401


def test_unknown_kid_is_refetched_once_then_refused(kt2):
    app = APPS["alpha-epd"]
    kt2.request_token("alpha-epd")   # the JWKS is cached now
    before = kt2.jwks.hits.get("alpha-epd", 0)
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS512", "kid": "unknown-kid"}, {"iss": app.client_id, "sub": app.client_id,
                                                                   "aud": kt2.token_url(), "exp": now + 60,
                                                                   "jti": f"uk-{now}"}, app.key, algorithms=["RS512"])
    assert "kid" in _error(kt2.request_token("alpha-epd", assertion), 401, "invalid_client")
    assert kt2.jwks.hits["alpha-epd"] == before + 1


def test_key_rotation_is_picked_up_by_the_refetch(make_kt2):
    rotating = TestApp("alpha-rotating", ALPHA, "Behandelaarsportaal", "ktbench-rotating")
    with make_kt2(extra_apps=[rotating]) as k:
        k.jwks.published[rotating.client_id] = [rotating.jwk()]
        assert k.http.post(k.token_url(), data=_form(rotating.assertion(k.token_url()))).status_code == 200
        new_key = RSAKey.generate_key(2048)
        k.jwks.published[rotating.client_id] = [{**new_key.as_dict(private=False), "kid": "rotated", "alg": "RS512"}]
        now = int(time.time())
        assertion = jwt.encode({"alg": "RS512", "kid": "rotated"}, {"iss": rotating.client_id, "sub": rotating.client_id,
                                                                   "aud": k.token_url(), "exp": now + 60, "jti": "r1"},
                               new_key, algorithms=["RS512"])
        assert k.http.post(k.token_url(), data=_form(assertion)).status_code == 200


def test_jwks_cache_honours_max_age(kt2):
    kt2.request_token("alpha-client-portal")
    hits = kt2.jwks.hits["alpha-client-portal"]
    kt2.request_token("alpha-client-portal")
    assert kt2.jwks.hits["alpha-client-portal"] == hits


def _form(assertion: str, **extra: str) -> dict:
    return {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": assertion,
            **extra}


def test_request_shape_errors(kt2):
    url = kt2.token_url()
    assertion = APPS["alpha-portal"].assertion(url)
    _error(kt2.http.post(url, json=_form(assertion)), 400, "invalid_request")
    _error(kt2.http.post(url, data={"client_assertion_type": JWT_BEARER, "client_assertion": assertion}), 400,
           "invalid_request")
    _error(kt2.http.post(url, data=_form(assertion, grant_type="password")), 400, "unsupported_grant_type")
    _error(kt2.http.post(url, data={"grant_type": "client_credentials"}), 400, "invalid_request")
    _error(kt2.http.post(url, data=_form(assertion, client_assertion_type="urn:other")), 401, "invalid_client")
    for garbage in ("abc", "a.b.c", "x" * 20000, "e30.e30.", "!!.??.**", "W10.W10.W10"):
        _error(kt2.http.post(url, data=_form(garbage)), 401, "invalid_client")
    wrong_method = kt2.http.get(url)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "invalid_request"
    assert wrong_method.headers["allow"] == "POST"
    unknown = kt2.http.get(urls.oauth_base(kt2.url, ALPHA) + "/nothing-here")
    assert unknown.status_code == 404 and unknown.json()["error"] == "invalid_request"
    assert kt2.http.delete(urls.jwks_url(kt2.url, ALPHA)).json()["error"] == "invalid_request"


def test_token_endpoint_of_unknown_domain_is_404(kt2):
    answer = kt2.http.post(urls.token_url(kt2.url, "nope"), data={"grant_type": "client_credentials"})
    assert answer.status_code == 404 and answer.json()["error"] == "invalid_request"


def test_jwks_publishes_public_keys_with_thumbprint_kids(kt2):
    answer = kt2.http.get(urls.jwks_url(kt2.url, ALPHA))
    assert answer.status_code == 200 and answer.headers["cache-control"] == "public, max-age=30"
    keys = answer.json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["use"] == "sig" and key["alg"] == "RS512" and "d" not in key and "p" not in key
    assert RSAKey.import_key(key).thumbprint() == key["kid"]
    beta = kt2.http.get(urls.jwks_url(kt2.url, BETA)).json()["keys"][0]
    assert beta["kid"] != key["kid"]


def test_smart_configuration_is_json_whatever_accept_says(kt2):
    answer = kt2.http.get(f"{kt2.base()}/.well-known/smart-configuration", headers={"Accept": "text/html"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    config = answer.json()
    assert config["issuer"] == urls.oauth_base(kt2.url, ALPHA)
    assert config["token_endpoint"] == kt2.token_url()
    assert config["jwks_uri"] == urls.jwks_url(kt2.url, ALPHA)
    assert config["authorization_endpoint"] == urls.authorize_url(kt2.url, ALPHA)
    assert config["introspection_endpoint"] == urls.introspection_url(kt2.url, ALPHA)
    assert config["management_endpoint"] == urls.management_url(kt2.url)
    assert config["grant_types_supported"] == ["authorization_code", "client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"RS384", "RS512", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert config["scopes_supported"] == ["openid", "launch", "fhirUser", "system/*.cruds",
                                          "system/*.cruds?resource-origin="]
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert set(config["capabilities"]) == {"launch-ehr", "authorize-post", "client-confidential-asymmetric",
                                           "sso-openid-connect", "context-ehr-hti", "permission-v2"}
    assert "registration_endpoint" not in config and "revocation_endpoint" not in config


def test_bearer_checks_on_the_fhir_store(kt2):
    url = f"{kt2.base()}/Patient"
    missing = kt2.http.get(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["resourceType"] == "OperationOutcome"
    for header in ("Bearer", "Basic abc", "Bearer garbage", "Bearer a.b.c", "Bearer NOOP"):
        answer = kt2.http.get(url, headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert "bearer" in answer.headers["www-authenticate"].lower()
    token = kt2.token("alpha-portal")
    header, payload, signature = token.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["scope"] = "system/*.cruds"
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode(),
                       signature])
    assert kt2.http.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert kt2.http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_of_one_domain_is_refused_at_another(kt2):
    token = kt2.token("alpha-portal")
    answer = kt2.http.get(f"{kt2.base(BETA)}/Patient", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_expired_access_token_is_401(make_kt2):
    with make_kt2() as k:
        token = k.token("alpha-portal")
        url = f"{k.base()}/Patient"
        assert k.http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        k.ctx.clock.offset = 301 + k.ctx.settings.clock_skew_seconds
        answer = k.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401 and "expired" in answer.json()["issue"][0]["diagnostics"]


def test_signing_keys_survive_a_restart_of_a_file_backed_server(make_kt2, tmp_path):
    db = str(tmp_path / "kt2.sqlite3")
    with make_kt2(db=db) as first:
        token = first.token("alpha-portal")
        kid = first.http.get(urls.jwks_url(first.url, ALPHA)).json()["keys"][0]["kid"]
        created = first.create("alpha-portal", patient())
    with make_kt2(db=db) as second:
        assert second.http.get(urls.jwks_url(second.url, ALPHA)).json()["keys"][0]["kid"] == kid
        assert second.get("alpha-portal", f"Patient/{created['id']}").status_code == 200
        issued = jwt.decode(token, second.services.keys.keyset(ALPHA), algorithms=["RS512"])
        assert issued.claims["azp"] == "alpha-portal"


def test_jwks_url_must_be_https_without_the_loopback_switch(make_kt2):
    with make_kt2(settings={"allow_loopback_http_jwks": False}) as k:
        answer = k.request_token("alpha-epd")
        assert answer.status_code == 401 and "not https" in answer.json()["error_description"]
        assert k.request_token("alpha-inline").status_code == 200   # an inline JWKS needs no fetch


def test_unreachable_jwks_is_a_clear_refusal(make_kt2):
    gone = TestApp("alpha-gone", ALPHA, "Behandelaarsportaal", "ktbench-gone")
    with make_kt2(extra_apps=[gone]) as k:
        k.jwks.published.pop(gone.client_id, None)
        form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                "client_assertion": gone.assertion(k.token_url())}
        answer = k.http.post(k.token_url(), data=form)
        assert answer.status_code == 401 and "HTTP 404" in answer.json()["error_description"]

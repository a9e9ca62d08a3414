"""ktbench.core.redact: every kind of secret the bench can see is blanked before it reaches an event."""

from __future__ import annotations

import json

import pytest

from ktbench.core.redact import (
    REDACTED,
    SENSITIVE_FIELDS,
    Redactor,
    redact_body,
    redact_headers,
    redact_pem,
    redact_text,
    redact_url,
)

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAx1secretkeymaterialAAAA\n"
    "Zm9vYmFyYmF6c2VjcmV0\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize("header", ["Authorization", "authorization", "Proxy-Authorization"])
def test_authorization_headers_keep_scheme_only(header: str) -> None:
    (name, value), = redact_headers([(header, "Basic a3RiZW5jaC1wb3J0YWw6cG9ydGFsLXNlY3JldA==")])
    assert name == header
    assert value == f"Basic {REDACTED}"
    assert "a3RiZW5j" not in value


@pytest.mark.parametrize("header", ["Cookie", "Set-Cookie", "X-Koppeltaal-Secret", "x-koppeltaal-secret"])
def test_cookie_and_koppeltaal_secret_headers_are_blanked(header: str) -> None:
    (_, value), = redact_headers([(header, "session=abc123; Path=/")])
    assert value == REDACTED


def test_other_headers_are_kept() -> None:
    headers = redact_headers([("Content-Type", "application/json; charset=utf-8"), ("Accept", "*/*")])
    assert headers == (("Content-Type", "application/json; charset=utf-8"), ("Accept", "*/*"))


def test_bearer_token_is_learned_and_scrubbed_elsewhere() -> None:
    r = Redactor()
    assert r.header_value("Authorization", "Bearer tok-0123456789") == f"Bearer {REDACTED}"
    assert r.text("echo: tok-0123456789 seen") == f"echo: {REDACTED} seen"


@pytest.mark.parametrize("field", sorted(SENSITIVE_FIELDS))
def test_query_string_fields_are_redacted(field: str) -> None:
    url = redact_url(f"https://srv.example/cb?state=xyz&{field}=S3cr3tValue&scope=patient%2F*.read")
    assert "S3cr3tValue" not in url
    assert f"{field}=***" in url
    assert "state=xyz" in url  # harmless parameters survive


def test_url_userinfo_password_and_fragment_token() -> None:
    assert redact_url("https://user:hunter22@srv.example/x") == f"https://user:{REDACTED}@srv.example/x"
    url = redact_url("https://app.example/cb#access_token=tok-abcdef&token_type=bearer")
    assert "tok-abcdef" not in url and "token_type=bearer" in url


@pytest.mark.parametrize("field", sorted(SENSITIVE_FIELDS - {"code"}))
def test_json_body_fields_are_redacted(field: str) -> None:
    body = json.dumps({"outer": {field: "S3cr3tValue", "keep": "visible"}, "list": [{field: "S3cr3tValue2"}]})
    out = redact_body(body.encode(), "application/json")
    assert "S3cr3tValue" not in out
    data = json.loads(out)
    assert data["outer"] == {field: REDACTED, "keep": "visible"}
    assert data["list"] == [{field: REDACTED}]


def test_json_code_is_redacted_only_in_oauth_shaped_objects() -> None:
    fhir = {"resourceType": "Other", "code": {"coding": [{"system": "urn:x", "code": "ActivityDefinition"}]}}
    assert json.loads(redact_body(json.dumps(fhir), "application/json+fhir")) == fhir
    oauth = {"grant_type": "authorization_code", "code": "AUTHCODE-123", "redirect_uri": "https://x"}
    assert json.loads(redact_body(json.dumps(oauth), "application/json"))["code"] == REDACTED


@pytest.mark.parametrize("field", sorted(SENSITIVE_FIELDS))
def test_form_body_fields_are_redacted(field: str) -> None:
    body = f"grant_type=authorization_code&{field}=S3cr3tValue&client_id=ktbench-module"
    out = redact_body(body.encode(), "application/x-www-form-urlencoded")
    assert "S3cr3tValue" not in out
    assert "client_id=ktbench-module" in out


def test_pem_private_keys_anywhere() -> None:
    text = f"config:\n{PEM}\nafter"
    out = redact_pem(text)
    assert "secretkeymaterial" not in out and "Zm9vYmFy" not in out
    assert out.startswith("config:\n-----BEGIN RSA PRIVATE KEY-----***") and out.endswith("after")
    # inside JSON strings, PKCS#8 and encrypted flavours, and a truncated key without END line
    body = json.dumps({"jwk_pem": PEM.replace("RSA ", "")})
    assert "secretkeymaterial" not in redact_body(body, "application/json")
    assert "secretkeymaterial" not in redact_text(PEM.replace("RSA ", "ENCRYPTED "))
    assert "secretkeymaterial" not in redact_text(PEM.split("-----END")[0])
    # public keys are not secrets
    public = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----"
    assert redact_text(public) == public


def test_malformed_json_and_free_text_fall_back_to_patterns() -> None:
    broken = '{"access_token": "tok-in-broken-json", "x": '
    assert "tok-in-broken-json" not in redact_body(broken, "application/json")
    assert "pw-123456" not in redact_text("login failed for password=pw-123456 user=x")
    assert "AUTHCODE" not in redact_text("Location: https://app/cb?code=AUTHCODE&state=1")


def test_learned_token_values_are_scrubbed_later_in_any_form() -> None:
    r = Redactor()
    r.body(json.dumps({"access_token": "tok/with+special=chars", "token_type": "Bearer"}), "application/json")
    assert "tok/with+special=chars" in r.known_secrets
    assert REDACTED in r.text("GET /x/tok/with+special=chars")
    assert "tok%2Fwith" not in r.url("https://srv/cb?session=tok%2Fwith%2Bspecial%3Dchars")


def test_known_secrets_are_scrubbed_but_short_values_are_ignored() -> None:
    r = Redactor(["portal-secret", "ab"])
    assert r.text('{"publisher": "portal-secret"}') == '{"publisher": "***"}'
    assert r.text("ab cd") == "ab cd"


def test_location_header_query_is_redacted() -> None:
    (_, value), = redact_headers([("Location", "https://app.example/cb?code=AUTHCODE-1&state=s")])
    assert "AUTHCODE-1" not in value and "state=s" in value


def test_binary_body_is_not_dumped() -> None:
    assert redact_body(b"\xff\xfe\x00binary", "application/octet-stream") == "<9 bytes of binary content>"


def test_fhir_search_code_is_neither_redacted_nor_learned() -> None:
    r = Redactor()
    url = "http://kt1.test/FHIR/Koppeltaal/Other/_search?code=ActivityDefinition&includearchived=yes"
    assert r.url(url) == url
    link = '{"link": [{"rel": "next", "href": "' + url + '&page=2"}]}'
    assert "code=ActivityDefinition" in r.body(link, "application/json")
    assert r.known_secrets == frozenset()
    assert r.text("ActivityDefinition") == "ActivityDefinition"


def test_oauth_codes_are_redacted_in_their_context() -> None:
    r = Redactor()
    assert "AUTHCODE-1234" not in r.url("https://app.example/koppeltaalauth?code=AUTHCODE-1234&state=s1")
    assert "AUTHCODE-5678" not in r.url("https://kt1.test/OAuth2/Koppeltaal/Token?code=AUTHCODE-5678")
    form = "grant_type=authorization_code&code=AUTHCODE-9012&redirect_uri=https%3A%2F%2Fx"
    assert "AUTHCODE-9012" not in r.body(form, "application/x-www-form-urlencoded")
    html = '<a href="https://app/cb?code=AUTHCODE-3456&amp;state=xyz">continue</a>'
    out = r.text(html)
    assert "AUTHCODE-3456" not in out and "&amp;state=xyz" in out
    assert {"AUTHCODE-1234", "AUTHCODE-5678", "AUTHCODE-9012", "AUTHCODE-3456"} <= r.known_secrets
    # short values seen in traffic are not learned: they would blank ordinary words everywhere
    r.url("https://app/cb?code=abc&state=s")
    assert "abc" not in r.known_secrets


def test_kt2_introspection_pkce_and_admin_session_fields_are_redacted() -> None:
    redactor = Redactor()
    form = redactor.body(b"token=eyJhbGciOiJSUzUxMiJ9.hti.sig&client_assertion_type=jwt&code_verifier=verifier-1234567",
                         "application/x-www-form-urlencoded")
    assert "eyJhbGciOiJSUzUxMiJ9" not in form and "verifier-1234567" not in form
    answer = redactor.body(json.dumps({"session": "admin-session-abcdef123", "token_type": "Bearer"}),
                           "application/json")
    assert "admin-session-abcdef123" not in answer and "Bearer" in answer
    # the session was learned: its echo in an Authorization header or a log line is scrubbed too
    assert "admin-session-abcdef123" not in redactor.text("Authorization: Bearer admin-session-abcdef123")


def test_private_members_of_any_jwk_are_blanked_but_public_ones_kept() -> None:
    leaked = {"keys": [{"kty": "RSA", "kid": "k1", "n": "public-modulus", "e": "AQAB", "d": "private-exponent-xyz",
                        "p": "prime-p-abcdefgh", "q": "prime-q-abcdefgh", "dp": "x" * 20, "dq": "y" * 20,
                        "qi": "z" * 20},
                       {"kty": "oct", "kid": "h1", "k": "symmetric-secret-123"}]}
    text = Redactor().body(json.dumps(leaked), "application/json")
    for secret in ("private-exponent-xyz", "prime-p-abcdefgh", "prime-q-abcdefgh", "x" * 20, "symmetric-secret-123"):
        assert secret not in text
    assert "public-modulus" in text and '"kid": "k1"' in text
    # a FHIR resource with a "d" element and no "kty" is left alone
    assert "keep-me" in Redactor().body(json.dumps({"resourceType": "Basic", "d": "keep-me"}), "application/json")

"""An independently written SMART backend-services client: authlib's httpx OAuth2 client with PrivateKeyJWT.

It discovers the token endpoint from the smart-configuration, gets a token with client_credentials and
private_key_jwt, and works with the FHIR store.  authlib signs assertions valid for 3600 s by default; KT2
allows at most 5 minutes (TOP-KT-021), so the voorziening refuses that default (shown below) and the client
is configured for 240 s — the spec wins where the library disagrees (README "Independent clients").
"""

from __future__ import annotations

import json

import pytest
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign

from kt2_support import APPS, FHIR_JSON, jwks_host, kt2, no_unhandled_errors, patient  # noqa: F401


class FiveMinuteAssertion(PrivateKeyJWT):
    """authlib's PrivateKeyJWT with a KT2-sized lifetime."""

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    claims=self.claims, header=self.headers, alg=self.alg, expires_in=240)


def _client(kt2, name: str, auth_class=FiveMinuteAssertion) -> tuple[OAuth2Client, str]:
    app = APPS[name]
    config = kt2.http.get(f"{kt2.base()}/.well-known/smart-configuration").json()
    token_url = config["token_endpoint"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    client = OAuth2Client(client_id=app.client_id, client_secret=app.key,
                          token_endpoint_auth_method=auth_class(token_url, alg="RS512", headers={"kid": app.kid}),
                          timeout=15)
    return client, token_url


def test_authlib_backend_services_client_gets_a_token_and_uses_the_store(kt2):
    client, token_url = _client(kt2, "alpha-epd")
    with client:
        token = client.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["expires_in"] == 300
        assert "system/Patient.cruds" in token["scope"].split()
        created = client.post(f"{kt2.base()}/Patient", content=json.dumps(patient()),
                              headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
        assert created.status_code == 201, created.text
        read = client.get(f"{kt2.base()}/Patient/{created.json()['id']}", headers={"Accept": FHIR_JSON})
        assert read.status_code == 200 and read.json()["id"] == created.json()["id"]
        again = client.fetch_token(token_url, grant_type="client_credentials")   # a new jti each time
        assert again["access_token"] != token["access_token"]
        search = client.get(f"{kt2.base()}/Task", params={"_count": "1"})
        assert search.status_code == 200 and search.json()["type"] == "searchset"
        forbidden = client.post(f"{kt2.base()}/Task", content=b"{}", headers={"Content-Type": FHIR_JSON})
        assert forbidden.status_code == 403   # the EPD role has Task R only


def test_authlib_default_one_hour_assertion_is_refused(kt2):
    client, token_url = _client(kt2, "alpha-epd", PrivateKeyJWT)
    with client, pytest.raises(OAuthError) as refused:
        client.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client" and "300 s" in refused.value.description

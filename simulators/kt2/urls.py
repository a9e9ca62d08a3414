"""The voorziening's URL layout, in one place, so every minted URL follows `--public-base`.

Close to the real voorziening (TOP-KT-018): one FHIR base and one set of OAuth endpoints per domain,
the domain admin application once for all domains (seed 001 §3.1: `/kt2/mgmt/...`).

    {root}/api/v1/{domain}/fhir/r4                          FHIR base (`iss` of launches, `aud` of tokens)
    {root}/api/v1/{domain}/fhir/r4/metadata                 CapabilityStatement (no token)
    {root}/api/v1/{domain}/fhir/r4/.well-known/smart-configuration
    {root}/api/v1/{domain}/oauth2/token | authorize | introspect | jwks
    {root}/api/v1/{domain}/idp/{idp}/...                     simulated identity providers
    {root}/kt2/mgmt/                                         domain admin web page
    {root}/kt2/mgmt/api/...                                  domain admin JSON API
"""

from __future__ import annotations

API = "/api/v1"
MANAGEMENT = "/kt2/mgmt"


def fhir_base(root: str, domain: str) -> str:
    return f"{root}{API}/{domain}/fhir/r4"


def oauth_base(root: str, domain: str) -> str:
    """Also the `iss` of every token the domain's authorisation server signs."""
    return f"{root}{API}/{domain}/oauth2"


def token_url(root: str, domain: str) -> str:
    return oauth_base(root, domain) + "/token"


def authorize_url(root: str, domain: str) -> str:
    return oauth_base(root, domain) + "/authorize"


def introspection_url(root: str, domain: str) -> str:
    return oauth_base(root, domain) + "/introspect"


def jwks_url(root: str, domain: str) -> str:
    return oauth_base(root, domain) + "/jwks"


def idp_base(root: str, domain: str, idp: str) -> str:
    return f"{root}{API}/{domain}/idp/{idp}"


def management_url(root: str) -> str:
    return f"{root}{MANAGEMENT}/"


def management_api(root: str) -> str:
    return f"{root}{MANAGEMENT}/api"

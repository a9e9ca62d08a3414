"""Steps of features/kt2/discovery.feature: the smart-configuration, the CapabilityStatement, the JWKS."""

from __future__ import annotations

from urllib.parse import urlsplit

from pytest_bdd import parsers, then, when

from ktbench.core.requirements import require
from steps.kt2.checks import describe, expect_status, json_object
from steps.kt2.world import Kt2World

SMART = "KT2-DISC-SMART-CONFIG"
SMART_JSON = "KT2-DISC-SMART-JSON"
CAPABILITY = "KT2-DISC-CAPABILITY"
OAUTH_URIS = "KT2-DISC-OAUTH-URIS"
JWKS = "KT2-DISC-JWKS"
ENDPOINT_KEYS = ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "introspection_endpoint",
                 "management_endpoint")
REQUIRED_VALUES = {
    "grant_types_supported": ("authorization_code", "client_credentials"),
    "token_endpoint_auth_methods_supported": ("private_key_jwt",),
    "response_types_supported": ("code",),
    "code_challenge_methods_supported": ("S256",),
    "capabilities": ("launch-ehr", "authorize-post", "client-confidential-asymmetric", "sso-openid-connect",
                     "context-ehr-hti", "permission-v2"),
    "scopes_supported": ("openid", "launch", "fhirUser"),
}
OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _smart(kt2: Kt2World) -> dict:
    return json_object(kt2.answers["smart-configuration"], SMART, "the smart-configuration")


@when("an unregistered client reads the smart-configuration")
def read_smart(kt2: Kt2World) -> None:
    kt2.remember("smart-configuration", kt2.bench.probe_application().discover())


@when(parsers.parse('an unregistered client reads the smart-configuration accepting "{accept}"'))
def read_smart_accepting(kt2: Kt2World, accept: str) -> None:
    url = kt2.bench.fhir_base + "/.well-known/smart-configuration"
    kt2.remember("smart-configuration", kt2.bench.http.request("GET", url, headers={"Accept": accept},
                                                               role="anonymous"))


@then("the smart-configuration is answered without a token")
def smart_public(kt2: Kt2World) -> None:
    expect_status(kt2.answers["smart-configuration"], 200, SMART, "GET .well-known/smart-configuration without a token")


@then("the smart-configuration names every KT2 endpoint as an absolute URL")
def smart_endpoints(kt2: Kt2World) -> None:
    body = _smart(kt2)
    for key in ENDPOINT_KEYS:
        value = body.get(key)
        require(isinstance(value, str) and urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc,
                SMART, f"{key} must be an absolute URL, got {value!r}")


@then("the smart-configuration lists the KT2 grant types, methods and capabilities")
def smart_values(kt2: Kt2World) -> None:
    body = _smart(kt2)
    for key, wanted in REQUIRED_VALUES.items():
        listed = body.get(key)
        require(isinstance(listed, list), SMART, f"{key} must be a list, got {listed!r}")
        missing = [w for w in wanted if w not in listed]
        require(not missing, SMART, f"{key} lacks {missing} (it lists {listed})")
    scopes = " ".join(str(s) for s in body.get("scopes_supported") or [])
    require("system/" in scopes, SMART, f"scopes_supported names no system/ scope: {scopes!r}")


@then("the smart-configuration advertises no registration or revocation endpoint")
def smart_forbidden(kt2: Kt2World) -> None:
    body = _smart(kt2)
    present = [k for k in ("registration_endpoint", "revocation_endpoint") if k in body]
    require(not present, SMART, f"KT2 forbids {present} in the smart-configuration")


@then("the smart-configuration is served as application/json")
def smart_is_json(kt2: Kt2World) -> None:
    answer = kt2.answers["smart-configuration"]
    expect_status(answer, 200, SMART_JSON, "the smart-configuration")
    content_type = answer.headers.get("content-type", "")
    require(content_type.lower().startswith("application/json"), SMART_JSON,
            f"asked with Accept {answer.request.headers.get('accept')!r}, the smart-configuration came as "
            f"{content_type!r}; TOP-KT-016: always application/json")
    json_object(answer, SMART_JSON, "the smart-configuration")


@when("an unregistered client reads the CapabilityStatement")
def read_capability(kt2: Kt2World) -> None:
    app = kt2.bench.probe_application()
    kt2.remember("metadata", app.fhir("GET", "metadata", authenticated=False))


def _capability(kt2: Kt2World, req: str) -> dict:
    answer = kt2.answers["metadata"]
    expect_status(answer, 200, req, "GET metadata without a token")
    body = json_object(answer, req, "the CapabilityStatement")
    require(body.get("resourceType") == "CapabilityStatement", req,
            f"GET metadata answered a {body.get('resourceType')!r}, not a CapabilityStatement")
    return body


@then("the CapabilityStatement is answered without a token")
def capability_public(kt2: Kt2World) -> None:
    _capability(kt2, CAPABILITY)


@then("the CapabilityStatement is for FHIR 4.0.1 in server mode")
def capability_version(kt2: Kt2World) -> None:
    body = _capability(kt2, CAPABILITY)
    require(body.get("fhirVersion") == "4.0.1", CAPABILITY, f"fhirVersion is {body.get('fhirVersion')!r}, not 4.0.1")
    modes = [r.get("mode") for r in body.get("rest") or [] if isinstance(r, dict)]
    require("server" in modes, CAPABILITY, f"rest modes are {modes}; a voorziening is a server")


def _security(body: dict) -> dict:
    for rest in body.get("rest") or []:
        if isinstance(rest, dict) and rest.get("mode") == "server":
            return rest.get("security") or {}
    return {}


@then("the CapabilityStatement names SMART-on-FHIR as its security service")
def capability_smart(kt2: Kt2World) -> None:
    security = _security(_capability(kt2, OAUTH_URIS))
    codes = [c.get("code") for s in security.get("service") or [] for c in (s or {}).get("coding") or []]
    require("SMART-on-FHIR" in codes, OAUTH_URIS, f"rest.security.service codes are {codes}, no SMART-on-FHIR")


@then("its oauth-uris name the smart-configuration's token, authorize and introspection endpoints")
def capability_oauth_uris(kt2: Kt2World) -> None:
    security = _security(_capability(kt2, OAUTH_URIS))
    extension = next((e for e in security.get("extension") or [] if (e or {}).get("url") == OAUTH_URIS_EXTENSION),
                     None)
    require(extension is not None, OAUTH_URIS, f"rest.security has no {OAUTH_URIS_EXTENSION} extension")
    uris = {e.get("url"): e.get("valueUri") for e in extension.get("extension") or [] if isinstance(e, dict)}
    smart = kt2.bench.configuration()
    for name, key in (("token", "token_endpoint"), ("authorize", "authorization_endpoint"),
                      ("introspect", "introspection_endpoint")):
        require(uris.get(name) == smart.get(key), OAUTH_URIS,
                f"oauth-uris {name} is {uris.get(name)!r}, the smart-configuration's {key} {smart.get(key)!r}")


@when("an unregistered client reads the domain's JWKS")
def read_jwks(kt2: Kt2World) -> None:
    url = kt2.bench.configuration().get("jwks_uri")
    require(isinstance(url, str) and url, JWKS, "the smart-configuration names no jwks_uri")
    kt2.remember("jwks", kt2.bench.http.request("GET", url, headers={"Accept": "application/json"}, role="anonymous"))


@then("every published key has kty and kid and no private members")
def jwks_public_only(kt2: Kt2World) -> None:
    answer = kt2.answers["jwks"]
    expect_status(answer, 200, JWKS, "GET jwks_uri")
    body = json_object(answer, JWKS, "the JWKS")
    keys = body.get("keys")
    require(isinstance(keys, list) and keys, JWKS, f"{describe(answer)} with no keys list")
    for key in keys:
        require(isinstance(key, dict) and key.get("kty") and key.get("kid"), JWKS, f"a key without kty or kid: "
                f"{sorted(key) if isinstance(key, dict) else key!r}")
        leaked = [m for m in PRIVATE_MEMBERS if m in key]
        require(not leaked, JWKS, f"key {key.get('kid')!r} publishes private members {leaked}")

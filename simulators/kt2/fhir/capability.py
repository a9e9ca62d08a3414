"""The CapabilityStatement at `[base]/metadata` (no token needed, TOP-KT-002 eis 2).

Strict R4: fhirVersion 4.0.1 (TOP-KT-014), the KT2 implementation guide, one `rest` entry listing every KT2
type with its interactions, search parameters and includes, and `security` with the SMART-on-FHIR service
and the `oauth-uris` extension (HAPI Oauth2UrisStatementInterceptorForR4) naming exactly the URLs of the
smart-configuration.  The service coding uses the R4 code system
`http://terminology.hl7.org/CodeSystem/restful-security-service` (HAPI writes an older system URL).
"""

from __future__ import annotations

from simulators.kt2 import urls
from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.fhir.searchparams import PARAMS

IG = "http://koppeltaal.nl/fhir/ImplementationGuide"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_PROFILE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2{}"
_ALL = ("read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type")
_INTERACTIONS = {
    "AuditEvent": ("read", "vread", "history-instance", "history-type", "create", "search-type"),
    "Device": ("read", "vread", "history-instance", "history-type", "search-type"),
}
_KIND = {"token": "token", "reference": "reference", "string": "string", "uri": "uri", "date": "date"}


def _resource(rtype: str) -> dict:
    interactions = _INTERACTIONS.get(rtype, _ALL)
    params = [{"name": "_id", "type": "token"}, {"name": "_lastUpdated", "type": "date"}]
    for param in PARAMS[rtype].values():
        entry = {"name": param.name, "type": _KIND[param.kind]}
        if param.definition:
            entry["definition"] = param.definition
        params.append(entry)
    resource = {
        "type": rtype,
        "profile": _PROFILE.format(rtype),
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "referencePolicy": ["literal", "enforced", "local"],
        "searchParam": params,
    }
    includes = [f"{rtype}:{p.name}" for p in PARAMS[rtype].values() if p.kind == "reference"]
    if includes:
        resource["searchInclude"] = includes
    return resource


def oauth_uris(root: str, domain: str) -> dict:
    return {"url": OAUTH_URIS, "extension": [
        {"url": "token", "valueUri": urls.token_url(root, domain)},
        {"url": "authorize", "valueUri": urls.authorize_url(root, domain)},
        {"url": "introspect", "valueUri": urls.introspection_url(root, domain)},
        {"url": "jwks", "valueUri": urls.jwks_url(root, domain)},
        {"url": "issuer", "valueUri": urls.oauth_base(root, domain)},
    ]}


def capability_statement(root: str, domain: str, date: str, with_oauth_uris: bool = True) -> dict:
    security: dict = {
        "cors": False,            # no CORS headers are sent (KT2 clients are servers, not browser scripts)
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                     "text": "SMART on FHIR backend services and HTI app launch (Koppeltaal 2)"}],
        "description": "Bearer access tokens from the domain's authorisation server; see "
                       ".well-known/smart-configuration",
    }
    if with_oauth_uris:
        security["extension"] = [oauth_uris(root, domain)]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "ktbench",
        "kind": "instance",
        "software": {"name": "ktbench KT2 reference voorziening", "version": "0.1.0"},
        "implementation": {"description": f"Koppeltaal 2 domain {domain}", "url": urls.fhir_base(root, domain)},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "implementationGuide": [IG],
        "rest": [{
            "mode": "server",
            "security": security,
            "resource": [_resource(rtype) for rtype in RESOURCE_TYPES],
        }],
    }

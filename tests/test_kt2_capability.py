"""The CapabilityStatement at metadata: public, strictly valid (fhir.resources models), every type with its
interactions and search parameters, and SMART oauth-uris equal to the smart-configuration (KT2-DISC-*)."""

from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from kt2_support import ALPHA, BETA, jwks_host, kt2, make_kt2, no_unhandled_errors  # noqa: F401

from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.fhir.capability import OAUTH_URIS


def _metadata(kt2, domain: str = ALPHA) -> dict:
    answer = kt2.http.get(f"{kt2.base(domain)}/metadata")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/fhir+json; charset=utf-8"
    return answer.json()


def test_metadata_needs_no_token_and_is_strictly_valid(kt2):
    statement = _metadata(kt2)
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["implementationGuide"] == ["http://koppeltaal.nl/fhir/ImplementationGuide"]
    assert statement["kind"] == "instance" and statement["status"] == "active"
    assert statement["implementation"]["url"] == kt2.base()
    assert len(statement["rest"]) == 1 and statement["rest"][0]["mode"] == "server"
    # claims only what the server does: no CORS headers, so no `cors: true`
    assert statement["rest"][0]["security"]["cors"] is False
    assert "access-control-allow-origin" not in kt2.http.get(f"{kt2.base()}/metadata",
                                                             headers={"Origin": "https://x.test"}).headers


def test_every_type_with_interactions_and_search_params(kt2):
    resources = {r["type"]: r for r in _metadata(kt2)["rest"][0]["resource"]}
    assert set(resources) == set(RESOURCE_TYPES)
    task = resources["Task"]
    assert {i["code"] for i in task["interaction"]} == {"read", "vread", "update", "delete", "history-instance",
                                                        "history-type", "create", "search-type"}
    assert task["profile"] == "http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"
    params = {p["name"]: p for p in task["searchParam"]}
    assert params["instantiates"]["definition"] == "http://koppeltaal.nl/fhir/SearchParameter/task-instantiates"
    assert params["resource-origin"]["type"] == "reference" and params["_lastUpdated"]["type"] == "date"
    assert "Task:patient" in task["searchInclude"]
    audit = resources["AuditEvent"]
    assert not {"update", "delete"} & {i["code"] for i in audit["interaction"]}
    assert {"traceId", "requestId", "correlationId", "date", "entity"} <= {p["name"] for p in audit["searchParam"]}
    assert "create" not in {i["code"] for i in resources["Device"]["interaction"]}


def test_oauth_uris_name_the_smart_configuration_urls(kt2):
    for domain in (ALPHA, BETA):
        security = _metadata(kt2, domain)["rest"][0]["security"]
        assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        extension = next(e for e in security["extension"] if e["url"] == OAUTH_URIS)
        uris = {e["url"]: e["valueUri"] for e in extension["extension"]}
        config = kt2.http.get(f"{kt2.base(domain)}/.well-known/smart-configuration").json()
        assert uris == {"token": config["token_endpoint"], "authorize": config["authorization_endpoint"],
                        "introspect": config["introspection_endpoint"], "jwks": config["jwks_uri"],
                        "issuer": config["issuer"]}


def test_public_base_is_used_in_metadata(make_kt2):
    with make_kt2(public_base="https://kt2.example.org/") as k:
        statement = _metadata(k)
        assert statement["implementation"]["url"] == f"https://kt2.example.org/api/v1/{ALPHA}/fhir/r4"
        uris = statement["rest"][0]["security"]["extension"][0]["extension"]
        assert all(u["valueUri"].startswith("https://kt2.example.org/api/v1/") for u in uris)


def test_metadata_other_methods_are_405(kt2):
    answer = kt2.http.post(f"{kt2.base()}/metadata", content=b"{}", headers={"Content-Type": "application/fhir+json"})
    assert answer.status_code == 405

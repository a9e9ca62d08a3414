"""KT1 server: the Conformance statement at /FHIR/Koppeltaal/metadata (kt1-protocol §1, §3.2, §9.1-2)."""

from __future__ import annotations

import pytest
from kt1_support import JSON_CT, METADATA, kt1  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

SMART_PLATFORMS = "http://fhir-registry.smartplatforms.org/Profile/oauth-uris"
SMART_HEALTH_IT = "http://fhir-registry.smarthealthit.org/Profile/oauth-uris"
VITALHEALTH_LAUNCH = "http://fhir.vitalhealthsoftware.com/Profile/Conformance#Launch"


def _security_uris(conformance: dict) -> dict[str, str]:
    return {e["url"]: e["valueUri"] for e in conformance["rest"][0]["security"]["extension"]}


@pytest.mark.parametrize("who", [None, "portal"], ids=["anonymous", "basic"])
def test_metadata_is_the_koppeltaal_dstu1_conformance(kt1, who):
    response = kt1.request("GET", METADATA, who)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CT
    body = response.json()
    assert body["resourceType"] == "Conformance"
    assert body["name"] == "Koppeltaal"
    assert body["fhirVersion"] == "0.0.82"
    assert isinstance(body["version"], str) and body["version"] >= "v1.0"  # the connector compares strings
    assert isinstance(body["rest"], list) and body["rest"][0]["mode"] == "server"


@pytest.mark.parametrize("family", [SMART_PLATFORMS, SMART_HEALTH_IT])
def test_metadata_advertises_oauth_uris_of_both_families(kt1, family):
    uris = _security_uris(kt1.request("GET", METADATA, None).json())
    assert uris[f"{family}#authorize"] == kt1.url + "/OAuth2/Koppeltaal/Authorize"
    assert uris[f"{family}#token"] == kt1.url + "/OAuth2/Koppeltaal/Token"


def test_metadata_advertises_the_vitalhealth_launch_uri(kt1):
    uris = _security_uris(kt1.request("GET", METADATA, None).json())
    assert uris[VITALHEALTH_LAUNCH] == kt1.url + "/OAuth2/Koppeltaal/Launch"


def test_metadata_uris_use_the_public_base_when_configured(kt1):
    kt1.use(public_base="https://kt.example.org/")
    body = kt1.request("GET", METADATA, None).json()
    uris = _security_uris(body)
    assert uris[f"{SMART_PLATFORMS}#token"] == "https://kt.example.org/OAuth2/Koppeltaal/Token"
    assert body["messaging"][0]["endpoint"] == "https://kt.example.org/FHIR/Koppeltaal/Mailbox"


def test_metadata_names_the_claim_query_and_search_parameters(kt1):
    rest = kt1.request("GET", METADATA, None).json()["rest"][0]
    assert "MessageHeader.GetNextNewAndClaim" in [q["name"] for q in rest["query"]]
    header = next(r for r in rest["resource"] if r["type"] == "MessageHeader")
    names = {p["name"] for p in header["searchParam"]}
    assert {"_id", "_count", "_summary", "Patient", "event", "ProcessingStatus"} <= names


def test_metadata_with_wrong_credentials_is_still_readable(kt1):
    # metadata is anonymous-readable (JS game, Java connector); credentials are not checked there
    response = kt1.request("GET", METADATA, None, auth=("nobody", "nothing"))
    assert response.status_code == 200
    assert response.json()["name"] == "Koppeltaal"

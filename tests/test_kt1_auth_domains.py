"""KT1 server: HTTP Basic per application instance and domain isolation (kt1-protocol §1, §2.4 "Domain", §9.2).

The credentials decide the caller's domain; a bundle naming another domain is
refused; no read, claim or ack ever reaches a message of another domain.
"""

from __future__ import annotations

import base64

import pytest
from kt1_builders import Kt1World, ack_body, processing_status
from kt1_support import (  # noqa: F401
    LAUNCH,
    MAILBOX,
    MH,
    MH_SEARCH,
    MOBILE_LAUNCH,
    OTHER,
    OTHER_SEARCH,
    details,
    kt1,
    outcome,
)
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

PROTECTED = [
    ("POST", MAILBOX), ("GET", MH_SEARCH), ("GET", MH + "/1"), ("PUT", MH + "/1"),
    ("GET", OTHER_SEARCH), ("POST", OTHER), ("PUT", OTHER + "/ActivityDefinition:1"),
    ("GET", LAUNCH), ("GET", MOBILE_LAUNCH),
]


def _security_error(response, text):
    body = outcome(response, 401)
    assert body["issue"][0]["type"]["code"] == "security"
    assert body["issue"][0]["details"] == text
    assert "Basic" in response.headers["www-authenticate"]


@pytest.mark.parametrize("method, path", PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_endpoints_need_credentials(kt1, method, path):
    before = kt1.snapshot()
    _security_error(kt1.request(method, path, None, json={"resourceType": "Bundle"}), "Authentication required")
    assert kt1.snapshot() == before


@pytest.mark.parametrize("auth", [("ktbench-portal", "wrong"), ("nobody", "portal-secret"),
                                  ("ktbench-portal", "portal-oauth-secret"), ("ktbench-portal", "")],
                         ids=["wrong password", "unknown user", "oauth client secret", "empty password"])
def test_wrong_credentials_are_refused(kt1, auth):
    world = Kt1World(seed=100)
    before = kt1.snapshot()
    response = kt1.request("POST", MAILBOX, None, auth=auth, json=world.patient_message(world.patient()))
    _security_error(response, "Authentication failed: unknown user or wrong password")
    assert kt1.snapshot() == before


@pytest.mark.parametrize("header", ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode(),
                                    "Basic " + base64.b64encode(b"\xff\xfe:x").decode()])
def test_malformed_basic_credentials_are_refused(kt1, header):
    response = kt1.request("GET", MH_SEARCH, None, headers={"Authorization": header})
    _security_error(response, "Malformed Basic credentials")


def test_unknown_auth_scheme_is_refused(kt1):
    response = kt1.request("GET", MH_SEARCH, None, headers={"Authorization": "Digest abc"})
    _security_error(response, "Authentication required")


# -- domains --------------------------------------------------------------------------------------
@pytest.mark.parametrize("named", ["ktbench-beta", "no-such-domain"])
def test_a_bundle_for_another_domain_is_refused(kt1, named):
    world = Kt1World(seed=101, domain=named)
    before = kt1.snapshot()
    response = kt1.post_message(world.careplan_message(*world.careplan_set()), "portal")
    assert details(response, 403) == [
        f"The message is for domain '{named}', but the credentials belong to domain 'ktbench-alpha'"]
    assert kt1.snapshot() == before


def test_the_credentials_decide_the_domain(kt1):
    world = Kt1World(seed=102)
    bundle = world.careplan_message(*world.careplan_set())
    bundle["category"] = [c for c in bundle["category"] if "Domain#" not in c["term"]]
    kt1.send(bundle, who="beta-portal")  # no Domain# category: the beta credentials put it in beta
    assert len(kt1.headers_of("beta-module")) == 1
    assert kt1.headers_of("module") == [] and kt1.headers_of("portal") == []


@pytest.fixture
def alpha_message(kt1):
    """One alpha CarePlan message, in the mailboxes of alpha portal and module."""
    world = Kt1World(seed=103)
    careplan, patient, practitioner, related = world.careplan_set()
    kt1.send(world.careplan_message(careplan, patient, practitioner, related))
    entry = kt1.summary("module")["entry"][0]
    return {"entry": entry, "patient": patient.url, "number": entry["id"].rsplit("/", 1)[1]}


@pytest.mark.parametrize("who", ["beta-portal", "beta-module"])
def test_beta_cannot_claim_or_list_alpha_messages(kt1, alpha_message, who):
    assert kt1.claimed(who)["entry"] == []
    assert kt1.claimed(who, Patient=alpha_message["patient"])["entry"] == []
    assert kt1.headers_of(who) == []
    assert kt1.headers_of(who, Patient=alpha_message["patient"]) == []
    assert kt1.headers_of(who, ProcessingStatus="New") == []
    assert processing_status(kt1.headers_of("module")[0])["status"] == "New"  # nothing was claimed


@pytest.mark.parametrize("form", ["number", "url", "versioned"])
def test_beta_cannot_read_alpha_messages_by_id(kt1, alpha_message, form):
    entry = alpha_message["entry"]
    value = {"number": alpha_message["number"], "url": entry["id"],
             "versioned": next(link["href"] for link in entry["link"] if link["rel"] == "self")}[form]
    response = kt1.request("GET", MH_SEARCH, "beta-module", params={"_id": value})
    assert response.status_code == 200 and response.json()["entry"] == []
    direct = kt1.request("GET", entry["id"], "beta-module")
    assert direct.status_code == 200 and direct.json()["entry"] == []


def test_beta_cannot_ack_alpha_messages(kt1, alpha_message):
    entry = alpha_message["entry"]
    before = kt1.snapshot()
    for url in (entry["id"], next(link["href"] for link in entry["link"] if link["rel"] == "self")):
        response = kt1.request("PUT", url, "beta-module", json=ack_body(entry["content"], "Success"))
        assert details(response, 404) == [f"MessageHeader {alpha_message['number']} not found"]
    assert kt1.snapshot() == before


def test_beta_launch_of_an_alpha_application_is_refused(kt1):
    response = kt1.request("GET", LAUNCH, "beta-portal", params={
        "client_id": "ktbench-module", "patient": "https://x/Patient/1", "user": "https://x/Practitioner/1"})
    assert details(response, 400) == ["Unknown application 'ktbench-module' in domain 'ktbench-beta'"]


def test_alpha_bearer_token_does_not_reach_beta_messages_of_the_same_patient_url(kt1):
    alpha, beta = Kt1World(seed=104), Kt1World(seed=104, domain="ktbench-beta")  # identical URLs
    a_set, b_set = alpha.careplan_set(), beta.careplan_set()
    kt1.send(beta.careplan_message(*b_set), who="beta-portal")
    patient = a_set[1].url
    launch = kt1.request("GET", LAUNCH, "portal", params={"client_id": "ktbench-module", "patient": patient,
                                                          "user": a_set[2].url})
    launch_id = launch.headers["location"].split("launch=")[1].split("&")[0]
    code_url = kt1.request("GET", "/OAuth2/Koppeltaal/Authorize", None, params={
        "response_type": "code", "client_id": "ktbench-module", "redirect_uri": "https://example.com/cb",
        "scope": f"launch:{launch_id} patient/*.read"}).headers["location"]
    token = kt1.request("GET", "/OAuth2/Koppeltaal/Token", None, auth=("ktbench-module", "module-oauth-secret"),
                        params={"grant_type": "authorization_code", "code": code_url.split("code=")[1],
                                "redirect_uri": "https://example.com/cb"}).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    listed = kt1.request("GET", MH_SEARCH, None, headers=bearer, params={"_summary": "true"}).json()
    assert listed["entry"] == []
    claimed = kt1.request("GET", MH_SEARCH, None, headers=bearer,
                          params={"_query": "MessageHeader.GetNextNewAndClaim"}).json()
    assert claimed["entry"] == []
    assert len(kt1.headers_of("beta-module")) == 1

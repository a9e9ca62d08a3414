"""KT1 server: the ProcessingStatus PUT (ack) and claim expiry (kt1-protocol §2.5, §2.6).

The Python connector PUTs the versioned self link, the JS game and the
documentation the history-less URL; both work and only the status and its
exception change.  Un-acked claims fall back to New after the claim timeout;
after five expired claims the message is parked as MaximumRetriesExceeded.
"""

from __future__ import annotations

import copy
import time

import pytest
from kt1_builders import EXT_IS_EXPIRED, EXT_PATIENT, Kt1World, ack_body, ext_value, processing_status, strip_history
from kt1_support import JSON_CT, details, kt1, self_link  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

CLAIM_TIMEOUT = 0.2


def _claim_one(kt1, seed):
    world = Kt1World(seed=seed)
    sent = world.careplan_message(*world.careplan_set())
    kt1.send(sent)
    entry = kt1.claimed("module")["entry"][0]
    return sent, entry


def _header(kt1, who="module"):
    return kt1.headers_of(who)[0]


@pytest.mark.parametrize("url_kind", ["versioned", "history-less"])
@pytest.mark.parametrize("status", ["Success", "Failed", "New"])
def test_ack_sets_the_status_on_either_url(kt1, url_kind, status):
    _, entry = _claim_one(kt1, 50)
    url = self_link(entry) if url_kind == "versioned" else entry["id"]
    exception = "Event not expected" if status == "Failed" else None
    response = kt1.request("PUT", url, "module", json=ack_body(entry["content"], status, exception))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    state = processing_status(_header(kt1))
    assert state["status"] == status
    assert state["exception"] == exception
    assert state["last_changed"] >= processing_status(entry["content"])["last_changed"]


def test_ack_new_makes_the_message_claimable_again(kt1):
    sent, entry = _claim_one(kt1, 51)
    kt1.request("PUT", self_link(entry), "module", json=ack_body(entry["content"], "New"))
    again = kt1.claimed("module")
    assert again["entry"][0]["content"]["identifier"] == sent["entry"][0]["content"]["identifier"]


def test_acked_message_is_not_claimed_again(kt1):
    _, entry = _claim_one(kt1, 52)
    kt1.request("PUT", self_link(entry), "module", json=ack_body(entry["content"], "Success"))
    assert kt1.claimed("module")["entry"] == []


def test_ack_changes_only_status_and_exception(kt1):
    _, entry = _claim_one(kt1, 53)
    original = copy.deepcopy(entry["content"])
    body = ack_body(entry["content"], "Failed", "Broken resource")
    body["identifier"] = "tampered"
    body["event"]["code"] = "CreateOrUpdatePatient"
    body["data"] = [{"reference": "https://evil.example/CarePlan/1/_history/1"}]
    body["extension"] = [e for e in body["extension"] if e["url"] != EXT_PATIENT]
    assert kt1.request("PUT", entry["id"], "module", json=body).status_code == 200
    header = _header(kt1)
    for key in ("identifier", "event", "data", "source", "timestamp"):
        assert header[key] == original[key], key
    assert ext_value(header, EXT_PATIENT) == ext_value(original, EXT_PATIENT)
    assert processing_status(header)["status"] == "Failed"
    # and the delivered bundle still carries the original resources
    full = kt1.request("GET", entry["id"], "module").json()
    assert full["entry"][0]["content"]["data"] == original["data"]


def test_exception_is_dropped_when_the_status_is_not_failed(kt1):
    _, entry = _claim_one(kt1, 54)
    kt1.request("PUT", entry["id"], "module", json=ack_body(entry["content"], "Failed", "first try"))
    kt1.request("PUT", entry["id"], "module", json=ack_body(entry["content"], "Success", "ignored"))
    assert processing_status(_header(kt1)) | {"last_changed": None} == {
        "status": "Success", "exception": None, "last_changed": None}


def test_ack_changes_the_header_version(kt1):
    _, entry = _claim_one(kt1, 55)
    kt1.request("PUT", self_link(entry), "module", json=ack_body(entry["content"], "Success"))
    after = self_link(kt1.summary("module")["entry"][0])
    assert strip_history(after) == entry["id"]
    assert after.rsplit("/_history/", 1)[1] > self_link(entry).rsplit("/_history/", 1)[1]


@pytest.mark.parametrize("status", ["ReplacedByNewVersion", "MaximumRetriesExceeded", "Done"])
def test_server_only_statuses_cannot_be_set(kt1, status):
    _, entry = _claim_one(kt1, 56)
    before = kt1.snapshot()
    text = details(kt1.request("PUT", entry["id"], "module", json=ack_body(entry["content"], status)), 400)
    assert text == [f"ProcessingStatus '{status}' cannot be set by a client; use one of New, Claimed, Success, Failed"]
    assert kt1.snapshot() == before


def test_another_applications_message_cannot_be_acked(kt1):
    _, entry = _claim_one(kt1, 57)
    before = kt1.snapshot()
    response = kt1.request("PUT", entry["id"], "portal", json=ack_body(entry["content"], "Success"))
    assert details(response, 404) == [f"MessageHeader {entry['id'].rsplit('/', 1)[1]} not found"]
    assert kt1.snapshot() == before


# -- claim expiry ---------------------------------------------------------------------------------
def test_expired_claim_returns_to_new(kt1):
    kt1.use(claim_timeout=CLAIM_TIMEOUT)
    sent, entry = _claim_one(kt1, 58)
    assert kt1.claimed("module")["entry"] == []
    time.sleep(CLAIM_TIMEOUT + 0.1)
    assert processing_status(_header(kt1))["status"] == "New"
    again = kt1.claimed("module")
    assert again["entry"][0]["content"]["identifier"] == sent["entry"][0]["content"]["identifier"]


def test_acked_claim_does_not_expire(kt1):
    kt1.use(claim_timeout=CLAIM_TIMEOUT)
    _, entry = _claim_one(kt1, 59)
    kt1.request("PUT", entry["id"], "module", json=ack_body(entry["content"], "Success"))
    time.sleep(CLAIM_TIMEOUT + 0.1)
    assert processing_status(_header(kt1))["status"] == "Success"
    assert kt1.claimed("module")["entry"] == []


def test_five_expired_claims_make_maximum_retries_exceeded(kt1):
    kt1.use(claim_timeout=CLAIM_TIMEOUT)
    world = Kt1World(seed=60)
    kt1.send(world.careplan_message(*world.careplan_set()))
    for attempt in range(1, 6):
        bundle = kt1.claimed("module")
        assert len(bundle["entry"]) == 5, f"claim {attempt} got nothing"
        time.sleep(CLAIM_TIMEOUT + 0.05)
    header = _header(kt1)
    assert processing_status(header)["status"] == "MaximumRetriesExceeded"
    assert ext_value(header, EXT_IS_EXPIRED) is True
    assert kt1.claimed("module")["entry"] == []
    assert [h["identifier"] for h in kt1.headers_of("module", ProcessingStatus="MaximumRetriesExceeded")] == [
        header["identifier"]]


def test_a_client_may_claim_by_put_and_that_claim_expires_too(kt1):
    """The Java connector PUTs Claimed after a plain search, then Success."""
    kt1.use(claim_timeout=CLAIM_TIMEOUT)
    world = Kt1World(seed=61)
    kt1.send(world.careplan_message(*world.careplan_set()))
    entry = kt1.summary("module")["entry"][0]
    assert kt1.request("PUT", entry["id"], "module", json=ack_body(entry["content"], "Claimed")).status_code == 200
    assert kt1.claimed("module")["entry"] == []
    time.sleep(CLAIM_TIMEOUT + 0.1)
    assert processing_status(_header(kt1))["status"] == "New"

"""KT1 server: MessageHeader `_search` — the claim query, the summary list and `_id` (kt1-protocol §2.6, §9.7)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from kt1_builders import Kt1World, processing_status, strip_history
from kt1_support import JSON_CT, MH, MH_SEARCH, kt1, links, self_link  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)


def _send_careplans(kt1, world, n):
    """n CarePlan messages for n patients; returns [(identifier, patient url, careplan url)] oldest first."""
    sent = []
    for _ in range(n):
        careplan, patient, practitioner, related = world.careplan_set()
        bundle = world.careplan_message(careplan, patient, practitioner, related)
        kt1.send(bundle)
        sent.append((bundle["entry"][0]["content"]["identifier"], patient.url, careplan.url))
    return sent


def _ident(bundle):
    return bundle["entry"][0]["content"]["identifier"]


# -- GetNextNewAndClaim ---------------------------------------------------------------------------
def test_claim_on_an_empty_mailbox_has_an_empty_entry_list(kt1):
    response = kt1.claim("module")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_CT
    body = response.json()
    assert body["resourceType"] == "Bundle"
    assert "entry" in body and body["entry"] == []
    assert "next" not in links(body)


def test_claim_hands_out_one_message_at_a_time_oldest_first(kt1):
    sent = _send_careplans(kt1, Kt1World(seed=30), 3)
    got = []
    for _ in range(3):
        bundle = kt1.claimed("module")
        assert "next" not in links(bundle)
        headers = [e for e in bundle["entry"] if e["content"]["resourceType"] == "MessageHeader"]
        assert len(headers) == 1
        assert processing_status(headers[0]["content"])["status"] == "Claimed"
        got.append(_ident(bundle))
    assert got == [s[0] for s in sent]
    assert kt1.claimed("module")["entry"] == []


def test_claim_changes_the_header_version(kt1):
    _send_careplans(kt1, Kt1World(seed=31), 1)
    before = self_link(kt1.summary("module")["entry"][0])
    after = self_link(kt1.claimed("module")["entry"][0])
    assert strip_history(before) == strip_history(after)
    assert after.rsplit("/_history/", 1)[1] > before.rsplit("/_history/", 1)[1]


def test_claim_filters_on_patient_and_event(kt1):
    world = Kt1World(seed=32)
    sent = _send_careplans(kt1, world, 3)
    patient_message = world.patient_message(world.patient())
    kt1.send(patient_message)
    assert _ident(kt1.claimed("module", Patient=sent[1][1])) == sent[1][0]
    assert kt1.claimed("module", Patient=sent[1][1])["entry"] == []
    assert _ident(kt1.claimed("module", event="CreateOrUpdatePatient")) == _ident(patient_message)
    assert kt1.claimed("module", event="CreateOrUpdatePatient")["entry"] == []
    # a versioned patient link names the same patient
    assert _ident(kt1.claimed("module", patient=sent[2][1] + "/_history/x")) == sent[2][0]


def test_claimed_messages_are_not_handed_out_again(kt1):
    _send_careplans(kt1, Kt1World(seed=33), 1)
    kt1.claimed("module")
    assert kt1.claimed("module")["entry"] == []
    assert [processing_status(h)["status"] for h in kt1.headers_of("module")] == ["Claimed"]


# -- summary list ---------------------------------------------------------------------------------
def test_summary_lists_message_headers_newest_first(kt1):
    sent = _send_careplans(kt1, Kt1World(seed=34), 3)
    bundle = kt1.summary("module")
    assert bundle["totalResults"] == "3"
    assert all(e["content"]["resourceType"] == "MessageHeader" for e in bundle["entry"])
    assert [e["content"]["identifier"] for e in bundle["entry"]] == [s[0] for s in reversed(sent)]
    for entry in bundle["entry"]:
        assert self_link(entry).startswith(entry["id"] + "/_history/")


@pytest.mark.parametrize("name", ["Patient", "patient", "PATIENT"])
def test_summary_filters_on_patient_case_insensitively(kt1, name):
    sent = _send_careplans(kt1, Kt1World(seed=35), 3)
    headers = kt1.headers_of("module", **{name: sent[0][1]})
    assert [h["identifier"] for h in headers] == [sent[0][0]]


@pytest.mark.parametrize("name", ["event", "Event"])
def test_summary_filters_on_event(kt1, name):
    world = Kt1World(seed=36)
    _send_careplans(kt1, world, 2)
    patient_message = world.patient_message(world.patient())
    kt1.send(patient_message)
    headers = kt1.headers_of("module", **{name: "CreateOrUpdatePatient"})
    assert [h["identifier"] for h in headers] == [_ident(patient_message)]
    assert len(kt1.headers_of("module", **{name: "CreateOrUpdateCarePlan"})) == 2


@pytest.mark.parametrize("name, value", [("ProcessingStatus", "New"), ("processingStatus", "New"),
                                         ("processingstatus", "new"), ("ProcessingStatus", "Claimed")])
def test_summary_filters_on_processing_status(kt1, name, value):
    sent = _send_careplans(kt1, Kt1World(seed=37), 3)
    kt1.claimed("module")  # the oldest becomes Claimed
    headers = kt1.headers_of("module", **{name: value})
    wanted = [s[0] for s in reversed(sent[1:])] if value.lower() == "new" else [sent[0][0]]
    assert [h["identifier"] for h in headers] == wanted
    assert {processing_status(h)["status"].lower() for h in headers} == {value.lower()}


def test_summary_pages_with_next_links(kt1):
    sent = _send_careplans(kt1, Kt1World(seed=38), 5)
    page = kt1.summary("module", _count="2")
    seen, pages = [], 0
    while True:
        pages += 1
        assert len(page["entry"]) <= 2 and page["totalResults"] == "5"
        seen += [e["content"]["identifier"] for e in page["entry"]]
        nxt = links(page).get("next")
        if nxt is None:
            break
        response = kt1.http.get(nxt, auth=("ktbench-module", "module-secret"))
        assert response.status_code == 200, response.text
        page = response.json()
    assert pages == 3
    assert seen == [s[0] for s in reversed(sent)]


@pytest.mark.parametrize("asked, used", [("5000", "1000"), ("1000", "1000"), ("999", "999"), ("0", "1")])
def test_summary_count_is_clamped_not_refused(kt1, asked, used):
    _send_careplans(kt1, Kt1World(seed=39), 2)
    bundle = kt1.summary("module", _count=asked)
    assert parse_qs(urlsplit(links(bundle)["self"]).query)["_count"] == [used]
    assert len(bundle["entry"]) == min(2, int(used))


def test_summary_never_shows_another_applications_mailbox(kt1):
    world = Kt1World(seed=40)
    kt1.send(world.message("CreateOrUpdateActivityDefinition", world.patient()))  # only the portal subscribes
    assert kt1.headers_of("module") == []
    assert len(kt1.headers_of("portal")) == 1


# -- _id ------------------------------------------------------------------------------------------
def _id_forms(kt1, entry):
    number = entry["id"].rsplit("/", 1)[1]
    return {
        "bare id": number,
        "history-less URL": entry["id"],
        "versioned URL": self_link(entry),
        "URL on another host": "https://edgekoppeltaal.example.net" + MH + "/" + number,
        "versioned URL on another host": "https://edgekoppeltaal.example.net" + MH + f"/{number}/_history/xyz",
    }


@pytest.mark.parametrize("form", ["bare id", "history-less URL", "versioned URL", "URL on another host",
                                  "versioned URL on another host"])
def test_search_by_id_accepts_bare_ids_and_full_urls(kt1, form):
    world = Kt1World(seed=41)
    careplan, patient, practitioner, related = world.careplan_set()
    sent = world.careplan_message(careplan, patient, practitioner, related)
    kt1.send(sent)
    entry = kt1.summary("module")["entry"][0]
    response = kt1.request("GET", MH_SEARCH, "module", params={"_id": _id_forms(kt1, entry)[form]})
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["entry"][0]["id"] == entry["id"]
    assert _ident(bundle) == _ident(sent)
    assert [e["id"] for e in bundle["entry"][1:]] == [careplan.url, patient.url, practitioner.url, related.url]


def test_search_by_id_does_not_claim(kt1):
    _send_careplans(kt1, Kt1World(seed=42), 1)
    entry = kt1.summary("module")["entry"][0]
    kt1.request("GET", MH_SEARCH, "module", params={"_id": entry["id"]})
    assert processing_status(kt1.headers_of("module")[0])["status"] == "New"


def test_search_by_unknown_id_gives_an_empty_bundle(kt1):
    response = kt1.request("GET", MH_SEARCH, "module", params={"_id": "987654"})
    assert response.status_code == 200
    assert response.json()["entry"] == []


def test_read_on_the_message_header_url_gives_the_message(kt1):
    _send_careplans(kt1, Kt1World(seed=43), 1)
    entry = kt1.summary("module")["entry"][0]
    response = kt1.request("GET", entry["id"], "module")
    assert response.status_code == 200
    assert response.json()["entry"][0]["id"] == entry["id"]


def test_parallel_claims_never_hand_out_a_message_twice(kt1):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    sent = _send_careplans(kt1, Kt1World(seed=44), 8)

    def claim_all() -> list[str]:
        got = []
        with httpx.Client(base_url=kt1.url, auth=("ktbench-module", "module-secret")) as http:
            while True:
                bundle = http.get(MH_SEARCH, params={"_query": "MessageHeader.GetNextNewAndClaim"}).json()
                if not bundle["entry"]:
                    return got
                got.append(_ident(bundle))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: claim_all(), range(4)))
    claimed = [ident for result in results for ident in result]
    assert sorted(claimed) == sorted(s[0] for s in sent)


@pytest.mark.parametrize("page", ["4", "9223372036854775807"])
def test_pages_past_the_end_are_empty(kt1, page):
    _send_careplans(kt1, Kt1World(seed=45), 2)
    bundle = kt1.summary("module", _count="1000", page=page)
    assert bundle["entry"] == [] and bundle["totalResults"] == "2"
    listed = kt1.request("GET", "/FHIR/Koppeltaal/Other/_search", params={"code": "ActivityDefinition", "page": page})
    assert listed.status_code == 200 and listed.json()["entry"] == []

"""Search: the parameters of every KT2 type, the KT SearchParameters and chains, sorting, paging with absolute
next links, includes, AuditEvent searches, and 400 for what is not understood (KT2-SEARCH-*)."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from kt2_support import (  # noqa: F401
    ALPHA,
    careteam,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    practitioner,
    related_person,
    subscription,
    task,
    updated,
)


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _family(kt2, count: int = 3) -> tuple[str, list[dict]]:
    family = f"Fam{uuid.uuid4().hex[:10]}"
    return family, [kt2.create("alpha-portal", patient(family=family)) for _ in range(count)]


def test_searchset_shape(kt2):
    family, created = _family(kt2, 2)
    bundle = kt2.search("alpha-portal", f"Patient?family={family}")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["total"] == 2
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links["self"] == f"{kt2.base()}/Patient?family={family}"
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"{kt2.base()}/Patient/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
    assert sorted(_ids(bundle)) == sorted(p["id"] for p in created)


def test_paging_with_absolute_next_links(kt2):
    family, created = _family(kt2, 5)
    seen: list[str] = []
    url = f"{kt2.base()}/Patient?family={family}&_count=2"
    pages = 0
    while url:
        bundle = kt2.http.get(url, headers=kt2.headers("alpha-portal")).json()
        assert bundle["total"] == 5
        seen += _ids(bundle)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        assert url is None or url.startswith(kt2.base())
        pages += 1
    assert pages == 3 and sorted(seen) == sorted(p["id"] for p in created)


def test_next_links_follow_the_public_base(make_kt2):
    with make_kt2(public_base="https://kt2.example.org") as k:
        family = f"Pub{uuid.uuid4().hex[:8]}"
        for _ in range(3):
            k.create("alpha-portal", patient(family=family))
        bundle = k.search("alpha-portal", f"Patient?family={family}&_count=1")
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["next"].startswith(f"https://kt2.example.org/api/v1/{ALPHA}/fhir/r4/Patient?")
        assert bundle["entry"][0]["fullUrl"].startswith("https://kt2.example.org/")
        created = k.post("alpha-portal", "Patient", patient())
        assert created.headers["location"].startswith("https://kt2.example.org/")


def test_default_sort_is_newest_first_and_sort_options(kt2):
    family, created = _family(kt2, 3)
    ids = [p["id"] for p in created]
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family}")) == ids[::-1]
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family}&_sort=_lastUpdated")) == ids
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family}&_sort=-_lastUpdated")) == ids[::-1]
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family}&_sort=_id")) == sorted(ids)
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family}&_sort=-_id")) == sorted(ids)[::-1]
    assert kt2.get("alpha-portal", f"Patient?family={family}&_sort=birthdate").status_code == 400


def test_id_last_updated_and_total_ignored(kt2):
    family, created = _family(kt2, 2)
    first = created[0]
    assert _ids(kt2.search("alpha-portal", f"Patient?_id={first['id']}&_total=accurate")) == [first["id"]]
    stamp = first["meta"]["lastUpdated"]
    assert first["id"] in _ids(kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated={stamp}"))
    assert first["id"] in _ids(kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=ge{stamp}"))
    assert first["id"] not in _ids(kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=gt{stamp}"))
    assert first["id"] not in _ids(kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=lt{stamp}"))
    assert first["id"] in _ids(kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=le{stamp}"))
    assert kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=lt2000-01-01")["total"] == 0
    assert kt2.search("alpha-portal", f"Patient?family={family}&_lastUpdated=gt2000")["total"] == 2


def test_identifier_token_forms(kt2):
    created = kt2.create("alpha-portal", patient())
    ident = created["identifier"][0]
    for query in (f"{ident['system']}|{ident['value']}", ident["value"], f"{ident['system']}|"):
        found = _ids(kt2.search("alpha-portal", f"Patient?identifier={query}&_count=200"))
        assert created["id"] in found, query
    assert kt2.search("alpha-portal", f"Patient?identifier=other|{ident['value']}")["total"] == 0
    assert kt2.search("alpha-portal", f"Patient?identifier=|{ident['value']}")["total"] == 0


def test_person_parameters(kt2):
    family, created = _family(kt2, 1)
    pid = created[0]["id"]
    assert _ids(kt2.search("alpha-portal", f"Patient?name={family.lower()}")) == [pid]
    assert _ids(kt2.search("alpha-portal", f"Patient?family={family[:6]}&_id={pid}")) == [pid]
    assert _ids(kt2.search("alpha-portal", f"Patient?family:exact={family}")) == [pid]
    assert kt2.search("alpha-portal", f"Patient?family:exact={family.lower()}")["total"] == 0
    assert _ids(kt2.search("alpha-portal", f"Patient?family:contains={family[3:]}")) == [pid]
    assert pid in _ids(kt2.search("alpha-portal", f"Patient?given=jan&family={family}"))
    assert _ids(kt2.search("alpha-portal", f"Patient?active=true&family={family}")) == [pid]
    assert kt2.search("alpha-portal", f"Patient?active=false&family={family}")["total"] == 0
    kt2.put("alpha-portal", f"Patient/{pid}", updated(created[0], active=False), version="1")
    assert _ids(kt2.search("alpha-portal", f"Patient?active=false&family={family}")) == [pid]
    doctor = kt2.create("alpha-portal", practitioner())
    email = doctor["telecom"][0]["value"]
    assert _ids(kt2.search("alpha-portal", f"Practitioner?email={email}")) == [doctor["id"]]
    friend = kt2.create("alpha-portal", related_person(pid))
    assert _ids(kt2.search("alpha-portal", f"RelatedPerson?patient=Patient/{pid}")) == [friend["id"]]


def test_task_parameters_and_chains(kt2):
    world = kt2.world()
    tid, pid = world["task"]["id"], world["patient"]["id"]
    definition = world["definition"]
    publisher = next(e["valueId"] for e in definition["extension"] if e["url"].endswith("KT2PublisherId"))
    sub = kt2.create("alpha-portal", task(pid, definition["id"], view=True, part_of=tid, status="in-progress"))
    queries = {
        f"Task?patient=Patient/{pid}": {tid, sub["id"]},
        f"Task?patient={pid}": {tid, sub["id"]},
        f"Task?subject=Patient/{pid}": {tid, sub["id"]},
        f"Task?owner=Patient/{pid}": {tid, sub["id"]},
        f"Task?owner:Patient={pid}": {tid, sub["id"]},
        f"Task?patient={kt2.base()}/Patient/{pid}": {tid, sub["id"]},
        f"Task?instantiates=ActivityDefinition/{definition['id']}": {tid, sub["id"]},
        f"Task?instantiates.publisherId={publisher}": {tid, sub["id"]},
        f"Task?part-of=Task/{tid}": {sub["id"]},
        f"Task?patient={pid}&code=view": {sub["id"]},
        f"Task?patient={pid}&code=http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code|view": {sub["id"]},
        f"Task?patient={pid}&status=ready": {tid},
        f"Task?patient={pid}&status=ready,in-progress": {tid, sub["id"]},
        f"Task?patient={pid}&status=ready&status=in-progress": set(),
        f"Task?patient={pid}&intent=order": {tid, sub["id"]},
        f"Task?patient={pid}&resource-origin=Device/alpha-portal": {tid, sub["id"]},
        f"Task?patient={pid}&resource-origin=Device/alpha-module": set(),
        f"Task?patient={pid}&part-of:missing=true": {tid},
    }
    for query, expected in queries.items():
        assert set(_ids(kt2.search("alpha-portal", query))) == expected, query


def test_includes(kt2):
    world = kt2.world()
    tid = world["task"]["id"]
    bundle = kt2.search("alpha-portal", f"Task?_id={tid}&_include=Task:patient&_include=Task:instantiates")
    assert _ids(bundle) == [tid]
    assert set(_ids(bundle, "include")) == {world["patient"]["id"], world["definition"]["id"]}
    assert bundle["total"] == 1
    owner = kt2.search("alpha-portal", f"Task?_id={tid}&_include=Task:owner:Patient")
    assert _ids(owner, "include") == [world["patient"]["id"]]
    for bad in ("Patient:organization", "Task:status", "Task:owner:Device", "*", "Task"):
        assert kt2.get("alpha-portal", f"Task?_include={bad}").status_code == 400, bad


def test_definition_and_other_type_parameters(kt2):
    world = kt2.world()
    definition = world["definition"]
    publisher = next(e["valueId"] for e in definition["extension"] if e["url"].endswith("KT2PublisherId"))
    for query in (f"ActivityDefinition?url={definition['url']}", f"ActivityDefinition?publisherId={publisher}",
                  f"ActivityDefinition?publisherId={publisher}&status=active",
                  f"ActivityDefinition?endpoint=Endpoint/{world['endpoint']['id']}"):
        assert _ids(kt2.search("alpha-portal", query)) == [definition["id"]], query
    assert _ids(kt2.search("alpha-portal", f"Endpoint?_id={world['endpoint']['id']}&status=active")) \
        == [world["endpoint"]["id"]]
    assert _ids(kt2.search("alpha-portal", "Device?identifier=http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id|"
                                           "alpha-module")) == ["alpha-module"]
    team = kt2.create("alpha-portal", careteam(world["patient"]["id"]))
    assert _ids(kt2.search("alpha-portal", f"CareTeam?patient={world['patient']['id']}&status=active")) == [team["id"]]
    sub = kt2.create("alpha-portal", subscription("Task?status=completed", "https://portal.ktbench.test/x"))
    assert sub["id"] in _ids(kt2.search("alpha-portal", "Subscription?status=active&_count=200"))


def test_summary_count_and_post_search(kt2):
    family, _ = _family(kt2, 3)
    counted = kt2.search("alpha-portal", f"Patient?family={family}&_summary=count")
    assert counted["total"] == 3 and "entry" not in counted
    posted = kt2.http.post(f"{kt2.base()}/Patient/_search", data={"family": family},
                           headers=kt2.headers("alpha-portal"))
    assert posted.status_code == 200 and posted.json()["total"] == 3
    got = kt2.get("alpha-portal", f"Patient/_search?family={family}")
    assert got.json()["total"] == 3


@pytest.mark.parametrize("query", [
    "Patient?nonsense=1", "Patient?family:fuzzy=x", "Patient?_count=-1", "Patient?_count=abc", "Patient?_sort=name",
    "Patient?_lastUpdated=yesterday", "Patient?_lastUpdated=2026-13-01", "Patient?_id=bad$id", "Patient?active:not=x",
    "Task?patient=Practitioner/1", "Task?owner.name=x", "Task?instantiates.nonsense=1", "Task?status.x=1",
    "AuditEvent?date=ge2026-02-30", "Patient?family=", "Patient?_summary=true", "Task?instantiates.url.x=1",
    "Patient?_total=maybe", "Patient?_offset=x",
])
def test_bad_search_parameters_are_400(kt2, query):
    answer = kt2.get("alpha-portal", query)
    assert answer.status_code == 400, answer.text
    assert answer.json()["issue"][0]["diagnostics"]


def test_lenient_handling_drops_unknown_parameters(kt2):
    family, _ = _family(kt2, 1)
    answer = kt2.get("alpha-portal", f"Patient?family={family}&nonsense=1",
                     headers={"Prefer": "handling=lenient"})
    assert answer.status_code == 200 and answer.json()["total"] == 1
    self_link = next(link["url"] for link in answer.json()["link"] if link["relation"] == "self")
    assert "nonsense" not in self_link
    strict = kt2.get("alpha-portal", f"Patient?family={family}&family:fuzzy=1", headers={"Prefer": "handling=lenient"})
    assert strict.status_code == 400   # a known parameter used wrongly stays an error


def test_count_is_capped_by_the_maximum(kt2):
    bundle = kt2.search("alpha-portal", "Device?_count=100000")
    assert len(bundle.get("entry", [])) <= kt2.ctx.settings.max_page_size
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert parse_qs(urlsplit(self_link).query)["_count"] == ["100000"]


def test_audit_event_searches(kt2):
    marker = uuid.uuid4().hex
    created = kt2.post("alpha-portal", "Patient", patient(), **{"X-Request-Id": marker, "X-Trace-Id": "t" + marker,
                                                                 "X-Correlation-Id": "c" + marker})
    pid = created.json()["id"]
    kt2.services.audit.flush()
    q = "AuditEvent?"
    checks = {
        f"requestId={marker}": 1, f"traceId=t{marker}": 1, f"correlationId=c{marker}": 1,
        f"requestId={marker}&type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest": 1,
        f"requestId={marker}&subtype=create": 1, f"requestId={marker}&subtype=read": 0,
        f"requestId={marker}&entity=Patient/{pid}": 1, f"requestId={marker}&agent=Device/alpha-portal": 1,
        f"requestId={marker}&outcome=0": 1, f"requestId={marker}&outcome=4": 0, f"requestId={marker}&action=C": 1,
    }
    for query, expected in checks.items():
        assert kt2.search("alpha-beheer", q + query)["total"] == expected, query
    event = kt2.search("alpha-beheer", f"{q}requestId={marker}")["entry"][0]["resource"]
    recorded = event["recorded"]
    assert kt2.search("alpha-beheer", f"{q}requestId={marker}&date={recorded}")["total"] == 1
    assert kt2.search("alpha-beheer", f"{q}requestId={marker}&date=gt{recorded}")["total"] == 0
    assert kt2.search("alpha-beheer", f"{q}requestId={marker}&date=ge{recorded}")["total"] == 1
    assert kt2.search("alpha-beheer", f"{q}requestId={marker}&date=lt{recorded}")["total"] == 0
    assert kt2.search("alpha-beheer", f"{q}requestId={marker}&date=le{recorded[:10]}")["total"] == 1
    time.sleep(0.01)
    kt2.get("alpha-portal", f"Patient/{pid}", headers={"X-Trace-Id": "t" + marker})
    kt2.services.audit.flush()
    by_date = kt2.search("alpha-beheer", f"{q}traceId=t{marker}&_sort=date")
    assert [e["resource"]["subtype"][0]["code"] for e in by_date["entry"]] == ["create", "read"]
    by_date_desc = kt2.search("alpha-beheer", f"{q}traceId=t{marker}&_sort=-date")
    assert [e["resource"]["subtype"][0]["code"] for e in by_date_desc["entry"]] == ["read", "create"]

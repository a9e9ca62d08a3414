"""Steps of FHIR REST, search and versioning (features/kt2/rest.feature, search.feature, versioning.feature).

The portal (Behandelaarsportaal: CRUD on Patient, Practitioner, CareTeam and Task) writes most resources; the
module writes its own Task and ActivityDefinitions.  Every resource carries a fresh identifier, and searches
are narrowed to what the scenario made, so scenarios sharing a domain never see each other's resources.
Where the sources allow several answers (kt2-protocol.md §4.2, §8) every one of them is accepted.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.events import EventRecorder, EventStream, HttpExchange
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from simulators.kt2.actors import resources
from steps.kt2.checks import (
    describe,
    etag_version,
    expect_status,
    is_outcome,
    json_object,
    outcome_text,
)
from steps.kt2.world import Kt2World

CREATE, PREFER, READ, VREAD, UPDATE = ("KT2-REST-CREATE", "KT2-REST-PREFER", "KT2-REST-READ", "KT2-REST-VREAD",
                                       "KT2-REST-UPDATE")
DELETE, GONE, HISTORY, SERVER_ID = "KT2-REST-DELETE", "KT2-REST-GONE", "KT2-REST-HISTORY", "KT2-REST-SERVER-ID"
MEDIA, JSON_SYNTAX, OUTCOME, CASCADE = ("KT2-REST-MEDIA", "KT2-REST-JSON-SYNTAX", "KT2-REST-OUTCOME",
                                        "KT2-REST-CASCADE")
PARAMS, PAGING, SORT = "KT2-SEARCH-PARAMS", "KT2-SEARCH-PAGING", "KT2-SEARCH-SORT"
INSTANTIATES, INCLUDE = "KT2-SEARCH-INSTANTIATES", "KT2-SEARCH-INCLUDE"
IF_MATCH, STALE, ETAG = "KT2-VER-IF-MATCH-REQUIRED", "KT2-VER-STALE", "KT2-VER-ETAG"
DELETE_IF_MATCH, CONCURRENT = "KT2-VER-DELETE-IF-MATCH", "KT2-VER-CONCURRENT"
FAMILY = (CREATE, PREFER, READ, VREAD, UPDATE, DELETE, GONE, HISTORY, SERVER_ID, MEDIA, JSON_SYNTAX, OUTCOME,
          CASCADE, PARAMS, PAGING, SORT, INSTANTIATES, INCLUDE, IF_MATCH, STALE, ETAG, DELETE_IF_MATCH, CONCURRENT)
CONFLICT = (409, 412)                       # version conflicts: both allowed (TOP-KT-012a; kt2-protocol.md §8.1)
LABEL = r"(?P<label>patient|practitioner)"
PATIENT_SYSTEM = "http://ktbench.test/rest-patients"


# -- small helpers ---------------------------------------------------------------------------------------------
def _body(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _practitioner(kt2: Kt2World) -> dict[str, Any]:
    return resources.practitioner(family=kt2.faker.last_name(), given=kt2.faker.first_name())


def _identifier(resource: dict[str, Any]) -> str:
    first = resource["identifier"][0]
    return f"{first['system']}|{first['value']}"


def _renamed(kt2: Kt2World, resource: dict[str, Any]) -> dict[str, Any]:
    family = f"{kt2.faker.last_name()}-{uuid.uuid4().hex[:6]}"
    given_name = kt2.faker.first_name()
    return resources.changed(resource, name=[{"use": "official", "text": f"{given_name} {family}", "family": family,
                                              "given": [given_name]}])


def _versions(kt2: Kt2World, label: str) -> list[dict[str, Any]]:
    """Every version of `label` as the voorziening answered it when it was written, oldest first."""
    versions = kt2.notes.setdefault("versions", {})
    if label not in versions:
        versions[label] = [copy.deepcopy(kt2.resource(label))]
    return versions[label]


def _made(kt2: Kt2World, label: str) -> dict[str, Any]:
    if label == "patient":
        kt2.patient()
    elif label not in kt2.resources:
        kt2.create(kt2.portal, label, _practitioner(kt2))
    _versions(kt2, label)
    return kt2.resource(label)


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _same_content(stored: dict[str, Any], sent: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if stored.get(k) != sent.get(k)]


def _outcome(answer: httpx.Response, req: str, what: str, *, text: bool = False) -> None:
    body = json_object(answer, req, what)
    require(body.get("resourceType") == "OperationOutcome", req,
            f"{what}: {describe(answer)} with a {body.get('resourceType')!r}, not an OperationOutcome")
    issues = body.get("issue")
    require(isinstance(issues, list) and issues and all(isinstance(i, dict) for i in issues), req,
            f"{what}: the OperationOutcome has no issue")
    for issue in issues:
        require(issue.get("severity") in ("fatal", "error", "warning", "information") and issue.get("code"), req,
                f"{what}: an issue without severity or code: {issue}")
    if text:
        require(any(i.get("severity") in ("fatal", "error") for i in issues), req,
                f"{what}: the OperationOutcome of a refusal names no issue of severity error or fatal")
        require(bool(outcome_text(answer).strip()), req,
                f"{what}: the OperationOutcome does not say what was wrong (no diagnostics or details.text)")


def _read_back(kt2: Kt2World, label: str) -> httpx.Response:
    return kt2.portal.read(kt2.ref(label))


def _search(kt2: Kt2World, rtype: str, params: list[tuple[str, str]], **kwargs: Any) -> httpx.Response:
    return kt2.portal.search(rtype, params, **kwargs)


def _bundle(answer: httpx.Response, req: str, what: str, kind: str = "searchset") -> dict[str, Any]:
    expect_status(answer, 200, req, what)
    body = json_object(answer, req, what)
    require(body.get("resourceType") == "Bundle" and body.get("type") == kind, req,
            f"{what}: expected a {kind} Bundle, got {body.get('resourceType')!r} of type {body.get('type')!r}")
    return body


def _entries(bundle: dict[str, Any], mode: str | None = None) -> list[dict[str, Any]]:
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    if mode is None:
        return entries
    return [e for e in entries if ((e.get("search") or {}).get("mode") or "match") == mode]


def _entry_ref(entry: dict[str, Any]) -> str:
    resource = entry.get("resource") or {}
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _no_match(kt2: Kt2World, rtype: str, identifier: str) -> httpx.Response:
    return _search(kt2, rtype, [("identifier", identifier)])


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == relation and isinstance(link.get("url"), str):
            return link["url"]
    return None


# -- the scene ---------------------------------------------------------------------------------------------------
@given("the portal has registered a practitioner")
def given_practitioner(kt2: Kt2World) -> None:
    _made(kt2, "practitioner")


@given(parsers.re(rf"the portal has renamed the {LABEL}"))
def given_renamed(kt2: Kt2World, label: str) -> None:
    current = _made(kt2, label)
    answer = kt2.portal.update(_renamed(kt2, current), kt2.version(label))
    kt2.keep(label, answer, UPDATE, (200,))
    _versions(kt2, label).append(copy.deepcopy(kt2.resource(label)))


@given(parsers.re(rf"the portal has deleted the {LABEL}"))
def given_deleted(kt2: Kt2World, label: str) -> None:
    _made(kt2, label)
    answer = kt2.portal.delete(kt2.ref(label), kt2.version(label))
    precondition(answer.status_code in (200, 204), DELETE, f"deleting the {label}: {describe(answer)} "
                                                           f"({outcome_text(answer)})")


@given("the portal has registered a care team for the patient")
def given_care_team(kt2: Kt2World) -> None:
    kt2.create(kt2.portal, "care team", resources.care_team(kt2.patient()["id"]))


@given("the module has assigned the patient a task of its own with status requested")
def given_module_task(kt2: Kt2World) -> None:
    body = resources.task(kt2.patient()["id"], kt2.activity()["id"], status="requested")
    kt2.keep("module task", kt2.module.create(body), PARAMS)


@given("the portal has assigned another activity of the module to the patient as the other task")
def given_other_task(kt2: Kt2World) -> None:
    definition = kt2.activity("other definition")
    kt2.create(kt2.portal, "other task", resources.task(kt2.patient()["id"], definition["id"]))


@given("the portal has registered two patients one after the other")
def given_two_patients(kt2: Kt2World) -> None:
    first = kt2.create(kt2.portal, "first patient", resources.patient(family=kt2.faker.last_name()))
    second = kt2.create(kt2.portal, "second patient", resources.patient(family=kt2.faker.last_name()))
    before, since = (_instant((r.get("meta") or {}).get("lastUpdated")) for r in (first, second))
    precondition(before is not None and since is not None, PARAMS,
                 "the created patients carry no meta.lastUpdated instant")
    for _ in range(3):   # a store that records whole seconds: update the second one until its instant differs
        if since > before:
            return
        time.sleep(min(1.0, max(0.01, (before - since).total_seconds() + 0.01)) if before > since else 0.5)
        second = kt2.keep("second patient", kt2.portal.update(_renamed(kt2, second), kt2.version("second patient")),
                          UPDATE, (200,))
        since = _instant((second.get("meta") or {}).get("lastUpdated")) or since
    precondition(since > before, PARAMS, "the two patients keep the same meta.lastUpdated")


@given(parsers.parse("the portal has registered {count:d} patients under one fresh identifier system"))
def given_patients(kt2: Kt2World, count: int) -> None:
    system = f"{PATIENT_SYSTEM}/{uuid.uuid4()}"
    kt2.notes["system"] = system
    made = []
    for number in range(count):
        body = resources.patient(family=kt2.faker.last_name(), given=kt2.faker.first_name(), system=system)
        made.append(kt2.create(kt2.portal, f"patient {number + 1}", body))
    kt2.notes["made"] = made


# -- REST interactions -----------------------------------------------------------------------------------------
@when("the portal POSTs a new practitioner")
def post_practitioner(kt2: Kt2World) -> None:
    body = kt2.notes["sent"] = _practitioner(kt2)
    kt2.remember("create", kt2.portal.create(body))


@when(parsers.parse('the portal POSTs a new practitioner with Prefer "{prefer}"'))
def post_prefer(kt2: Kt2World, prefer: str) -> None:
    body = kt2.notes["sent"] = _practitioner(kt2)
    kt2.remember("create", kt2.portal.create(body, headers={"Prefer": prefer}))


@when("the portal POSTs a new practitioner with an id of its own in the body")
def post_with_id(kt2: Kt2World) -> None:
    chosen = kt2.notes["chosen id"] = str(uuid.uuid4())
    body = kt2.notes["sent"] = dict(_practitioner(kt2), id=chosen)
    kt2.remember("create", kt2.portal.create(body))


@when(parsers.parse('the portal POSTs a new practitioner as JSON labelled "{content_type}"'))
def post_media(kt2: Kt2World, content_type: str) -> None:
    body = kt2.notes["sent"] = _practitioner(kt2)
    kt2.remember("create", kt2.portal.fhir("POST", "Practitioner", body=json.dumps(body),
                                           headers={"Content-Type": content_type}))


def _broken_json(body: dict[str, Any], defect: str) -> bytes:
    text = json.dumps(body, ensure_ascii=False)
    if defect == "lacks its closing brace":
        return text[:-1].encode()
    if defect == "has a trailing comma":
        return (text[:-1] + ",}").encode()
    if defect == "has single-quoted names":
        return text.replace('"resourceType"', "'resourceType'").encode()
    if defect == "is not UTF-8":
        return text.encode("latin-1")
    raise BenchError(f"no JSON defect {defect!r}")


@when(parsers.re(r"the portal POSTs a new practitioner whose JSON (?P<defect>lacks its closing brace|has a trailing "
                 r"comma|has single-quoted names|is not UTF-8)"))
def post_broken(kt2: Kt2World, defect: str) -> None:
    body = _practitioner(kt2)
    if defect == "is not UTF-8":
        body["name"][0]["family"] = "Müller-Çelik"    # é/ü/Ç as latin-1 bytes: invalid UTF-8
        body["name"][0]["text"] = f"{body['name'][0]['given'][0]} Müller-Çelik"
    kt2.notes["sent"] = body
    kt2.remember("create", kt2.portal.fhir("POST", "Practitioner", body=_broken_json(body, defect)))


@when("the portal PUTs the patient with a new name as JSON that lacks its closing brace")
def put_broken(kt2: Kt2World) -> None:
    current = _made(kt2, "patient")
    text = _broken_json(_renamed(kt2, current), "lacks its closing brace")
    kt2.remember("update", kt2.portal.fhir("PUT", kt2.ref("patient"), body=text,
                                           headers={"If-Match": f'W/"{kt2.version("patient")}"'}))


@when("the portal PUTs a practitioner to an id that was never created")
def put_unknown(kt2: Kt2World) -> None:
    chosen = kt2.notes["chosen id"] = str(uuid.uuid4())
    body = kt2.notes["sent"] = dict(_practitioner(kt2), id=chosen)
    kt2.remember("update", kt2.portal.update(body, "1"))


@when(parsers.re(rf"the portal GETs the {LABEL}"))
def get_resource(kt2: Kt2World, label: str) -> None:
    kt2.remember("read", kt2.portal.read(kt2.ref(label)))


@when(parsers.re(rf'the portal GETs the {LABEL} accepting "(?P<accept>[^"]+)"'))
def get_accepting(kt2: Kt2World, label: str, accept: str) -> None:
    kt2.remember("read", kt2.portal.read(kt2.ref(label), headers={"Accept": accept}))


@when("the portal GETs a Patient id that was never created")
def get_unknown(kt2: Kt2World) -> None:
    kt2.remember("read", kt2.portal.read(f"Patient/{uuid.uuid4()}"))


@when("the portal GETs every version of the patient by its _history URL")
def get_versions(kt2: Kt2World) -> None:
    kt2.notes["vreads"] = [kt2.portal.read(f"{kt2.ref('patient')}/_history/{(v.get('meta') or {}).get('versionId')}")
                           for v in _versions(kt2, "patient")]


@when(parsers.re(rf"the portal PUTs a new name for the {LABEL} with If-Match of its current version"))
def put_fresh(kt2: Kt2World, label: str) -> None:
    current = _made(kt2, label)
    sent = _renamed(kt2, current)
    answer = kt2.remember("update", kt2.portal.update(sent, kt2.version(label)))
    kt2.notes["sent"] = sent
    kt2.notes.setdefault("updates", []).append(answer)
    body = _body(answer)
    if answer.status_code == 200 and isinstance(body, dict) and body.get("id"):
        kt2.resources[label] = body
        _versions(kt2, label).append(copy.deepcopy(body))


@when(parsers.re(rf"the portal PUTs a new name for the {LABEL} without If-Match"))
def put_without_if_match(kt2: Kt2World, label: str) -> None:
    current = _made(kt2, label)
    kt2.notes["refused"] = sent = _renamed(kt2, current)
    kt2.remember("update", kt2.portal.update(sent, None))


@when(parsers.re(rf"the portal PUTs a new name for the {LABEL} with If-Match of version (?P<version>\d+)"))
def put_stale(kt2: Kt2World, label: str, version: str) -> None:
    current = _made(kt2, label)
    kt2.notes["refused"] = sent = _renamed(kt2, current)
    kt2.remember("update", kt2.portal.update(sent, version))


@when(parsers.re(rf"the portal DELETEs the {LABEL}"))
def delete_resource(kt2: Kt2World, label: str) -> None:
    _made(kt2, label)
    kt2.remember("delete", kt2.portal.delete(kt2.ref(label), kt2.version(label)))


@when(parsers.re(rf"the portal DELETEs the {LABEL} with If-Match of version (?P<version>\d+)"))
def delete_stale(kt2: Kt2World, label: str, version: str) -> None:
    _made(kt2, label)
    kt2.remember("delete", kt2.portal.delete(kt2.ref(label), version))


@when("the portal DELETEs the patient with _cascade=delete")
def delete_cascade(kt2: Kt2World) -> None:
    kt2.remember("delete", kt2.portal.fhir("DELETE", kt2.ref("patient"), params={"_cascade": "delete"},
                                           headers={"If-Match": f'W/"{kt2.version("patient")}"'}))


@when(parsers.re(rf"the portal GETs the {LABEL}'s _history"))
def get_history(kt2: Kt2World, label: str) -> None:
    kt2.remember("history", kt2.portal.read(f"{kt2.ref(label)}/_history"))


@when(parsers.re(r"the portal sends (?P<request>a read of an unknown resource type|a read of a Patient id that was "
                 r"never created|a strict search with an unknown parameter|an update of the patient without "
                 r"If-Match|an update of the patient under another id|a Patient body to the Practitioner endpoint|"
                 r"a create of a Patient with an unknown gender code)"))
def send_refused(kt2: Kt2World, request: str) -> None:
    portal, patient = kt2.portal, kt2.patient()
    version = kt2.version("patient")
    if request == "a read of an unknown resource type":
        answer = portal.read(f"KtbenchUnknownType/{uuid.uuid4()}")
    elif request == "a read of a Patient id that was never created":
        answer = portal.read(f"Patient/{uuid.uuid4()}")
    elif request == "a strict search with an unknown parameter":
        answer = portal.search("Patient", [("ktbench-no-such-parameter", "x")], headers={"Prefer": "handling=strict"})
    elif request == "an update of the patient without If-Match":
        answer = portal.update(_renamed(kt2, patient), None)
    elif request == "an update of the patient under another id":
        answer = portal.fhir("PUT", kt2.ref("patient"), body=dict(patient, id=str(uuid.uuid4())),
                             headers={"If-Match": f'W/"{version}"'})
    elif request == "a Patient body to the Practitioner endpoint":
        answer = portal.fhir("POST", "Practitioner", body=resources.patient())
    else:
        answer = portal.create(resources.changed(resources.patient(), gender="robot"))
    kt2.remember("refused", answer)


# -- search interactions -----------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{(?P<label>[a-z ]+?)(?:\.(?P<part>id|identifier))?\}")


def _resolve(kt2: Kt2World, text: str) -> str:
    def value(match: re.Match[str]) -> str:
        label, part = match["label"], match["part"]
        if label in ("portal device", "module device"):
            return (kt2.portal if label.startswith("portal") else kt2.module).device
        resource = kt2.resource(label)
        if part == "id":
            return str(resource["id"])
        if part == "identifier":
            return _identifier(resource)
        return kt2.ref(label)

    return _PLACEHOLDER.sub(value, text)


@when(parsers.re(r"the portal searches the store for (?P<query>[A-Za-z]+\?.+)"))
def search_query(kt2: Kt2World, query: str) -> None:
    rtype, _, raw = query.partition("?")
    params = []
    for item in raw.split("&"):
        key, _, val = item.partition("=")
        params.append((key, _resolve(kt2, val)))
    kt2.notes["query"] = f"{rtype}?{'&'.join(f'{k}={v}' for k, v in params)}"
    kt2.remember("search", _search(kt2, rtype, params))


@when("the portal searches both patients by _id, last updated before and since the second one")
def search_last_updated(kt2: Kt2World) -> None:
    ids = ",".join(kt2.resource(label)["id"] for label in ("first patient", "second patient"))
    since = kt2.resource("second patient")["meta"]["lastUpdated"]
    kt2.remember("before", _search(kt2, "Patient", [("_id", ids), ("_lastUpdated", f"lt{since}")]))
    kt2.remember("since", _search(kt2, "Patient", [("_id", ids), ("_lastUpdated", f"ge{since}")]))


def _follow(kt2: Kt2World, url: str) -> httpx.Response:
    """Follow a Bundle link as a forgiving client would (a relative one against the FHIR base)."""
    absolute = urljoin(kt2.bench.fhir_base.rstrip("/") + "/", url)
    return kt2.portal.fhir("GET", absolute)


@when(parsers.parse("the portal searches those patients with _count {count:d} and follows every next link"))
def search_pages(kt2: Kt2World, count: int) -> None:
    kt2.notes["count"] = count
    pages = [_search(kt2, "Patient", [("identifier", f"{kt2.notes['system']}|"), ("_count", str(count))])]
    seen: set[str] = set()
    while len(pages) <= len(kt2.notes["made"]) + 1:
        body = _body(pages[-1])
        following = _link(body, "next") if pages[-1].status_code == 200 and isinstance(body, dict) else None
        if not following or following in seen:
            break
        seen.add(following)
        pages.append(_follow(kt2, following))
    kt2.notes["pages"] = pages
    kt2.remember("search", pages[-1])


@when(parsers.re(r"the portal searches those patients (?P<sort>without _sort|with _sort=\S+)"))
def search_sorted(kt2: Kt2World, sort: str) -> None:
    params = [("identifier", f"{kt2.notes['system']}|")]
    if sort.startswith("with "):
        params.append(("_sort", sort.removeprefix("with _sort=")))
    kt2.remember("search", _search(kt2, "Patient", params))


# -- concurrency ------------------------------------------------------------------------------------------------
@when(parsers.parse("the portal and the module update the same version of the task at the same moment, "
                    "{rounds:d} times over"))
def race(kt2: Kt2World, kt_events: EventStream, rounds: int) -> None:
    kt2.task()
    apps = {"portal": kt2.portal, "module": kt2.module}
    for app in apps.values():
        app.access_token()             # tokens first: the race is between the two PUTs, not two token requests
    recorder = EventRecorder()
    unsubscribe = kt_events.subscribe(recorder, HttpExchange)
    results: list[dict[str, Any]] = []
    try:
        for number in range(rounds):
            version = kt2.version("task")
            current = kt2.resource("task")
            changes = {name: f"round {number + 1}: changed by the {name} ({uuid.uuid4().hex[:8]})" for name in apps}
            bodies = {name: resources.changed(current, description=changes[name]) for name in apps}
            answers: dict[str, httpx.Response | BaseException] = {}
            barrier = threading.Barrier(len(apps))

            def update(name: str) -> None:
                try:
                    barrier.wait(timeout=5)
                    answers[name] = apps[name].update(bodies[name], version)
                except BaseException as exc:   # handed to the main thread, which raises it there
                    answers[name] = exc

            threads = [threading.Thread(target=update, args=(name,), name=f"ktbench-{name}-put") for name in apps]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            for name, answer in answers.items():
                if isinstance(answer, BaseException):
                    raise answer
            precondition(len(answers) == len(apps), CONCURRENT, "a concurrent update did not finish within 30 s")
            results.append({"version": version, "answers": answers, "changes": changes})
            winners = [name for name, answer in answers.items() if answer.status_code == 200]   # type: ignore[union-attr]
            if len(winners) != 1:
                break                 # judged by the Then step
            won = _body(answers[winners[0]])  # type: ignore[arg-type]
            if not isinstance(won, dict) or not won.get("id"):
                break
            kt2.resources["task"] = won
    finally:
        unsubscribe()
    kt2.notes["rounds"] = results
    kt2.notes["recorded"] = recorder.of(HttpExchange)
    kt2.remember("race", kt2.portal.read(kt2.ref("task")))


# -- judging: create, read, update -------------------------------------------------------------------------------
def _location(kt2: Kt2World, answer: httpx.Response, req: str, rtype: str) -> str:
    location = answer.headers.get("location") or ""
    base = kt2.bench.fhir_base.rstrip("/")
    require(bool(location), req, f"{describe(answer)} without a Location header")
    pattern = rf"{re.escape(base)}/{rtype}/(?P<id>[A-Za-z0-9\-.]{{1,64}})/_history/(?P<version>[A-Za-z0-9\-.]+)"
    match = re.fullmatch(pattern, location)
    require(match is not None, req, f"Location {location!r} is not an absolute, versioned URL "
                                    f"{base}/{rtype}/<id>/_history/<version>")
    require(match["version"] == "1", req, f"Location {location!r} names version {match['version']}, not 1")
    return match["id"]


@then("the create answers 201 with an absolute Location of version 1 under the FHIR base")
def created_location(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(CREATE, PREFER)
    answer = kt2.answers["create"]
    expect_status(answer, 201, req, "the create")
    kt2.notes["location id"] = _location(kt2, answer, req, "Practitioner")


@then('the create answers with ETag W/"1" and a Last-Modified date')
def created_headers(kt2: Kt2World) -> None:
    answer = kt2.answers["create"]
    etag = answer.headers.get("etag", "")
    require(etag.replace(" ", "") in ('W/"1"',), CREATE, f"the create's ETag is {etag!r}, not W/\"1\"")
    modified = answer.headers.get("last-modified", "")
    try:
        from email.utils import parsedate_to_datetime

        stamp = parsedate_to_datetime(modified) if modified else None
    except (TypeError, ValueError):
        stamp = None
    require(stamp is not None, CREATE, f"the create's Last-Modified is {modified!r}, not an HTTP date")


@then("the created practitioner has a server-assigned id, versionId 1 and what the portal sent")
def created_body(kt2: Kt2World) -> None:
    answer, sent = kt2.answers["create"], kt2.notes["sent"]
    body = json_object(answer, CREATE, "the create's body")
    require(body.get("resourceType") == "Practitioner", CREATE,
            f"the create answered a {body.get('resourceType')!r}, not the stored Practitioner")
    require(body.get("id") == kt2.notes["location id"], CREATE,
            f"the body's id {body.get('id')!r} is not the id of the Location ({kt2.notes['location id']!r})")
    meta = body.get("meta") or {}
    require(str(meta.get("versionId")) == "1", CREATE, f"meta.versionId is {meta.get('versionId')!r}, not 1")
    require(_instant(meta.get("lastUpdated")) is not None, CREATE,
            f"meta.lastUpdated is {meta.get('lastUpdated')!r}, not an instant")
    differ = _same_content(body, sent, ("identifier", "name", "telecom", "active"))
    require(not differ, CREATE, f"the stored practitioner differs from what was sent in {differ}")


@then(parsers.re(r"the create's body is (?P<expected>empty|the stored practitioner|an OperationOutcome)"))
def prefer_body(kt2: Kt2World, expected: str) -> None:
    answer = kt2.answers["create"]
    if expected == "empty":
        require(not answer.content.strip(), PREFER,
                f"Prefer: return=minimal still answered a body of {len(answer.content)} bytes")
        return
    if expected == "an OperationOutcome":
        _outcome(answer, PREFER, "the create with Prefer: return=OperationOutcome")
        return
    body = json_object(answer, PREFER, "the create with Prefer: return=representation")
    require(body.get("resourceType") == "Practitioner" and body.get("id") == kt2.notes["location id"], PREFER,
            f"return=representation answered {body.get('resourceType')}/{body.get('id')}, not the stored "
            f"Practitioner/{kt2.notes['location id']}")
    require(body.get("identifier") == kt2.notes["sent"]["identifier"], PREFER,
            "return=representation answered a practitioner without the identifier that was sent")


@then("the read answers 200 with the patient's current version and its ETag")
def read_current(kt2: Kt2World) -> None:
    answer, stored = kt2.answers["read"], kt2.resource("patient")
    expect_status(answer, 200, READ, "the read")
    body = json_object(answer, READ, "the read")
    require(body.get("resourceType") == "Patient" and body.get("id") == stored["id"], READ,
            f"the read answered {body.get('resourceType')}/{body.get('id')}, not Patient/{stored['id']}")
    version = str((body.get("meta") or {}).get("versionId"))
    require(version == kt2.version("patient"), READ,
            f"the read answered version {version}, not the current version {kt2.version('patient')}")
    require(body.get("name") == stored.get("name"), READ, "the read does not answer the name of the current version")
    require(etag_version(answer) == version, READ,
            f"the read's ETag {answer.headers.get('etag')!r} does not name version {version}")


@then("each version answers as it was written, with its own versionId")
def vread_versions(kt2: Kt2World) -> None:
    written = _versions(kt2, "patient")
    require(len(written) >= 3, VREAD, "the patient has fewer than three versions")  # the Given steps made them
    for answer, version in zip(kt2.notes["vreads"], written, strict=True):
        number = str((version.get("meta") or {}).get("versionId"))
        expect_status(answer, 200, VREAD, f"the vread of version {number}")
        body = json_object(answer, VREAD, f"the vread of version {number}")
        got = str((body.get("meta") or {}).get("versionId"))
        require(got == number, VREAD, f"the vread of version {number} answered version {got}")
        require(body.get("name") == version.get("name"), VREAD,
                f"the vread of version {number} answered the name {body.get('name')!r}, not the one written then "
                f"{version.get('name')!r}")


@then(parsers.parse('the update answers 200 with versionId {version} and ETag W/"{etag}"'))
def update_answer(kt2: Kt2World, version: str, etag: str) -> None:
    answer = kt2.answers["update"]
    expect_status(answer, 200, UPDATE, "the PUT with a fresh If-Match")
    body = json_object(answer, UPDATE, "the PUT with a fresh If-Match")
    got = str((body.get("meta") or {}).get("versionId"))
    require(got == version, UPDATE, f"the update answered meta.versionId {got}, not {version}")
    require(etag_version(answer) == etag and answer.headers.get("etag", "").startswith("W/"), UPDATE,
            f"the update answered ETag {answer.headers.get('etag')!r}, not W/\"{etag}\"")


@then("a read of the patient answers version 2 with the new name")
def update_read_back(kt2: Kt2World) -> None:
    answer = _read_back(kt2, "patient")
    expect_status(answer, 200, UPDATE, "the read after the update")
    body = json_object(answer, UPDATE, "the read after the update")
    require(str((body.get("meta") or {}).get("versionId")) == "2", UPDATE,
            f"after the update the patient reads as version {(body.get('meta') or {}).get('versionId')}, not 2")
    require(body.get("name") == kt2.notes["sent"]["name"], UPDATE, "after the update the patient has not the new name")


# -- judging: refusals -------------------------------------------------------------------------------------------
@then(parsers.re(r"the voorziening (?:refuses it with|answers) (?P<codes>a 4xx|\d{3}(?:(?:, | or )\d{3})*)"
                 r"(?P<outcome> (?:and|with) an OperationOutcome(?: that names the problem)?)?"))
def refused(kt2: Kt2World, kt_requirements: ScenarioRequirements, codes: str, outcome: str | None) -> None:
    req = kt_requirements.pick(*FAMILY)
    answer = kt2.last
    if answer is None:
        raise BenchError("no earlier step sent a request")
    allowed = tuple(range(400, 500)) if codes == "a 4xx" else tuple(int(c) for c in re.findall(r"\d{3}", codes))
    if codes == "a 4xx":
        require(400 <= answer.status_code < 500, req, f"a refusal must be a 4xx, but {describe(answer)} "
                                                      f"({outcome_text(answer)})")
    else:
        expect_status(answer, allowed, req, "the request")
    if outcome:
        _outcome(answer, req, describe(answer), text="names the problem" in outcome)


def _still(kt2: Kt2World, label: str, version: str, req: str) -> None:
    answer = _read_back(kt2, label)
    expect_status(answer, 200, req, f"the read of the {label} after the refusal")
    body = json_object(answer, req, f"the read of the {label}")
    got = str((body.get("meta") or {}).get("versionId"))
    require(got == version, req, f"after the refusal the {label} reads as version {got}, not {version}: "
                                 "the refused request was stored")
    require(body.get("name") == kt2.resource(label).get("name"), req,
            f"after the refusal the {label}'s name changed: the refused request was stored")


@then(parsers.re(rf"the {LABEL} still reads as version (?P<version>\d+), unchanged"))
def still_unchanged(kt2: Kt2World, kt_requirements: ScenarioRequirements, label: str, version: str) -> None:
    _still(kt2, label, version, kt_requirements.pick(IF_MATCH, STALE, DELETE_IF_MATCH, JSON_SYNTAX))


@then("no practitioner with the identifier the portal sent was stored")
def nothing_stored(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(MEDIA, JSON_SYNTAX)
    answer = _no_match(kt2, "Practitioner", _identifier(kt2.notes["sent"]))
    bundle = _bundle(answer, req, "the search by the refused practitioner's identifier")
    found = [_entry_ref(e) for e in _entries(bundle, "match")]
    require(not found and bundle.get("total", 0) == 0, req, f"the refused create was stored anyway: {found}")


@then("the create answers 201 with an id the server chose")
def server_chose(kt2: Kt2World) -> None:
    answer = kt2.answers["create"]
    expect_status(answer, 201, SERVER_ID, "the create with an id in its body")
    body = json_object(answer, SERVER_ID, "the create with an id in its body")
    require(bool(body.get("id")) and body.get("id") != kt2.notes["chosen id"], SERVER_ID,
            f"the create kept the id the client chose ({kt2.notes['chosen id']}): ids are the server's to assign")
    location = answer.headers.get("location", "")
    require(kt2.notes["chosen id"] not in location, SERVER_ID,
            f"the Location {location!r} names the id the client chose")


@then("no practitioner exists under the id the portal chose")
def chosen_absent(kt2: Kt2World) -> None:
    answer = kt2.portal.read(f"Practitioner/{kt2.notes['chosen id']}")
    expect_status(answer, 404, SERVER_ID, "the read of the id the client chose")


# -- judging: delete, gone, history, cascade --------------------------------------------------------------------
@then("the delete answers 200 with an OperationOutcome or 204 without a body")
def deleted(kt2: Kt2World) -> None:
    answer = kt2.answers["delete"]
    expect_status(answer, (200, 204), DELETE, "the DELETE")
    if answer.status_code == 200 and answer.content.strip():
        _outcome(answer, DELETE, "the DELETE's answer")
    if answer.status_code == 204:
        require(not answer.content.strip(), DELETE, "a 204 answer to the DELETE has a body")


@then("neither a read nor a search by _id finds the practitioner any more")
def deleted_gone(kt2: Kt2World) -> None:
    answer = _read_back(kt2, "practitioner")
    expect_status(answer, (404, 410), DELETE, "the read of the deleted practitioner")
    bundle = _bundle(_search(kt2, "Practitioner", [("_id", kt2.resource("practitioner")["id"])]), DELETE,
                     "the search by the deleted practitioner's _id")
    found = [_entry_ref(e) for e in _entries(bundle, "match")]
    require(not found, DELETE, f"a search still finds the deleted practitioner: {found}")


@then("the history Bundle lists the DELETE, version 2 and version 1, newest first")
def history_entries(kt2: Kt2World) -> None:
    bundle = _bundle(kt2.answers["history"], HISTORY, "the practitioner's _history", "history")
    entries = _entries(bundle)
    methods = [str((e.get("request") or {}).get("method", "")).upper() for e in entries]
    require(len(entries) == 3, HISTORY, f"the history has {len(entries)} entries ({methods}), not 3: create, update "
                                        "and delete")
    require(bundle.get("total") in (None, 3), HISTORY, f"the history's total is {bundle.get('total')}, not 3")
    require(methods == ["DELETE", "PUT", "POST"], HISTORY,
            f"the history's request methods are {methods}, not DELETE, PUT, POST (newest first)")
    versions = [str(((e.get("resource") or {}).get("meta") or {}).get("versionId")) for e in entries[1:]]
    require(versions == ["2", "1"], HISTORY, f"the history's versions are {versions}, not 2 then 1")


@then("the history's DELETE entry carries no resource and version 1 still has the first name")
def history_delete_entry(kt2: Kt2World) -> None:
    entries = _entries(json_object(kt2.answers["history"], HISTORY, "the history"))
    deletion = entries[0]
    require(not deletion.get("resource"), HISTORY, "the DELETE entry of the history carries a resource")
    url = str((deletion.get("request") or {}).get("url", ""))
    require(kt2.resource("practitioner")["id"] in url, HISTORY,
            f"the DELETE entry's request.url {url!r} does not name the practitioner")
    first = _versions(kt2, "practitioner")[0]
    require((entries[-1].get("resource") or {}).get("name") == first.get("name"), HISTORY,
            "the history's version 1 does not carry the name it was created with")


@then("the patient and its care team are both gone")
def cascaded(kt2: Kt2World) -> None:
    answer = kt2.answers["delete"]
    if answer.status_code in (400, 405, 409, 412, 422, 501) and is_outcome(answer):
        pytest.skip(f"the voorziening does not offer _cascade=delete (MAY): {describe(answer)} "
                    f"({outcome_text(answer)})")
    expect_status(answer, (200, 202, 204), CASCADE, "the DELETE with _cascade=delete")
    for label in ("patient", "care team"):
        gone = _read_back(kt2, label)
        expect_status(gone, (404, 410), CASCADE, f"the read of the {label} after the cascading delete")


# -- judging: search -------------------------------------------------------------------------------------------
def _labels(text: str) -> list[str]:
    return [part.strip() for part in re.split(r",| and ", text.removeprefix("the ").replace(" the ", " "))
            if part.strip()]


@then(parsers.re(r"the searchset holds exactly (?P<matches>.+)"))
def exactly(kt2: Kt2World, kt_requirements: ScenarioRequirements, matches: str) -> None:
    req = kt_requirements.pick(PARAMS, INSTANTIATES, INCLUDE)
    what = f"the search {kt2.notes.get('query', '')}"
    bundle = _bundle(kt2.answers["search"], req, what)
    wanted = sorted(kt2.ref(label) for label in _labels(matches))
    found = sorted(_entry_ref(e) for e in _entries(bundle, "match"))
    require(found == wanted, req, f"{what} found {found}, not exactly {wanted} ({matches})")
    require(bundle.get("total") in (None, len(wanted)), req,   # a missing total is KT2-SEARCH-PAGING's to judge
            f"{what}: total is {bundle.get('total')!r}, not the {len(wanted)} matches")
    for entry in _entries(bundle):
        require((entry.get("search") or {}).get("mode") in ("match", "include", "outcome"), req,
                f"{what}: an entry without search.mode: {_entry_ref(entry)}")


@then("the searchset includes the patient with search.mode include")
def included(kt2: Kt2World) -> None:
    bundle = _bundle(kt2.answers["search"], INCLUDE, "the search with _include")
    refs = [_entry_ref(e) for e in _entries(bundle, "include")]
    wanted = kt2.ref("patient")
    require(refs == [wanted], INCLUDE, f"_include=Task:patient included {refs}, not exactly {wanted}")
    entry = _entries(bundle, "include")[0]
    url = entry.get("fullUrl", "")
    require(isinstance(url, str) and url.rstrip("/").endswith(wanted), INCLUDE,
            f"the included patient's fullUrl {url!r} does not name {wanted}")


@then("the search before finds only the first patient and the search since only the second")
def last_updated(kt2: Kt2World) -> None:
    for label, wanted in (("before", "first patient"), ("since", "second patient")):
        since = kt2.resource("second patient")["meta"]["lastUpdated"]
        what = f"Patient?_id=<both>&_lastUpdated={'lt' if label == 'before' else 'ge'}{since}"
        bundle = _bundle(kt2.answers[label], PARAMS, what)
        found = sorted(_entry_ref(e) for e in _entries(bundle, "match"))
        require(found == [kt2.ref(wanted)], PARAMS, f"{what} found {found}, not only the {wanted}")


def _pages(kt2: Kt2World) -> list[dict[str, Any]]:
    return [_bundle(page, PAGING, f"page {number + 1} of the search")
            for number, page in enumerate(kt2.notes["pages"])]


@then(parsers.parse("every page has total {total:d} and a self link"))
def paging_total(kt2: Kt2World, total: int) -> None:
    for number, bundle in enumerate(_pages(kt2), start=1):
        require(bundle.get("total") == total, PAGING,
                f"page {number} of the search says total {bundle.get('total')!r}, not {total}")
        require(bool(_link(bundle, "self")), PAGING, f"page {number} of the search has no self link")


@then("every next and previous link is absolute under the FHIR base")
def paging_absolute(kt2: Kt2World) -> None:
    base = kt2.bench.fhir_base.rstrip("/") + "/"
    pages = _pages(kt2)
    for number, bundle in enumerate(pages, start=1):
        for relation in ("self", "next", "previous", "prev"):
            url = _link(bundle, relation)
            if url is None:
                continue
            parts = urlsplit(url)
            require(parts.scheme in ("http", "https") and url.startswith(base), PAGING,
                    f"page {number}'s {relation} link {url!r} is not an absolute URL under the FHIR base {base}")
    require(len(pages) >= 2 and _link(pages[0], "next"), PAGING,
            f"a search of {len(kt2.notes['made'])} matches with _count {kt2.notes['count']} gave no next link")
    require(not _link(pages[-1], "next"), PAGING, "the last page still has a next link")
    for number, bundle in enumerate(pages[1:], start=2):
        require(bool(_link(bundle, "previous") or _link(bundle, "prev")), PAGING, f"page {number} has no previous link")


@then(parsers.parse("the pages hold every one of the {total:d} patients exactly once, at most {per_page:d} per page"))
def paging_once(kt2: Kt2World, total: int, per_page: int) -> None:
    seen: list[str] = []
    for number, bundle in enumerate(_pages(kt2), start=1):
        refs = [_entry_ref(e) for e in _entries(bundle, "match")]
        require(len(refs) <= per_page, PAGING, f"page {number} holds {len(refs)} entries, more than _count {per_page}")
        seen.extend(refs)
    made = sorted(f"Patient/{p['id']}" for p in kt2.notes["made"])
    twice = sorted({r for r in seen if seen.count(r) > 1})
    require(not twice, PAGING, f"paging showed {twice} more than once")
    require(sorted(seen) == made and len(made) == total, PAGING,
            f"paging showed {sorted(seen)}, not every one of the {total} patients {made}")


@then("the previous link of the last page leads back to the page before it")
def paging_previous(kt2: Kt2World) -> None:
    pages = _pages(kt2)
    url = _link(pages[-1], "previous") or _link(pages[-1], "prev")
    require(bool(url), PAGING, "the last page has no previous link")
    back = _bundle(_follow(kt2, url), PAGING, "the previous page")   # type: ignore[arg-type]
    got = [_entry_ref(e) for e in _entries(back, "match")]
    wanted = [_entry_ref(e) for e in _entries(pages[-2], "match")]
    require(got == wanted, PAGING, f"the previous link of the last page shows {got}, not the page before it {wanted}")


@then(parsers.re(r"the patients come (?P<order>newest first|oldest first) by lastUpdated"))
def sorted_patients(kt2: Kt2World, order: str) -> None:
    bundle = _bundle(kt2.answers["search"], SORT, "the search of the patients")
    made = {p["id"]: _instant(p["meta"]["lastUpdated"]) for p in kt2.notes["made"]}
    got = [(e.get("resource") or {}).get("id") for e in _entries(bundle, "match")]
    require(sorted(got) == sorted(made), SORT, f"the search found {got}, not the {len(made)} patients")
    stamps = [made[i] for i in got]
    newest_first = order == "newest first"
    pairs = list(zip(stamps, stamps[1:]))
    ordered = all(a >= b for a, b in pairs) if newest_first else all(a <= b for a, b in pairs)
    expected = [p["id"] for p in sorted(kt2.notes["made"], key=lambda p: made[p["id"]], reverse=newest_first)]
    require(ordered, SORT, f"the patients come in the order {got}, not {order} ({expected})")


# -- judging: ETags and concurrency -----------------------------------------------------------------------------
def _etag_matches(answer: httpx.Response, version: str, what: str) -> None:
    expect_status(answer, (200, 201), ETAG, what)
    etag = answer.headers.get("etag", "")
    require(bool(etag), ETAG, f"{what}: {describe(answer)} without an ETag header")
    body = json_object(answer, ETAG, what)
    meta_version = str((body.get("meta") or {}).get("versionId"))
    require(meta_version == version, ETAG, f"{what}: meta.versionId is {meta_version}, not {version}")
    require(etag.replace(" ", "") == f'W/"{version}"', ETAG,
            f"{what}: ETag {etag!r} is not W/\"{version}\" (meta.versionId {meta_version})")


@then(parsers.parse('the create, the read and each update answered ETag W/"n" matching meta.versionId, '
                    'from 1 to {last:d}'))
def etags(kt2: Kt2World, last: int) -> None:
    _etag_matches(kt2.answers["patient"], "1", "the create")
    _etag_matches(kt2.answers["read"], "1", "the read")
    updates = kt2.notes.get("updates", [])
    require(len(updates) == last - 1, ETAG, f"{len(updates)} updates were made, not {last - 1}")
    for number, answer in enumerate(updates, start=2):
        _etag_matches(answer, str(number), f"update {number - 1} (If-Match W/\"{number - 1}\")")


@then("each time exactly one update wins and the other is refused with 409 or 412")
def one_winner(kt2: Kt2World) -> None:
    for number, result in enumerate(kt2.notes["rounds"], start=1):
        answers: dict[str, httpx.Response] = result["answers"]
        statuses = {name: answer.status_code for name, answer in answers.items()}
        winners = [name for name, status in statuses.items() if status == 200]
        require(len(winners) == 1, CONCURRENT,
                f"round {number}: the two updates of version {result['version']} got {statuses}; exactly one must "
                f"win")
        loser = next(name for name in answers if name not in winners)
        expect_status(answers[loser], CONFLICT, CONCURRENT, f"round {number}: the {loser}'s update of version "
                                                             f"{result['version']} after the {winners[0]}'s")


@then("the task reads as the last winner's version, one version per round")
def race_stored(kt2: Kt2World) -> None:
    rounds = kt2.notes["rounds"]
    answer = kt2.answers["race"]
    expect_status(answer, 200, CONCURRENT, "the read of the task after the concurrent updates")
    body = json_object(answer, CONCURRENT, "the read of the task")
    version = str((body.get("meta") or {}).get("versionId"))
    start = int(rounds[0]["version"])
    require(version == str(start + len(rounds)), CONCURRENT,
            f"after {len(rounds)} rounds from version {start} the task is at version {version}, not "
            f"{start + len(rounds)}: a refused update was stored, or a winner's was lost")
    last = rounds[-1]
    winner = next(name for name, a in last["answers"].items() if a.status_code == 200)
    require(body.get("description") == last["changes"][winner], CONCURRENT,
            f"the task's description is {body.get('description')!r}, not the winning {winner}'s "
            f"{last['changes'][winner]!r}")


@then("the bench recorded every concurrent update with the status its application received")
def race_recorded(kt2: Kt2World) -> None:
    """A check of the bench itself: exchanges recorded from two threads stay paired with their own answers."""
    recorded = [e for e in kt2.notes["recorded"] if e.method == "PUT"]
    expected = [(name, answer) for result in kt2.notes["rounds"] for name, answer in result["answers"].items()]
    if len(recorded) != len(expected):
        raise BenchError(f"{len(expected)} concurrent PUTs were sent but {len(recorded)} were recorded")
    unmatched = list(recorded)
    for name, answer in expected:
        sent = json.loads(answer.request.content)
        match = next((e for e in unmatched if e.role == name and e.status == answer.status_code
                      and e.url.endswith(kt2.ref("task")) and _description(e) == sent.get("description")), None)
        if match is None:
            raise BenchError(f"the {name}'s PUT (answered {answer.status_code}, {sent.get('description')!r}) "
                             f"is not among the recorded exchanges {[(e.role, e.status) for e in unmatched]}")
        unmatched.remove(match)
        if answer.headers.get("x-request-id") and match.header("x-request-id") not in (None, answer.headers.get(
                "x-request-id")):
            raise BenchError(f"the {name}'s recorded PUT carries another answer's X-Request-Id")
        authorization = dict((k.lower(), v) for k, v in match.request_headers).get("authorization", "")
        if authorization and kt2.app(name).access_token() in authorization:
            raise BenchError(f"the {name}'s recorded PUT shows its access token unredacted")


def _description(exchange: HttpExchange) -> Any:
    try:
        return json.loads(exchange.request_body).get("description")
    except (ValueError, AttributeError):
        return None


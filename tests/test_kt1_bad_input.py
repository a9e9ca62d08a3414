"""KT1 server: bad input gets a 4xx OperationOutcome, never a 5xx or a traceback, and stores nothing (ARCHITECTURE).

Every case compares a full snapshot of the server's state tables before and
after the request, and checks that the server logged no unhandled error.
"""

from __future__ import annotations

import copy
import json

import pytest
from kt1_builders import Kt1World, ack_body, activity_definition
from kt1_support import (  # noqa: F401
    AUTHORIZE,
    MAILBOX,
    MH,
    MH_SEARCH,
    OTHER,
    OTHER_SEARCH,
    TOKEN,
    details,
    kt1,
    no_unhandled_errors,
    outcome,
    write_data,
)


def refused(kt1, send, status: int | None = None, text: str | None = None, starts: str | None = None) -> list[str]:
    """Run `send()`, require a 4xx OperationOutcome (exact text or prefix if given) and unchanged state."""
    before = kt1.snapshot()
    messages_before = kt1.headers_of("portal")
    response = send()
    texts = details(response, status)
    if text is not None:
        assert texts == [text]
    if starts is not None:
        assert texts[0].startswith(starts), texts
    assert kt1.snapshot() == before
    assert kt1.headers_of("portal") == messages_before
    return texts


def _bundle(seed=110):
    world = Kt1World(seed=seed)
    return world.careplan_message(*world.careplan_set())


def _post_raw(kt1, raw: bytes, content_type="application/json"):
    return lambda: kt1.request("POST", MAILBOX, "portal", content=raw,
                               headers={"Content-Type": content_type, "Accept": "application/json"})


def _post(kt1, bundle):
    return lambda: kt1.post_message(bundle)


# -- unparseable bodies ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, content_type, start", [
    (b'{"resourceType": "Bundle",', "application/json", "Malformed JSON: "),
    (b"\xff\xfe{}", "application/json", "Malformed JSON: "),
    (b'{"resourceType": "Bundle", "x": NaN}', "application/json", "Malformed JSON: "),
    (b"[]", "application/json", "Request body must be a JSON object"),
    (b'"Bundle"', "application/json", "Request body must be a JSON object"),
    (b"", "application/json", "Request body is empty"),
    (b"   \n", "application/json", "Request body is empty"),
    (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry>', "application/xml", "Malformed XML: "),
    (b"<feed", "text/xml", "Malformed XML: "),
    (b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
     b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&x;</title></feed>', "application/xml", "Malformed XML: "),
    (b"<notfhir/>", "application/xml", "Malformed XML: "),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", "JSON nested deeper than 100 levels"),
    (b'{"a":' + b"[" * 500 + b"]" * 500 + b"}", "application/json", "JSON nested deeper than 100 levels"),
], ids=["truncated json", "not utf-8", "NaN", "array", "string", "empty", "blank", "truncated xml",
        "xml start only", "doctype entity", "unknown xml root", "deep json", "deep json in object"])
def test_unparseable_mailbox_bodies(kt1, raw, content_type, start):
    refused(kt1, _post_raw(kt1, raw, content_type), 400, starts=start)


def test_deeply_nested_xml(kt1):
    raw = b'<feed xmlns="http://www.w3.org/2005/Atom">' + b"<entry>" * 5000 + b"</entry>" * 5000 + b"</feed>"
    refused(kt1, _post_raw(kt1, raw, "application/xml"), 400, starts="Malformed XML: ")


# -- structurally wrong bundles -------------------------------------------------------------------
def _with(change):
    bundle = _bundle()
    change(bundle)
    return bundle


def _condition(b):
    b["entry"][2]["content"] = {"resourceType": "Condition", "id": "ref900"}


def _other_usage(b):
    b["entry"][1]["content"] = {"resourceType": "Other", "code": {"coding": [
        {"system": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/OtherResourceUsage", "code": "Diary"}]}}


def _second_header(b):
    b["entry"].append(copy.deepcopy(b["entry"][0]))


BROKEN = [
    ("unknown resource type", _condition, 422, "The resource type 'Condition' is not supported"),
    ("unknown Other usage", _other_usage, 422, "The resource type 'Other/Diary' is not supported"),
    ("not a bundle", lambda b: b.update(resourceType="Patient"), 400, "A message must be a Bundle (feed)"),
    ("no entries", lambda b: b.update(entry=[]), 400, "The message bundle has no entries"),
    ("entry not a list", lambda b: b.update(entry={"a": 1}), 400, "The message bundle has no entries"),
    ("no header", lambda b: b["entry"].pop(0), 400, "A message needs exactly one MessageHeader, found 0"),
    ("two headers", _second_header, 400, "A message needs exactly one MessageHeader, found 2"),
    ("null entry", lambda b: b["entry"].append(None), 400, "Empty array element at entry[5]"),
    ("empty entry object", lambda b: b["entry"].insert(1, {}), 400, "Empty array element at entry[1]"),
    ("empty category", lambda b: b["category"].append({}), 400, "Empty array element at category[2]"),
    ("empty data ref", lambda b: b["entry"][0]["content"]["data"].append(""), 400,
     "Empty array element at entry[0].content.data[1]"),
    ("entry without content", lambda b: b["entry"][1].pop("content"), 400, "entry[1] has no resource content"),
    ("entry without id or link", lambda b: [b["entry"][2].pop(k) for k in ("id", "link")], 400,
     "entry[2] (Patient) has neither an id nor a self link"),
    ("same resource twice", lambda b: b["entry"].append(copy.deepcopy(b["entry"][2])), 400, None),
    ("header without identifier", lambda b: b["entry"][0]["content"].pop("identifier"), 400,
     "MessageHeader.identifier is required"),
    ("unknown event", lambda b: b["entry"][0]["content"]["event"].update(code="CreateOrUpdateDiary"), 400,
     "Unknown message event 'CreateOrUpdateDiary'"),
    ("event of another system", lambda b: b["entry"][0]["content"]["event"].update(system="urn:x"), 400,
     "MessageHeader.event must be a coding of http://ggz.koppeltaal.nl/fhir/Koppeltaal/MessageEvents"),
    ("no data", lambda b: b["entry"][0]["content"].pop("data"), 400,
     "MessageHeader.data must reference the focal resource"),
    ("focal missing", lambda b: b["entry"].pop(1), 400, None),
    ("category not a list", lambda b: b.update(category={"term": "x"}), 400, "Bundle.category must be an array"),
    ("header extension not a list", lambda b: b["entry"][0]["content"].update(extension={"url": "x"}), 400,
     "MessageHeader.extension must be an array"),
    ("patient ext without reference", lambda b: b["entry"][0]["content"]["extension"][0].update(valueResource="p"),
     400, "MessageHeader#Patient needs a valueResource with a reference"),
    ("Other without code", lambda b: b["entry"][1].update(content={"resourceType": "Other"}), 400,
     "entry[1]: Other resource without code"),
]


@pytest.mark.parametrize("change, status, text", [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_structurally_wrong_bundles(kt1, change, status, text):
    refused(kt1, _post(kt1, _with(change)), status, text)


def test_wrong_domain_bundle(kt1):
    world = Kt1World(seed=111, domain="ktbench-beta")
    refused(kt1, _post(kt1, world.patient_message(world.patient())), 403)


@pytest.mark.parametrize("auth", [None, ("ktbench-portal", "nope")])
def test_missing_or_bad_credentials(kt1, auth):
    refused(kt1, lambda: kt1.request("POST", MAILBOX, None, auth=auth, json=_bundle()), 401)


# -- oversized bodies -----------------------------------------------------------------------------
def test_oversized_body_is_refused_with_413(kt1, tmp_path):
    kt1.use(write_data(tmp_path, server={"max_body_bytes": 4000}))
    bundle = _bundle()
    bundle["entry"][2]["content"]["name"][0]["text"] = "x" * 5000
    refused(kt1, _post(kt1, bundle), 413, "Request body larger than 4000 bytes")


def test_oversized_chunked_body_is_refused_with_413(kt1, tmp_path):
    kt1.use(write_data(tmp_path, server={"max_body_bytes": 4000}))
    raw = json.dumps(_bundle()).encode() + b" " * 5000

    def chunks():
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]

    refused(kt1, lambda: kt1.request("POST", MAILBOX, "portal", content=chunks(),
                                     headers={"Content-Type": "application/json"}), 413)


def test_oversized_ack_and_activity_bodies(kt1, tmp_path):
    kt1.use(write_data(tmp_path, server={"max_body_bytes": 3000}))
    big = activity_definition("big", "x" * 4000)
    refused(kt1, lambda: kt1.request("POST", OTHER, json=big), 413)
    refused(kt1, lambda: kt1.request("PUT", MH + "/1", "module", json={"x": "y" * 4000}), 413)
    refused(kt1, lambda: kt1.request("POST", TOKEN, None, data={"grant_type": "x" * 4000}), 413)


# -- bad query parameters -------------------------------------------------------------------------
@pytest.fixture
def queued(kt1):
    """One New message in the module's mailbox, so a wrongly accepted claim would show."""
    world = Kt1World(seed=112)
    kt1.send(world.careplan_message(*world.careplan_set()))


CLAIM = "MessageHeader.GetNextNewAndClaim"
BAD_QUERIES = [
    ({"foo": "bar"}, "Unknown search parameter 'foo'"),
    ({"_summary": "true", "_count": "abc"}, "_count must be a whole number, got 'abc'"),
    ({"_count": "-1"}, "_count must be a whole number, got '-1'"),
    ({"_count": "²"}, "_count must be a whole number, got '²'"),
    ({"_id": "abc"}, "'abc' is not a MessageHeader id or URL"),
    ({"_id": "https://x/FHIR/Koppeltaal/MessageHeader/"}, None),
    ({"_id": "99999999999999999999999"}, "'99999999999999999999999' is not a MessageHeader id or URL"),
    ({"_query": "MessageHeader.GetAll"}, "Unknown named query 'MessageHeader.GetAll'"),
    ({"_query": CLAIM, "ProcessingStatus": "New"},
     "ProcessingStatus cannot be combined with the named query MessageHeader.GetNextNewAndClaim"),
    ({"_query": CLAIM, "processingStatus": "Claimed"}, None),
    ({"ProcessingStatus": "Bogus"}, "Unknown ProcessingStatus 'Bogus'"),
    ({"event": "CreateOrUpdateDiary"}, "Unknown event 'CreateOrUpdateDiary'"),
    ({"_query": CLAIM, "event": "Nope"}, "Unknown event 'Nope'"),
    ({"page": "0"}, "page must be a whole number from 1, got '0'"),
    ([("_count", "1"), ("_count", "2")], "Search parameter '_count' given twice"),
]


@pytest.mark.parametrize("params, text", BAD_QUERIES, ids=[str(p) for p, _ in BAD_QUERIES])
def test_bad_message_header_queries(kt1, queued, params, text):
    refused(kt1, lambda: kt1.request("GET", MH_SEARCH, "module", params=params), 400, text)


@pytest.mark.parametrize("params, text", [
    ({}, "Other/_search needs code=ActivityDefinition"),
    ({"code": "CareTeam"}, "Other/_search needs code=ActivityDefinition"),
    ({"code": "ActivityDefinition", "includearchived": "maybe"}, "includearchived must be yes or no"),
    ({"code": "ActivityDefinition", "_count": "x"}, "_count and page must be whole numbers"),
    ({"code": "ActivityDefinition", "bogus": "1"}, "Unknown search parameter 'bogus'"),
])
def test_bad_activity_queries(kt1, params, text):
    refused(kt1, lambda: kt1.request("GET", OTHER_SEARCH, params=params), 400, text)


# -- bad ack bodies -------------------------------------------------------------------------------
@pytest.fixture
def claimed(kt1):
    world = Kt1World(seed=113)
    kt1.send(world.careplan_message(*world.careplan_set()))
    return kt1.claimed("module")["entry"][0]


def _ack_cases(entry):
    good = ack_body(entry["content"], "Success")
    no_status = copy.deepcopy(good)
    no_status["extension"][-1]["extension"] = [no_status["extension"][-1]["extension"][1]]
    bad_exception = ack_body(entry["content"], "Failed")
    bad_exception["extension"][-1]["extension"].append(
        {"url": "http://ggz.koppeltaal.nl/fhir/Koppeltaal/MessageHeader#ProcessingStatusException", "valueString": 7})
    return [
        ("not a header", {**good, "resourceType": "Patient"}, 400,
         "The body of a ProcessingStatus update must be a MessageHeader"),
        ("no status extension", {**good, "extension": []}, 400, "The MessageHeader has no ProcessingStatus extension"),
        ("status missing", no_status, 400, None),
        ("exception not a string", bad_exception, 400, "ProcessingStatusException must be a string"),
        ("extension not a list", {**good, "extension": "Success"}, 400, "MessageHeader.extension must be an array"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_bad_ack_bodies(kt1, claimed, case):
    name, body, status, text = _ack_cases(claimed)[case]
    refused(kt1, lambda: kt1.request("PUT", claimed["id"], "module", json=body), status, text)


@pytest.mark.parametrize("tail", ["abc", "1/_history", "", "../../metadata"])
def test_bad_ack_urls(kt1, claimed, tail):
    body = ack_body(claimed["content"], "Success")
    refused(kt1, lambda: kt1.request("PUT", f"{MH}/{tail}", "module", json=body))


def test_malformed_ack_json(kt1, claimed):
    refused(kt1, lambda: kt1.request("PUT", claimed["id"], "module", content=b"{nope",
                                     headers={"Content-Type": "application/json"}), 400, starts="Malformed JSON")


# -- bad ActivityDefinitions ----------------------------------------------------------------------
def _ad_without(name):
    body = activity_definition("bad-ad")
    body["extension"] = [e for e in body["extension"] if not e["url"].endswith("#" + name)]
    return body


def _ad_with(name, **value):
    body = activity_definition("bad-ad")
    for ext in body["extension"]:
        if ext["url"].endswith("#" + name):
            ext.clear()
            ext.update(url="http://ggz.koppeltaal.nl/fhir/Koppeltaal/ActivityDefinition#" + name, **value)
    return body


BAD_ADS = [
    ("no identifier", _ad_without("ActivityDefinitionIdentifier"),
     "ActivityDefinition#ActivityDefinitionIdentifier is required"),
    ("no name", _ad_without("ActivityName"), "ActivityDefinition#ActivityName is required"),
    ("bad kind", _ad_with("ActivityKind", valueCoding={"code": "Movie"}), None),
    ("bad launch type", _ad_with("LaunchType", valueCode="Fax"), None),
    ("archived not boolean", _ad_with("IsArchived", valueBoolean="yes"),
     "ActivityDefinition#IsArchived must be a valueBoolean"),
    ("not Other", {**activity_definition("bad-ad"), "resourceType": "Patient"},
     "An ActivityDefinition is sent as an Other resource"),
    ("wrong code", {**activity_definition("bad-ad"), "code": {"coding": [{"code": "CareTeam"}]}},
     "Other.code must be ActivityDefinition"),
    ("extension not a list", {**activity_definition("bad-ad"), "extension": {}}, "Other.extension must be an array"),
]


@pytest.mark.parametrize("body, text", [c[1:] for c in BAD_ADS], ids=[c[0] for c in BAD_ADS])
def test_bad_activity_definitions(kt1, body, text):
    refused(kt1, lambda: kt1.request("POST", OTHER, json=body), 400, text)


def test_activity_update_on_a_bad_path(kt1):
    refused(kt1, lambda: kt1.request("PUT", OTHER + "/CareTeam:1", json=activity_definition("x")), 404,
            "No Other resource at 'CareTeam:1'")
    refused(kt1, lambda: kt1.request("PUT", OTHER + "/ActivityDefinition:999", json=activity_definition("x")), 404,
            "ActivityDefinition:999 not found")


# -- bad OAuth requests ---------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, kw, text", [
    ("GET", AUTHORIZE, {"params": {"response_type": "token", "client_id": "a"}}, "response_type must be 'code'"),
    ("GET", AUTHORIZE, {"params": {"response_type": "code", "client_id": "ktbench-module",
                                   "scope": "patient/*.read"}}, "scope must contain exactly one 'launch:<id>'"),
    ("GET", AUTHORIZE, {"params": {"response_type": "code"}}, "Missing parameter 'client_id'"),
    ("GET", TOKEN, {}, "Missing parameter 'grant_type'"),
    ("GET", TOKEN, {"params": {"grant_type": "authorization_code"}}, "Missing parameter 'code'"),
    ("GET", TOKEN, {"params": {"grant_type": "authorization_code", "code": "zzz"}}, "Unknown authorization code"),
    ("POST", TOKEN, {"json": {"grant_type": "authorization_code"}},
     "The token endpoint takes application/x-www-form-urlencoded"),
    ("POST", TOKEN, {"content": b"grant_type", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     "Malformed form body"),
])
def test_bad_oauth_requests(kt1, method, path, kw, text):
    refused(kt1, lambda: kt1.request(method, path, None, **kw), None, text)


@pytest.mark.parametrize("redirect_uri, text", [
    ("http://[", "redirect_uri is not a valid URL"),
    ("example.com/cb", "redirect_uri must be an absolute URL"),
    ("https://exa mple.com/cb", "redirect_uri must be an absolute URL"),
    ("https://example.com/\x00", "redirect_uri must be an absolute URL"),
])
def test_bad_redirect_uri_does_not_use_up_the_launch(kt1, redirect_uri, text):
    launch = kt1.request("GET", "/OAuth2/Koppeltaal/Launch", "portal", params={
        "client_id": "ktbench-module", "patient": "https://p/Patient/1", "user": "https://p/Practitioner/1"})
    launch_id = launch.headers["location"].split("launch=")[1].split("&")[0]
    params = {"response_type": "code", "client_id": "ktbench-module", "scope": f"launch:{launch_id}"}
    refused(kt1, lambda: kt1.request("GET", AUTHORIZE, None, params={**params, "redirect_uri": redirect_uri}),
            400, text)
    good = kt1.request("GET", AUTHORIZE, None, params={**params, "redirect_uri": "myapp://callback"})
    assert good.status_code == 302 and good.headers["location"].startswith("myapp://callback?code=")


# -- unknown endpoints and methods ----------------------------------------------------------------
@pytest.mark.parametrize("method, path, status, text", [
    ("GET", "/FHIR/Koppeltaal/Condition", 404, "The resource type 'Condition' is not supported"),
    ("POST", "/FHIR/Koppeltaal/Condition/1", 404, "The resource type 'Condition' is not supported"),
    ("POST", "/FHIR/Koppeltaal/Patient", 405, "POST is not supported on Patient"),
    ("GET", "/FHIR/Koppeltaal/Mailbox", 405, "GET is not supported on Mailbox"),
    ("POST", "/FHIR/Koppeltaal/metadata", 405, "POST is not supported on metadata"),
    ("GET", "/nothing", 404, "No endpoint at /nothing"),
    ("DELETE", "/OAuth2/Koppeltaal/Token", 405, "DELETE is not allowed on /OAuth2/Koppeltaal/Token"),
])
def test_unknown_endpoints_and_methods(kt1, method, path, status, text):
    refused(kt1, lambda: kt1.request(method, path, "portal"), status, text)

"""KT1 server: ActivityDefinitions as `Other` resources (kt1-protocol §1, §2.7, §9.5).

List with `code=ActivityDefinition` (archived hidden unless `includearchived=yes`),
create by POST and update/archive by PUT on the versioned link, both answering
with `Content-Location`, the only place the Python connector learns the new link.
"""

from __future__ import annotations

import re

from kt1_builders import AD, activity_definition, ext_value
from kt1_support import JSON_CT, OTHER, OTHER_SEARCH, TEXT_WRONG_VERSION, details, kt1, links, self_link  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

LOCATION = re.compile(r"^(?P<url>http://127\.0\.0\.1:\d+/FHIR/Koppeltaal/Other/ActivityDefinition:(?P<n>\d+))"
                      r"/_history/(?P<v>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:\d{3}\.\d{4})$")


def _list(kt1, who="portal", **params):
    response = kt1.request("GET", OTHER_SEARCH, who, params={"code": "ActivityDefinition", **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    return response.json()


def _identifiers(bundle):
    return sorted(ext_value(e["content"], AD + "ActivityDefinitionIdentifier") for e in bundle["entry"])


def _create(kt1, body, who="portal"):
    response = kt1.request("POST", OTHER, who, json=body)
    assert response.status_code == 201, response.text
    return response


def test_list_hides_archived_definitions(kt1):
    bundle = _list(kt1)
    assert _identifiers(bundle) == ["ktbench-elearning-1", "ktbench-game-1"]
    assert bundle["totalResults"] == "2"


def test_list_with_includearchived_yes_shows_archived_definitions(kt1):
    bundle = _list(kt1, includearchived="yes")
    assert _identifiers(bundle) == ["ktbench-archived-1", "ktbench-elearning-1", "ktbench-game-1"]
    archived = next(e for e in bundle["entry"]
                    if ext_value(e["content"], AD + "ActivityDefinitionIdentifier") == "ktbench-archived-1")
    assert ext_value(archived["content"], AD + "IsArchived") is True


def test_list_entries_have_the_served_shape(kt1):
    for entry in _list(kt1)["entry"]:
        match = LOCATION.match(self_link(entry))
        assert match, self_link(entry)
        assert entry["id"] == match["url"]
        assert entry["title"] == f"Other resource with subtype=ActivityDefinition and IID={match['n']}"
        assert entry["category"][0]["scheme"] == "http://hl7.org/fhir/tag/profile"
        content = entry["content"]
        assert content["resourceType"] == "Other"
        assert content["code"]["coding"][0]["code"] == "ActivityDefinition"
        assert content["identifier"][0]["value"] == ext_value(content, AD + "ActivityDefinitionIdentifier")
        for required in ("Application", "ActivityKind", "ActivityName"):
            assert ext_value(content, AD + required) is not None, required


def test_list_is_per_domain(kt1):
    assert _identifiers(_list(kt1, "beta-portal", includearchived="yes")) == ["ktbench-beta-game-1"]


def test_list_pages_with_next_links(kt1):
    first = _list(kt1, includearchived="yes", _count="2")
    assert len(first["entry"]) == 2 and first["totalResults"] == "3"
    nxt = links(first)["next"]
    second = kt1.http.get(nxt, auth=("ktbench-portal", "portal-secret")).json()
    assert len(second["entry"]) == 1 and "next" not in links(second)
    assert set(_identifiers(first)) | set(_identifiers(second)) == {
        "ktbench-archived-1", "ktbench-elearning-1", "ktbench-game-1"}


def test_create_answers_201_with_content_location(kt1):
    response = _create(kt1, activity_definition("kt-new-1", "New Game"))
    assert response.headers["content-type"] == JSON_CT
    match = LOCATION.match(response.headers["content-location"])
    assert match, response.headers.get("content-location")
    listed = {e["id"]: self_link(e) for e in _list(kt1)["entry"]}
    assert listed[match["url"]] == response.headers["content-location"]
    assert "kt-new-1" in _identifiers(_list(kt1))


def test_create_names_the_posting_application(kt1):
    _create(kt1, activity_definition("kt-new-2", application="SomethingElse"), who="module")
    entry = next(e for e in _list(kt1)["entry"]
                 if ext_value(e["content"], AD + "ActivityDefinitionIdentifier") == "kt-new-2")
    assert ext_value(entry["content"], AD + "Application")["display"] == "ktbench-module"


def test_update_on_the_versioned_link_gives_a_newer_content_location(kt1):
    created = _create(kt1, activity_definition("kt-upd", "Before")).headers["content-location"]
    response = kt1.request("PUT", created, json=activity_definition("kt-upd", "After"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_CT
    updated = response.headers["content-location"]
    old, new = LOCATION.match(created), LOCATION.match(updated)
    assert new["url"] == old["url"] and new["v"] > old["v"]
    entry = next(e for e in _list(kt1)["entry"] if e["id"] == new["url"])
    assert ext_value(entry["content"], AD + "ActivityName") == "After"
    assert self_link(entry) == updated


def test_update_with_a_stale_version_is_a_conflict(kt1):
    created = _create(kt1, activity_definition("kt-stale")).headers["content-location"]
    assert kt1.request("PUT", created, json=activity_definition("kt-stale", "Second")).status_code == 200
    before = kt1.snapshot()
    response = kt1.request("PUT", created, json=activity_definition("kt-stale", "Third"))
    assert details(response, 409) == [TEXT_WRONG_VERSION]
    assert kt1.snapshot() == before


def test_archiving_hides_a_definition_unless_includearchived(kt1):
    created = _create(kt1, activity_definition("kt-arch")).headers["content-location"]
    response = kt1.request("PUT", created, json=activity_definition("kt-arch", archived=True))
    assert response.status_code == 200
    assert "kt-arch" not in _identifiers(_list(kt1))
    assert "kt-arch" in _identifiers(_list(kt1, includearchived="yes"))
    # and un-archiving brings it back
    again = kt1.request("PUT", response.headers["content-location"], json=activity_definition("kt-arch"))
    assert again.status_code == 200
    assert "kt-arch" in _identifiers(_list(kt1))


def test_created_archived_definition_is_hidden(kt1):
    _create(kt1, activity_definition("kt-born-archived", archived=True))
    assert "kt-born-archived" not in _identifiers(_list(kt1))
    assert "kt-born-archived" in _identifiers(_list(kt1, includearchived="yes"))


def test_duplicate_identifier_is_refused(kt1):
    _create(kt1, activity_definition("kt-dup"))
    before = kt1.snapshot()
    text = details(kt1.request("POST", OTHER, json=activity_definition("kt-dup")), 409)
    assert text == ["An ActivityDefinition with identifier 'kt-dup' already exists"]
    assert kt1.snapshot() == before


def test_same_identifier_may_exist_in_another_domain(kt1):
    _create(kt1, activity_definition("shared-id"))
    _create(kt1, activity_definition("shared-id"), who="beta-portal")
    assert "shared-id" in _identifiers(_list(kt1, "beta-portal"))


def test_read_a_single_definition(kt1):
    location = _create(kt1, activity_definition("kt-read")).headers["content-location"]
    response = kt1.request("GET", location)
    assert response.status_code == 200
    assert ext_value(response.json(), AD + "ActivityDefinitionIdentifier") == "kt-read"


def test_update_of_another_domains_definition_is_not_found(kt1):
    beta_location = _create(kt1, activity_definition("beta-own"), who="beta-portal").headers["content-location"]
    before = kt1.snapshot()
    response = kt1.request("PUT", beta_location, json=activity_definition("beta-own", "hijacked"))
    assert response.status_code == 404
    assert kt1.snapshot() == before
    assert kt1.request("GET", beta_location).status_code == 404


def test_update_to_an_identifier_that_exists_is_refused(kt1):
    _create(kt1, activity_definition("kt-one"))
    second = _create(kt1, activity_definition("kt-two")).headers["content-location"]
    before = kt1.snapshot()
    response = kt1.request("PUT", second, json=activity_definition("kt-one"))
    assert details(response, 409) == ["An ActivityDefinition with identifier 'kt-one' already exists"]
    assert kt1.snapshot() == before

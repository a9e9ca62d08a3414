"""KT1 server: the data file (domains, applications, ActivityDefinitions, settings) is checked completely at start-up.

A typo must become one clear `DataFileError` naming the file and the place,
not a confusing 401 later on (kt1-protocol §9.3).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from kt1_support import CREDS, OTHER_SEARCH, dump_toml, kt1, write_data  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)

from simulators.kt1.data import DataFileError, default_data_path, load_data, parse_data


def _default() -> dict:
    return tomllib.loads(default_data_path().read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "data.toml"
    path.write_text(dump_toml(raw), encoding="utf-8")
    return path


def test_the_default_data_file_loads(kt1):
    data = load_data()
    assert data.domains == ("ktbench-alpha", "ktbench-beta")
    assert {a.id for a in data.applications} == {
        "ktbench-portal", "ktbench-module", "ktbench-observer", "ktbench-beta-portal", "ktbench-beta-module"}
    for username, password in CREDS.values():
        assert data.by_username(username).password == password
    assert data.settings.claim_timeout_seconds == 300 and data.settings.max_claim_expiries == 5


def test_secrets_are_not_in_reprs():
    app = load_data().by_id("ktbench-portal")
    assert "portal-secret" not in repr(app) and "portal-oauth-secret" not in repr(app)


def _change(raw: dict, what: str) -> None:
    apps, ads = raw["applications"], raw["activity_definitions"]
    if what == "unknown top-level key":
        raw["servers"] = {}
    elif what == "unknown app key":
        apps[0]["pasword"] = "x"
    elif what == "unknown setting":
        raw["server"]["claim_timeout"] = 3
    elif what == "negative setting":
        raw["server"]["claim_timeout_seconds"] = -1
    elif what == "setting of the wrong type":
        raw["server"]["webhook_attempts"] = "five"
    elif what == "undeclared domain":
        apps[1]["domain"] = "ktbench-gamma"
    elif what == "duplicate username":
        apps[1]["username"] = apps[0]["username"]
    elif what == "duplicate id":
        apps[2]["id"] = apps[0]["id"]
    elif what == "duplicate domain":
        raw["domains"].append({"name": "ktbench-alpha"})
    elif what == "no domains":
        raw["domains"] = []
    elif what == "unknown event":
        apps[0]["events"] = ["CreateOrUpdateCarePlan", "CreateOrUpdateDiary"]
    elif what == "missing password":
        del apps[0]["password"]
    elif what == "empty username":
        apps[0]["username"] = ""
    elif what == "activity of an unknown application":
        ads[0]["application"] = "nobody"
    elif what == "activity in another domain than its application":
        ads[0]["domain"] = "ktbench-beta"
    elif what == "unknown activity kind":
        ads[0]["kind"] = "Movie"
    elif what == "unknown activity key":
        ads[0]["colour"] = "red"
    elif what == "archived not a boolean":
        ads[0]["archived"] = "yes"
    elif what == "launch_url not a URL":
        apps[0]["launch_url"] = "portal/launch"
    elif what == "webhook_url not http":
        apps[1]["webhook_url"] = "ftp://127.0.0.1/hook"
    elif what == "webhook_url with a bad port":
        apps[1]["webhook_url"] = "http://127.0.0.1:99999999/hook"


ERRORS = [
    ("unknown top-level key", "unknown top-level keys: ['servers']"),
    ("unknown app key", "applications[0]: unknown keys ['pasword']"),
    ("unknown setting", "unknown [server] setting 'claim_timeout'"),
    ("negative setting", "[server] claim_timeout_seconds must be a positive float"),
    ("setting of the wrong type", "[server] webhook_attempts must be a positive int"),
    ("undeclared domain", "applications[1]: domain 'ktbench-gamma' is not declared in [[domains]]"),
    ("duplicate username", "application username 'ktbench-portal' is used twice"),
    ("duplicate id", "application id 'ktbench-portal' is used twice"),
    ("duplicate domain", "domain 'ktbench-alpha' declared twice"),
    ("no domains", "declare at least one [[domains]]"),
    ("unknown event", "applications[0]: unknown message events ['CreateOrUpdateDiary']"),
    ("missing password", "applications[0]: 'password' must be a non-empty string"),
    ("empty username", "applications[0]: 'username' must be a non-empty string"),
    ("activity of an unknown application", "activity_definitions[0]: application 'nobody' is not declared"),
    ("activity in another domain than its application",
     "activity_definitions[0]: application 'ktbench-module' is not in domain 'ktbench-beta'"),
    ("unknown activity kind", "activity_definitions[0]: kind 'Movie' is not one of"),
    ("unknown activity key", "activity_definitions[0]: unknown keys ['colour']"),
    ("archived not a boolean", "activity_definitions[0]: archived must be true or false"),
    ("launch_url not a URL", "applications[0]: launch_url 'portal/launch' is not an http(s) URL"),
    ("webhook_url not http", "applications[1]: webhook_url 'ftp://127.0.0.1/hook' is not an http(s) URL"),
    ("webhook_url with a bad port", "applications[1]: webhook_url 'http://127.0.0.1:99999999/hook' is not"),
]


@pytest.mark.parametrize("what, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_data_file_errors_are_clear(tmp_path, what, message):
    raw = _default()
    _change(raw, what)
    path = _write(tmp_path, raw)
    with pytest.raises(DataFileError) as caught:
        load_data(path)
    text = str(caught.value)
    assert text.startswith(str(path) + ": "), text
    assert message in text, text


def test_invalid_toml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[[domains]\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="not valid TOML"):
        load_data(broken)
    with pytest.raises(DataFileError, match="data file not found"):
        load_data(tmp_path / "absent.toml")


def test_parse_data_names_its_source():
    with pytest.raises(DataFileError, match=r"^<data>: declare at least one \[\[domains\]\]"):
        parse_data({})


def test_create_app_refuses_a_bad_data_file(tmp_path):
    from simulators.kt1.app import create_app
    raw = _default()
    _change(raw, "duplicate username")
    with pytest.raises(DataFileError):
        create_app(_write(tmp_path, raw))


def test_a_custom_data_file_defines_domains_apps_and_activities(kt1, tmp_path):
    raw = {
        "server": {"claim_timeout_seconds": 12},
        "domains": [{"name": "clinic"}],
        "applications": [{"id": "clinic-portal", "domain": "clinic", "username": "cp", "password": "pw",
                          "client_secret": "cs", "events": ["CreateOrUpdatePatient"]}],
        "activity_definitions": [{"domain": "clinic", "identifier": "walk", "name": "Walk", "kind": "Meeting",
                                  "application": "clinic-portal", "launch_type": "None"}],
    }
    kt1.use(_write(tmp_path, raw))
    assert kt1.ctx.settings.claim_timeout_seconds == 12.0
    listed = kt1.request("GET", OTHER_SEARCH, None, auth=("cp", "pw"), params={"code": "ActivityDefinition"})
    assert listed.status_code == 200
    assert [e["content"]["identifier"][0]["value"] for e in listed.json()["entry"]] == ["walk"]
    assert kt1.request("GET", OTHER_SEARCH, "portal", params={"code": "ActivityDefinition"}).status_code == 401


def test_write_data_helper_round_trips(tmp_path):
    path = write_data(tmp_path, server={"webhook_retry_delay_seconds": 0.05},
                      apps={"ktbench-module": {"webhook_url": "http://127.0.0.1:1/hook"}})
    data = load_data(path)
    assert data.settings.webhook_retry_delay_seconds == 0.05
    assert data.by_id("ktbench-module").webhook_url == "http://127.0.0.1:1/hook"

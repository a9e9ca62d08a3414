"""The pieces of the KT1 application-under-test mode, one at a time: the simulated applications' trigger and SSO
endpoints with bad input (4xx JSON, never a 500), the settings, the preflight, the briefing, the targets-file
round trip, and the traceability of scenarios, catalogue, faults and checks."""

from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path

import httpx
import pytest
from pytest_bdd.parser import FeatureParser

from ktbench.cli.registry import build_registry
from ktbench.driver.contract import make_action, schema_problems
from ktbench.generations.kt1 import GENERATION
from ktbench.generations.kt1.apps import (
    Kt1AppSettings,
    embedded_app,
    preflight,
)
from ktbench.targets.reader import load_targets_file
from ktbench.targets.writer import write_targets_file
from simulators.kt1.apps.faults import MODULE_FAULTS, PORTAL_FAULTS
from simulators.kt1.apps.host import running_kt1_app

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "features" / "kt1" / "apps"
CATALOGUE = FEATURES / "requirements.toml"


def _roles(kind: str):
    return GENERATION.default_roles(kind)


@pytest.fixture(scope="module")
def module_app():
    creds = _roles("kt1-module")["module"]
    with running_kt1_app("module", server_url="http://127.0.0.1:9", creds=creds) as app:
        yield app


@pytest.mark.parametrize("body, status, text", [
    (b"not json", 400, "not JSON"),
    (b"[]", 400, "breaks action.schema.json"),
    (b'{"ktbench_driver": 1, "id": "x", "action": "dance"}', 400, "breaks action.schema.json"),
    (b"{" + b" " * 70_000 + b"}", 413, "too large"),
])
def test_trigger_refuses_bad_actions_with_json(module_app, body, status, text) -> None:
    answer = httpx.post(module_app.trigger_url, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status
    assert text in answer.json()["error"]


def test_trigger_answers_replies_that_follow_the_contract(module_app) -> None:
    ping = make_action("ping", generation="kt1", role="module", instruction="ready?")
    reply = httpx.post(module_app.trigger_url, json=ping).json()
    assert schema_problems(reply, "reply") == [] and reply["status"] == "done" and reply["id"] == ping["id"]
    other = make_action("ping", generation="kt1", role="portal", instruction="ready?")
    assert httpx.post(module_app.trigger_url, json=other).json()["status"] == "unsupported"
    foreign = make_action("send-patient", generation="kt1", role="module", instruction="send",
                          params={"patient": {"identifier": "1", "family": "A", "given": "B"}})
    assert httpx.post(module_app.trigger_url, json=foreign).json()["status"] == "unsupported"
    # the server it should talk to is not there: the reply says so, the endpoint does not crash
    report = make_action("report-status", generation="kt1", role="module", instruction="report",
                         params={"status": "InProgress", "activity": "nothing-assigned"})
    assert httpx.post(module_app.trigger_url, json=report).json()["status"] == "refused"


@pytest.mark.parametrize("path", ["/launch", "/launch?iss=http://127.0.0.1:1/FHIR/Koppeltaal&launch=1",
                                  "/redirect", "/redirect?code=abc&state=unknown"])
def test_sso_endpoints_refuse_bad_input_with_json(module_app, path) -> None:
    answer = httpx.get(module_app.url + path)
    assert 400 <= answer.status_code < 500
    assert "error" in answer.json()


def test_settings_check_their_keys() -> None:
    with pytest.raises(ValueError, match="launch_url"):
        Kt1AppSettings(driver="interactive", launch_url="ftp://x")
    with pytest.raises(ValueError, match="trigger_url"):
        Kt1AppSettings(driver="http")
    with pytest.raises(ValueError):
        Kt1AppSettings(driver="interactive", unknown_key=1)


def test_target_round_trips_through_a_targets_file(tmp_path: Path) -> None:
    with embedded_app("kt1-module", _roles("kt1-module")) as target:
        path = write_targets_file(tmp_path / "targets.toml", [target])
    read = load_targets_file(path, build_registry()).get(target.name)
    assert read.kind == "kt1-module" and read.settings == target.settings
    assert read.role("module").client_secret.reveal() == target.role("module").client_secret.reveal()


def test_preflight_names_what_is_missing() -> None:
    target = GENERATION.target_for_url("http://127.0.0.1:9", "kt1-portal", name="vendor")
    problems = preflight(target)
    assert [p.kind for p in problems] == ["configuration"]
    assert "server_port" in problems[0].message
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = target.model_copy(update={"settings": target.settings.model_copy(update={"server_port": port})})
        assert any("in use" in p.message for p in preflight(taken))


def test_briefing_names_server_and_credentials() -> None:
    with embedded_app("kt1-module", _roles("kt1-module")) as target:
        lines = "\n".join(GENERATION.application_briefing(target))
        assert f"http://127.0.0.1:{target.settings.server_port}/FHIR/Koppeltaal" in lines
        creds = target.role("module")
        assert creds.app_id in lines and creds.password.reveal() in lines and creds.client_secret.reveal() in lines
        assert target.settings.launch_url in lines


# -- traceability ------------------------------------------------------------------------------------------
def _catalogue() -> dict[str, dict]:
    return {r["id"]: r for r in tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))["requirement"]}


def _scenarios() -> list[tuple[str, set[str]]]:
    found = []
    for path in sorted(FEATURES.glob("*.feature")):
        feature = FeatureParser(str(FEATURES), path.name).parse()
        found += [(s.name, set(s.tags) | set(feature.tags)) for s in feature.scenarios.values()]
    return found


def test_every_scenario_names_catalogued_requirements_of_its_role() -> None:
    catalogue = _catalogue()
    for name, tags in _scenarios():
        reqs = {t.removeprefix("req:") for t in tags if t.startswith("req:")}
        roles = {t.removeprefix("role:") for t in tags if t.startswith("role:")}
        assert reqs and roles and roles <= {"portal", "module"}, name
        assert reqs <= set(catalogue), (name, reqs - set(catalogue))
        assert {catalogue[r]["actor"] for r in reqs} == roles, name


def test_every_requirement_has_a_scenario_or_the_suite_profile() -> None:
    tagged = {t.removeprefix("req:") for _, tags in _scenarios() for t in tags if t.startswith("req:")}
    suites = {s.profile_requirement for s in GENERATION.suites if s.name.startswith("kt1-apps-")}
    assert set(_catalogue()) == tagged | suites


def test_scenario_counts_per_role() -> None:
    counts = {"portal": 0, "module": 0}
    for _, tags in _scenarios():
        for role in counts:
            counts[role] += f"role:{role}" in tags
    assert all(10 <= n <= 14 for n in counts.values()), counts


def test_faults_break_catalogued_requirements_of_their_role() -> None:
    catalogue = _catalogue()
    assert len(PORTAL_FAULTS) >= 8 and len(MODULE_FAULTS) >= 8
    for faults, actor in ((PORTAL_FAULTS, "portal"), (MODULE_FAULTS, "module")):
        for fault in faults.values():
            assert all(catalogue[r]["actor"] == actor for r in fault.breaks), fault.name


def test_every_requirement_a_step_names_is_catalogued() -> None:
    catalogue = set(_catalogue())
    named = set()
    for path in (REPO / "steps" / "kt1_apps").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= {"KT1-APP-PORTAL-" + m for m in re.findall(r'P \+ "([A-Z-]+)"', text)}
        named |= {"KT1-APP-MODULE-" + m for m in re.findall(r'M \+ "([A-Z-]+)"', text)}
        named |= set(re.findall(r'"(KT1-APP-[A-Z]+-[A-Z][A-Z-]*)"', text))
    assert named and named <= catalogue, named - catalogue

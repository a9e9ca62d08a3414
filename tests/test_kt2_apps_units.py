"""Unit tests of the KT2 application-under-test pieces: the JWT checks, the simulated applications' driver and
launch endpoints (bad input is a 4xx with a reason, never a 500), the fault catalogues and the traceability of
features/kt2/apps (every scenario names catalogued requirements of its role; every testable one is verified)."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pytest_bdd.parser import FeatureParser

from ktbench.driver.contract import make_action
from ktbench.generations.kt2.apps import SUITES
from ktbench.http.inbound import InboundLog
from simulators.common.host import running_asgi
from simulators.kt2.actors import KeyRing
from simulators.kt2.apps.faults import MODULE_FAULTS, PORTAL_FAULTS
from simulators.kt2.apps.module import SimulatedModule
from simulators.kt2.apps.portal import SimulatedPortal
from steps.kt2_apps import jwt_checks
from steps.kt2_apps.versions import version_before

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "features" / "kt2" / "apps"
BASE = "http://127.0.0.1:9/api/v1/ktbench-alpha/fhir/r4"


# -- JWT checks ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generated("RS256")


def test_a_good_assertion_passes_every_check(ring: KeyRing) -> None:
    now = int(time.time())
    claims = {"iss": "app", "sub": "app", "aud": "https://x/token", "iat": now, "exp": now + 120, "jti": "j1"}
    token = ring.current.sign(claims)
    decoded = jwt_checks.decode(token)
    assert not decoded.problem
    assert jwt_checks.signature_problems(token, decoded, ring.jwks()) == []
    assert jwt_checks.lifetime_problems(decoded.claims, now) == []
    assert jwt_checks.assertion_claim_problems(decoded.claims, "app", ("https://x/token",)) == []
    assert jwt_checks.jwks_problems(ring.jwks()) == []


def test_bad_assertions_are_named(ring: KeyRing) -> None:
    now = int(time.time())
    claims = {"iss": "other", "sub": "app", "aud": "https://x/fhir", "iat": now, "exp": now + 3600}
    no_kid = ring.current.sign(claims, {"kid": None})
    assert "no kid" in jwt_checks.signature_problems(no_kid, jwt_checks.decode(no_kid), ring.jwks())[0]
    stranger = KeyRing.generated("RS256").current
    stranger.kid = ring.current.kid
    forged = stranger.sign(claims)
    assert "does not verify" in jwt_checks.signature_problems(forged, jwt_checks.decode(forged), ring.jwks())[0]
    problems = jwt_checks.assertion_claim_problems(claims, "app", ("https://x/token",))
    assert any("iss" in p for p in problems) and any("aud" in p for p in problems) and "no jti" in problems
    assert any("3600" in p for p in jwt_checks.lifetime_problems(claims, now))
    assert jwt_checks.decode("not a jwt").problem


def test_a_jwks_with_private_members_is_refused(ring: KeyRing) -> None:
    leaky = KeyRing(list(ring.keys), published_private=True)
    assert any("private" in p for p in jwt_checks.jwks_problems(leaky.jwks()))
    assert jwt_checks.jwks_problems({"keys": []})


def test_the_version_before_a_put_comes_from_the_latest_etag() -> None:
    log = InboundLog()
    path = "/api/v1/d/fhir/r4/Patient"
    log.record(method="POST", path=path, query="", request_headers=(), request_body=b"{}", status=201,
               response_headers=(("etag", 'W/"1"'),), response_body=b'{"id": "p1"}')
    log.record(method="GET", path=path + "/p1", query="", request_headers=(), request_body=b"", status=200,
               response_headers=(("etag", 'W/"2"'),), response_body=b"{}")
    put = log.record(method="PUT", path=path + "/p1", query="", request_headers=(), request_body=b"{}",
                     status=200, response_headers=(("etag", 'W/"3"'),), response_body=b"{}")
    assert version_before(log.since(0), put) == "2"


# -- the simulated applications' endpoints ------------------------------------------------------------------------
@contextmanager
def serving(app) -> Iterator[httpx.Client]:
    """The application on a real loopback server (as the bench reaches it), with a client for it."""
    with running_asgi(app.asgi, name="unit") as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client
    app.close()


@pytest.fixture
def portal() -> Iterator[httpx.Client]:
    with serving(SimulatedPortal(fhir_base=BASE, client_id="p")) as client:
        yield client


def test_the_trigger_checks_actions_against_the_schema(portal: httpx.Client) -> None:
    bad = portal.post("/ktbench/trigger", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid-json"
    broken = portal.post("/ktbench/trigger", json={"action": "ping"})
    assert broken.status_code == 400 and broken.json()["problems"]
    ping = make_action("ping", generation="kt2", role="portal", instruction="ping")
    assert portal.post("/ktbench/trigger", json=ping).json()["status"] == "done"
    other = make_action("process-mailbox", generation="kt2", role="portal", instruction="x")
    assert portal.post("/ktbench/trigger", json=other).json()["status"] == "unsupported"
    wrong_role = make_action("ping", generation="kt1", role="module", instruction="x")
    assert portal.post("/ktbench/trigger", json=wrong_role).json()["status"] == "unsupported"


def test_a_launch_without_a_form_is_refused_without_a_crash() -> None:
    with serving(SimulatedModule(fhir_base=BASE, client_id="m")) as client:
        assert client.post("/launch", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        assert client.post("/launch", data={"iss": BASE}).status_code == 400
        assert client.post("/launch", data={"launch": "x", "iss": "https://elsewhere"}).status_code == 400
        assert client.get("/launch").status_code == 405


def test_the_published_jwks_is_public_unless_the_fault_leaks_it() -> None:
    with serving(SimulatedPortal(fhir_base=BASE, client_id="p")) as client:
        good = client.get("/jwks").json()
    with serving(SimulatedPortal(fhir_base=BASE, client_id="p", faults=frozenset({"jwks-private-keys"}))) as client:
        leaky = client.get("/jwks").json()
    assert jwt_checks.jwks_problems(good) == [] and jwt_checks.jwks_problems(leaky)


# -- catalogue, features, faults ----------------------------------------------------------------------------------
def _catalogue() -> dict[str, dict]:
    data = tomllib.loads((FEATURES / "requirements.toml").read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["requirement"]}


def _scenarios() -> list[tuple[str, str, set[str]]]:
    found = []
    for path in sorted(FEATURES.glob("*.feature")):
        feature = FeatureParser(str(FEATURES), path.name).parse()
        for scenario in feature.scenarios.values():
            found.append((path.name, scenario.name, set(scenario.tags) | set(feature.tags)))
    return found


def test_every_scenario_names_catalogued_requirements_of_its_role() -> None:
    catalogue = _catalogue()
    scenarios = _scenarios()
    for role in ("portal", "module"):
        assert sum(1 for *_, tags in scenarios if f"role:{role}" in tags) >= 10, role
    for feature, name, tags in scenarios:
        roles = {t.split(":", 1)[1] for t in tags if t.startswith("role:")}
        reqs = {t.split(":", 1)[1] for t in tags if t.startswith("req:")}
        assert len(roles) == 1 and roles <= {"portal", "module"}, f"{feature}: {name!r} roles {roles}"
        assert reqs, f"{feature}: {name!r} has no @req:"
        for rid in reqs:
            assert rid in catalogue, f"{feature}: {name!r} names uncatalogued {rid}"
            assert catalogue[rid]["actor"] in roles, f"{feature}: {name!r}: {rid} is a {catalogue[rid]['actor']} rule"
            assert "not_tested" not in catalogue[rid], f"{feature}: {name!r} verifies not_tested {rid}"


def test_every_testable_requirement_is_verified() -> None:
    used = {t.split(":", 1)[1] for *_, tags in _scenarios() for t in tags if t.startswith("req:")}
    used |= {s.profile_requirement for s in SUITES}
    entries = _catalogue().values()
    missing = [e["id"] for e in entries if "not_tested" not in e and e["id"] not in used]
    assert not missing, missing
    for entry in entries:
        assert entry["conformance"] in ("SHALL", "SHOULD", "MAY") and entry["statement"] and entry["source"]


@pytest.mark.parametrize(("role", "faults"), [("portal", PORTAL_FAULTS), ("module", MODULE_FAULTS)])
def test_fault_catalogues_break_requirements_their_role_suite_verifies(role: str, faults) -> None:
    assert len(faults) >= 8
    carried = {t.split(":", 1)[1] for *_, tags in _scenarios() if f"role:{role}" in tags
               for t in tags if t.startswith("req:")}
    for fault in faults.values():
        assert set(fault.breaks) <= carried, f"{fault.name} breaks {fault.breaks}, not all verified by {role}"


def test_the_trigger_reply_never_echoes_a_token() -> None:
    """A reply's detail goes into the report: the simulated apps put no token in it."""
    with serving(SimulatedPortal(fhir_base=BASE, client_id="p")) as client:
        reply = client.post("/ktbench/trigger", json=make_action(
            "send-patient", generation="kt2", role="portal", instruction="x",
            params={"patient": {"identifier": "i", "family": "f", "given": "g"}})).json()
    assert reply["status"] == "done" and "eyJ" not in json.dumps(reply)


def test_the_kill_files_cover_every_fault_once() -> None:
    from tests import (
        test_kt2_apps_kill_module_audit,
        test_kt2_apps_kill_module_launch,
        test_kt2_apps_kill_module_path_b,
        test_kt2_apps_kill_module_publish,
        test_kt2_apps_kill_portal_audit,
        test_kt2_apps_kill_portal_tokens,
        test_kt2_apps_kill_portal_writes,
    )
    from tests.kt2_apps_support import split_covers

    assert split_covers(PORTAL_FAULTS, test_kt2_apps_kill_portal_tokens.NAMES, test_kt2_apps_kill_portal_writes.NAMES,
                        test_kt2_apps_kill_portal_audit.NAMES)
    assert split_covers(MODULE_FAULTS, test_kt2_apps_kill_module_publish.NAMES,
                        test_kt2_apps_kill_module_launch.NAMES, test_kt2_apps_kill_module_path_b.NAMES,
                        test_kt2_apps_kill_module_audit.NAMES)


def test_the_path_faults_decide_the_embedded_modules_path() -> None:
    """Path-A-only faults run on path A, path-B-only faults on path B (their kill runs need their own path);
    both sets are module faults and disjoint."""
    from simulators.kt2.apps.faults import PATH_A_FAULTS, PATH_B_FAULTS

    assert PATH_A_FAULTS <= set(MODULE_FAULTS) and PATH_B_FAULTS <= set(MODULE_FAULTS)
    assert not PATH_A_FAULTS & PATH_B_FAULTS


def test_the_pkce_challenge_of_the_bench_is_rfc_7636() -> None:
    """RFC 7636 appendix B: the verifier dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk gives this S256 challenge."""
    from steps.kt2_apps.steps_path_b import s256

    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_simulated_module_refuses_an_unknown_launch_path() -> None:
    from simulators.kt2.apps.module import SimulatedModule

    with pytest.raises(ValueError):
        SimulatedModule(fhir_base="http://127.0.0.1:9/fhir", client_id="m", launch_path="C")


def test_preflight_names_settings_the_bench_cannot_work_with() -> None:
    from ktbench.generations.kt2.apps import Kt2AppSettings, preflight
    from ktbench.targets.model import Target

    def target(**changes) -> Target:
        settings = Kt2AppSettings(**{"driver": "http", "trigger_url": "http://127.0.0.1:9/t", "server_port": 18080,
                                     "client_id": "acme", "jwks_url": "http://127.0.0.1:9/jwks", **changes})
        return Target(name="acme", kind="kt2-module", url="http://127.0.0.1:9", settings=settings)

    assert preflight(target(server_port=0))[0].kind == "configuration"
    assert preflight(target(server_tls=True))[0].kind == "configuration"
    assert preflight(target(action_timeout_seconds=1))[0].kind == "unreachable"
    with pytest.raises(ValueError):
        Kt2AppSettings(driver="http", trigger_url="http://x/t", client_id="bad id", jwks_url="http://x/j")

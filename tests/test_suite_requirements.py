"""The KT1 suite's traceability: scenario tags and the requirements catalogue stay in step.

Every scenario must name at least one requirement (@req:) and one role
(@role:); every requirement tag must exist in features/kt1/requirements.toml;
every catalogued requirement is either verified by a scenario or says why
not (not_tested); and every requirement id a step asserts with is catalogued.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pytest_bdd.parser import FeatureParser

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "features" / "kt1"
CATALOGUE = FEATURES / "requirements.toml"
STEPS = REPO / "steps" / "kt1"
ID_RE = re.compile(r"^KT1-[A-Z0-9]+(-[A-Z0-9]+)*$")
ROLES = {"portal", "module", "observer", "server"}


def _catalogue() -> dict[str, dict]:
    data = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["requirement"]}


def _scenarios() -> list[tuple[str, str, set[str]]]:
    found = []
    for path in sorted(FEATURES.glob("*.feature")):
        feature = FeatureParser(str(FEATURES), path.name).parse()
        for scenario in feature.scenarios.values():
            tags = set(scenario.tags) | set(feature.tags)
            found.append((path.name, scenario.name, tags))
    return found


def test_catalogue_entries_are_complete_and_unique() -> None:
    raw = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))["requirement"]
    ids = [entry["id"] for entry in raw]
    assert len(ids) == len(set(ids)), f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}"
    for entry in raw:
        assert ID_RE.match(entry["id"]), f"badly formed id {entry['id']!r}"
        assert entry.get("source", "").strip(), f"{entry['id']}: no source"
        assert entry.get("statement", "").strip(), f"{entry['id']}: no statement"
        assert set(entry) <= {"id", "actor", "conformance", "source", "statement", "not_tested"}, \
            f"{entry['id']}: unknown keys"
        assert entry.get("actor", "").strip(), f"{entry['id']}: no actor"
        assert entry.get("conformance") in ("SHALL", "SHOULD", "MAY"), f"{entry['id']}: conformance"
        assert "/work/" not in entry["source"] and not entry["source"].startswith("/"), \
            f"{entry['id']}: sources are named relative to the repository, never by a machine's path"


def test_every_scenario_names_a_catalogued_requirement_and_a_role() -> None:
    catalogue = _catalogue()
    scenarios = _scenarios()
    assert len(scenarios) >= 60, "the KT1 suite lost scenarios"
    for feature, name, tags in scenarios:
        reqs = {t.split(":", 1)[1] for t in tags if t.startswith("req:")}
        roles = {t.split(":", 1)[1] for t in tags if t.startswith("role:")}
        assert reqs, f"{feature}: scenario {name!r} has no @req: tag"
        assert roles and roles <= ROLES, f"{feature}: scenario {name!r} has role tags {sorted(roles)}"
        unknown = reqs - set(catalogue)
        assert not unknown, f"{feature}: scenario {name!r} names uncatalogued requirements {sorted(unknown)}"
        untestable = [r for r in reqs if "not_tested" in catalogue[r]]
        assert not untestable, f"{feature}: {name!r} verifies {untestable}, which the catalogue calls not_tested"


def test_every_testable_requirement_is_verified_by_a_scenario() -> None:
    from ktbench.generations.kt1 import GENERATION

    used = {t.split(":", 1)[1] for _, _, tags in _scenarios() for t in tags if t.startswith("req:")}
    used |= set(GENERATION.suites[0].implicit_requirements)  # checked on every exchange of every scenario
    uncovered = [rid for rid, entry in _catalogue().items() if "not_tested" not in entry and rid not in used]
    assert not uncovered, f"catalogued but verified by no scenario (add one, or a not_tested reason): {uncovered}"


def test_step_assertions_name_catalogued_requirements() -> None:
    catalogue = _catalogue()
    named = set()
    for path in STEPS.glob("*.py"):
        named |= set(re.findall(r'"(KT1-[A-Z0-9-]+)"', path.read_text(encoding="utf-8")))
    assert named, "the steps name no requirement ids"
    unknown = sorted(named - set(catalogue))
    assert not unknown, f"steps assert requirements missing from the catalogue: {unknown}"


def test_the_suite_is_one_scenarios_module_over_the_features_folder() -> None:
    modules = sorted(p.name for p in STEPS.glob("test_*.py"))
    assert modules == ["test_kt1.py"], modules
    text = (STEPS / "test_kt1.py").read_text(encoding="utf-8")
    # the folder's own feature files only: features/kt1/apps/ holds the application-under-test suites
    assert '(Path(__file__).resolve().parents[2] / "features" / "kt1").glob("*.feature")' in text


def test_the_catalogue_loads_with_its_actor_and_conformance_columns() -> None:
    from ktbench.core.requirements import load_catalogue

    catalogue = load_catalogue(CATALOGUE)
    assert len(catalogue.requirement) == len(_catalogue())
    assert {r.conformance for r in catalogue.requirement} >= {"SHALL", "MAY"}
    assert catalogue.not_tested() and all(catalogue.not_tested().values())

"""Official StructureDefinitions as profiles: the old KT2 package (v0.8, snapshots) from ../shared.

Proves that rules come from the loaded package (not only from the built-in
v0.16.3 profiles): a Task owned by a RelatedPerson is fine in v0.16.3 but not
in v0.8, and the package's profile ids show up in the result.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from test_validation_support import SHARED, errors, kt2_example, mutated
from ktbench.validation import validate_bytes, validate_resource
from ktbench.validation.sdpackage import PackageError, load_package

PACKAGE = SHARED / "kt2" / "package-0.8"
pytestmark = pytest.mark.skipif(not PACKAGE.is_dir(), reason=f"KT2 package 0.8 not available at {PACKAGE}")


@pytest.fixture(scope="module")
def pkg():
    return load_package(PACKAGE)


def test_package_loads_all_resource_profiles(pkg) -> None:
    types = sorted(p.type for k, p in pkg.profiles.items() if k.startswith("http"))
    assert types == ["ActivityDefinition", "AuditEvent", "CareTeam", "Device", "Endpoint", "Organization",
                     "Patient", "Practitioner", "Subscription", "Task"]
    task = pkg.profiles["http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"]
    assert task.elements["Task.identifier"].min == 1
    assert task.elements["Task.priority"].fixed == "routine"
    assert "http://vzvz.nl/fhir/StructureDefinition/instantiates" in task.extensions["Task"]


@pytest.mark.parametrize("name", ["task-minimaal", "task-met-view-code", "patient-botje-minimaal", "careteam-deelnemers",
                                  "device-volledig", "endpoint123", "organization-naam-type", "practitioner-volledig",
                                  "subscription-123", "activitydefinition234", "auditevent-launch-application"])
def test_conforming_resources_pass(pkg, name: str) -> None:
    result = validate_resource(kt2_example(name), kt=2, package=pkg)
    assert errors(result) == [], result.to_text()
    assert result.profiles and result.profiles[0].endswith("|0.8")


CASES = [
    ("task-minimaal", lambda r: r.pop("identifier"), ("kt2.cardinality", "Task.identifier")),
    ("task-minimaal", lambda r: r.update(priority="urgent"), ("kt2.fixed", "Task.priority")),
    ("task-minimaal", lambda r: r["extension"].append({"url": "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin", "valueString": "x"}),
     ("kt2.extension-type", "Task.extension[1].valueString")),
    ("patient-botje-minimaal", lambda r: r["name"][0].pop("family"), ("kt2.cardinality", "Patient.name[0].family")),
    ("patient-botje-minimaal", lambda r: r.update(gender="F"), ("kt2.binding", "Patient.gender")),
    ("endpoint123", lambda r: r["connectionType"].update(code="x"), ("kt2.fixed", "Endpoint.connectionType")),
    ("device-volledig", lambda r: r["identifier"][0].update(system="x"), ("kt2.fixed", "Device.identifier[0].system")),
    ("subscription-123", lambda r: r["channel"].update(type="email"), ("kt2.fixed", "Subscription.channel.type")),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), CASES, ids=[c[2][1] for c in CASES])
def test_mutations_fail_at_location(pkg, name, mutate, expected) -> None:
    result = validate_resource(mutated(kt2_example(name), mutate), kt=2, package=pkg)
    assert expected in errors(result), result.to_text()


def test_package_rules_differ_from_built_in(pkg) -> None:
    related_owner = mutated(kt2_example("task-minimaal"), lambda r: r["owner"].update(reference="RelatedPerson/r1", type="RelatedPerson"))
    assert validate_resource(related_owner, kt=2).ok  # v0.16.3 allows RelatedPerson owners
    result = validate_resource(related_owner, kt=2, package=pkg)
    assert errors(result) == [("kt2.reference", "Task.owner")], result.to_text()


def test_tgz_package(tmp_path: Path) -> None:
    tgz = tmp_path / "kt2-0.8.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for f in sorted(PACKAGE.glob("*.json")):
            tar.add(f, arcname=f"package/{f.name}")
    pkg = load_package(tgz)
    assert "http://koppeltaal.nl/fhir/StructureDefinition/KT2Patient" in pkg.profiles
    data = __import__("json").dumps(mutated(kt2_example("task-minimaal"), lambda r: r.pop("identifier"))).encode()
    result = validate_bytes(data, package=tgz)
    assert ("kt2.cardinality", "Task.identifier") in errors(result)


def test_bad_packages_raise_a_package_error(tmp_path: Path) -> None:
    with pytest.raises(PackageError):
        load_package(tmp_path / "missing.tgz")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(PackageError):
        load_package(empty)
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(PackageError):
        load_package(broken)

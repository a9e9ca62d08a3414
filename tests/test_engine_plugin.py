"""ktbench.runner units: tag expressions, tag parsing, outcome classification and which requirement a
failure blames; the generation seam's registry; the engine's import rule."""

from __future__ import annotations

import pytest

import ast
from pathlib import Path

from ktbench.core.errors import BenchError, ConfigurationError, PreconditionFailed, RequirementFailed, TargetConfigError
from ktbench.core.generation import GenerationRegistry, import_generation
from ktbench.core.requirements import ScenarioRequirements, checks_recorded, fail, precondition, require
from ktbench.http.client import TargetUnreachable
from ktbench.runner.outcomes import classify_exception, failure_requirement
from ktbench.runner.tags import TagExpression, TagExpressionError, split_tags

REPO = Path(__file__).resolve().parents[1]

TAGS = ["kt1", "smoke", "req:KT1-META-CONFORMANCE", "role:portal"]


@pytest.mark.parametrize("expression, expected", [
    ("", True),
    ("@smoke", True),
    ("smoke", True),
    ("@slow", False),
    ("@req:KT1-META-CONFORMANCE", True),
    ("@req:KT1-META-*", True),
    ("@req:KT1-MAILBOX-*", False),
    ("@smoke and not @slow", True),
    ("@smoke and @slow", False),
    ("@slow or @role:portal", True),
    ("not (@slow or @wip) and @kt1", True),
    ("not not @kt1", True),
    ("@kt1 and (@role:module or @role:observer)", False),
])
def test_tag_expressions(expression: str, expected: bool) -> None:
    assert TagExpression(expression).matches(TAGS) is expected


@pytest.mark.parametrize("expression", ["@a and", "(@a", "@a)", "and @a", "@a or or @b", "not"])
def test_bad_tag_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(TagExpressionError):
        TagExpression(expression)


def test_split_tags() -> None:
    reqs, roles = split_tags(["@req:KT1-B", "req:KT1-A", "role:portal", "role:module", "smoke", "req:", "x:y"])
    assert reqs == ("KT1-A", "KT1-B")
    assert roles == ("module", "portal")


@pytest.mark.parametrize("exc, outcome", [
    (AssertionError("[KT1-X] wrong"), "failed"),
    (pytest.fail.Exception("explicit"), "failed"),
    (TargetUnreachable("refused"), "broken"),
    (TargetConfigError("bad file"), "broken"),
    (BenchError("bench bug"), "broken"),
    (KeyError("x"), "broken"),
    (pytest.skip.Exception("later"), "skipped"),
    (None, "broken"),
])
def test_classification(exc: BaseException | None, outcome: str) -> None:
    assert classify_exception(exc) == outcome


def test_a_failure_blames_only_a_requirement_the_scenario_carries() -> None:
    reqs = ("KT1-A", "KT1-B")
    assert failure_requirement(RequirementFailed("KT1-B", "x"), reqs, "KT1-PROFILE") == ("KT1-B", None)
    assert failure_requirement(RequirementFailed("KT1-PROFILE", "x"), reqs, "KT1-PROFILE") == ("KT1-PROFILE", None)
    req, problem = failure_requirement(RequirementFailed("KT1-C", "x"), reqs, None)
    assert req is None and "KT1-C, which this scenario does not carry" in problem
    assert failure_requirement(AssertionError("bare"), ("KT1-A",), None) == ("KT1-A", None)
    req, problem = failure_requirement(AssertionError("bare"), reqs, None)
    assert req is None and "names no requirement" in problem


def test_checks_know_their_scenarios_requirements() -> None:
    scope = ScenarioRequirements(("KT1-A",), implicit=("KT1-PROFILE",))
    with checks_recorded(scope):
        scope.phase = "then"
        require(True, "KT1-A", "ok")
        with pytest.raises(RequirementFailed):
            require(False, "KT1-PROFILE", "implicit requirements may be named")
        with pytest.raises(BenchError, match="bench defect: a check names requirement KT1-Z"):
            require(True, "KT1-Z", "even a passing check naming a foreign requirement is a defect")
        with pytest.raises(PreconditionFailed, match="precondition not met: KT1-Z"):
            precondition(False, "KT1-Z", "a precondition may name it")
        with pytest.raises(RequirementFailed):
            precondition(False, "KT1-A", "in a scenario carrying it, a precondition judges")
        scope.phase = "given"
        require(True, "KT1-Z", "set-up checks are preconditions")
        with pytest.raises(PreconditionFailed):
            fail("KT1-Z", "set-up failed")
    assert scope.checked == {"KT1-A"}
    assert scope.pick("KT1-Q", "KT1-A") == "KT1-A"
    with pytest.raises(BenchError, match="carries none of them"):
        scope.pick("KT1-Q", "KT1-R")
    assert scope.only() == "KT1-A"
    with pytest.raises(BenchError):
        ScenarioRequirements(("A", "B")).only()
    with pytest.raises(RequirementFailed):
        require(False, "ANY", "outside a run: a plain failure")


def test_the_registry_refuses_what_is_not_a_generation() -> None:
    registry = GenerationRegistry()
    generation = registry.load("ktbench.generations.kt1:GENERATION")
    assert registry.suite("kt1") == (generation, generation.suites[0])
    assert registry.kind("kt1-server")[1].bench_is_client
    for path, message in (("nocolon", "module:attribute"), ("no_such_module_x:G", "cannot import"),
                          ("ktbench.generations.kt1:NOPE", "no attribute"),
                          ("ktbench.generations.kt1:KIND", "is not a ktbench generation")):
        with pytest.raises(ConfigurationError, match=message):
            import_generation(path)
    with pytest.raises(ConfigurationError, match="unknown suite 'kt9'"):
        registry.suite("kt9")
    with pytest.raises(ConfigurationError, match="unknown target kind"):
        registry.kind("kt9-server")


GENERATION_FREE = ("ktbench/core", "ktbench/targets", "ktbench/http", "ktbench/runner", "ktbench/report",
                   "ktbench/proxy", "ktbench/validation", "ktbench/fhir")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_engine_never_imports_a_generation_a_simulator_or_steps() -> None:
    """Only the composition root (ktbench.cli) and the generations themselves may put the parts together."""
    offenders = []
    for folder in GENERATION_FREE:
        for path in sorted((REPO / folder).rglob("*.py")):
            for module in _imports(path):
                if module.startswith(("ktbench.generations", "ktbench.cli", "simulators", "steps")):
                    offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, "\n".join(offenders)

"""Requirements: the catalogue (what a suite verifies) and the one way a check judges the target.

A failing check names exactly one requirement (`RequirementFailed`); the runner accepts only ids the
scenario carries as `@req:` tags, so a check cannot blame a requirement the scenario was not written to
verify (that is a bench defect: the scenario is BROKEN).  Passing checks are noted too, so a scenario that
fails on requirement A after verifying B credits B and does not blame it.

Catalogue format (features/<suite>/requirements.toml), one table per requirement:

    [[requirement]]
    id = "KT1-META-CONFORMANCE"
    actor = "server"            # who must meet it: server, portal, module, ... (Inferno's "Actors" column)
    conformance = "SHALL"       # SHALL | SHOULD | MAY (Inferno's "Conformance" column)
    source = "kt1-protocol.md §1 ..."   # relative to the repository or the shared reference, never a machine path
    statement = "GET /FHIR/Koppeltaal/metadata answers a Conformance ..."
    not_tested = "why no scenario verifies it"   # only for requirements without a scenario
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ktbench.core.errors import (
    BenchError,
    ConfigurationError,
    PreconditionFailed,
    RequirementFailed,
)
from ktbench.core.tomlfile import read_toml

__all__ = ["Catalogue", "Requirement", "RequirementFailed", "ScenarioRequirements", "checks_recorded", "fail",
           "load_catalogue", "precondition", "require", "require_equal"]


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)+$")
    actor: str = Field(min_length=1)
    conformance: Literal["SHALL", "SHOULD", "MAY"]
    source: str = Field(min_length=1)
    statement: str = Field(min_length=1)
    not_tested: str | None = None


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requirement: tuple[Requirement, ...]

    def by_id(self) -> dict[str, Requirement]:
        return {r.id: r for r in self.requirement}

    def not_tested(self) -> dict[str, str]:
        return {r.id: r.not_tested for r in self.requirement if r.not_tested}


def load_catalogue(path: str | Path) -> Catalogue:
    path = Path(path)
    data: Any = read_toml(path, "requirement catalogue", ConfigurationError)
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError(f"requirement catalogue {path}:\n  - " + "\n  - ".join(lines)) from None
    ids = [r.id for r in catalogue.requirement]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigurationError(f"requirement catalogue {path}: duplicate ids {', '.join(twice)}")
    return catalogue


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------
class ScenarioRequirements:
    """The requirement ids one scenario carries, and the ones its checks have verified so far.

    The runner opens one per scenario (`checks_recorded`); `require()` consults it, so a failing check that
    names a requirement the scenario does not carry raises a BenchError (BROKEN: the bench is wrong about
    what it tests) instead of blaming the target.  Generic checks (a status code, a header) serve several
    requirements; `pick` chooses, in the order the step lists its candidates, the one this scenario was
    written for - instead of a When step leaving a note for the Then step.
    """

    def __init__(self, ids: tuple[str, ...], implicit: tuple[str, ...] = ()) -> None:
        self.ids = tuple(ids)
        self.implicit = tuple(implicit)      # carried by every scenario of the suite (its profile requirement)
        self.checked: set[str] = set()
        self.phase = ""                      # "given" | "when" | "then": the kind of step running now

    def __repr__(self) -> str:
        return f"<ScenarioRequirements {', '.join(self.ids) or 'none'}>"

    def __contains__(self, req_id: object) -> bool:
        return req_id in self.ids or req_id in self.implicit

    def pick(self, *candidates: str) -> str:
        for candidate in candidates:
            if candidate in self.ids:
                return candidate
        raise BenchError(f"this check verifies one of {', '.join(candidates)}, but the scenario carries none of "
                         f"them (its requirements: {', '.join(self.ids) or 'none'}); tag it with the one it "
                         "verifies")

    def only(self) -> str:
        if len(self.ids) != 1:
            raise BenchError(f"a generic check needs a scenario with exactly one @req: tag to know what it "
                             f"verifies; this one carries {', '.join(self.ids) or 'none'}")
        return self.ids[0]


_scope: ContextVar[ScenarioRequirements | None] = ContextVar("ktbench_scenario_requirements", default=None)


@contextmanager
def checks_recorded(scope: ScenarioRequirements) -> Iterator[ScenarioRequirements]:
    """Make `scope` the current scenario's while the block runs (the runner wraps each scenario)."""
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def enter_scope(scope: ScenarioRequirements) -> object:
    """The runner's setup/teardown form of `checks_recorded` (pytest hooks cannot hold a with-block)."""
    return _scope.set(scope)


def leave_scope(token: object) -> None:
    try:
        _scope.reset(token)  # type: ignore[arg-type]
    except ValueError:  # reset in another context (pytest ran setup and teardown differently): just clear
        _scope.set(None)


def current_scope() -> ScenarioRequirements | None:
    return _scope.get()


def _carried(req_id: str, message: str) -> tuple[ScenarioRequirements | None, bool]:
    """(the current scope, whether this check is a precondition), after making sure the scenario may name
    `req_id`.

    Then steps judge: they verify the scenario's own requirements, and naming another is a bench defect,
    whether the check passes or not, so a fault-free run already catches a check that could one day blame
    the wrong requirement.  Given and When steps set the scene and act: a check there may name another
    requirement (the portal's message must be accepted before routing can be judged); it is a precondition.
    """
    scope = _scope.get()
    if scope is None or req_id in scope:
        return scope, False
    if scope.phase in ("given", "when"):
        return scope, True
    raise BenchError(f"bench defect: a check names requirement {req_id}, which this scenario does not carry "
                     f"(its @req: tags: {', '.join(scope.ids) or 'none'}); the check: {message}")


def require(condition: Any, req_id: str, message: str) -> None:
    """Assert `condition`; on failure raise `RequirementFailed` naming `req_id` (or, for a precondition of
    the scenario, `PreconditionFailed`)."""
    scope, precondition = _carried(req_id, message)
    if not condition:
        raise PreconditionFailed(req_id, message) if precondition else RequirementFailed(req_id, message)
    if scope is not None and not precondition:
        scope.checked.add(req_id)


def precondition(condition: Any, req_id: str, message: str) -> None:
    """A check that gathers what a judgment needs (find the delivered copy, list the definitions, acknowledge
    a status report) rather than judging: in a scenario that carries `req_id` it judges like `require`; in
    any other it is a precondition - a failure makes the scenario BROKEN (PreconditionFailed), naming the
    requirement the target broke, which that requirement's own scenarios report as FAILED."""
    scope = _scope.get()
    if scope is None or req_id in scope:
        require(condition, req_id, message)
    elif not condition:
        raise PreconditionFailed(req_id, message)


def fail(req_id: str, message: str) -> NoReturn:
    _, precondition = _carried(req_id, message)
    raise PreconditionFailed(req_id, message) if precondition else RequirementFailed(req_id, message)


def require_equal(actual: Any, expected: Any, req_id: str, what: str) -> None:
    require(actual == expected, req_id, f"{what}: expected {expected!r}, got {actual!r}")

"""The generation seam: all the engine knows about a Koppeltaal generation (KT1.3, KT2, ...).

The engine (targets reader, runner, pytest plugin, reports) never imports a generation.  A generation is an
object satisfying `Generation`, registered by the composition root (the CLI: built-ins from
`ktbench.generations`, plus `ktbench --generation module:attr` for anyone else's) and handed to a pytest
subprocess as its import path (`--kt-generation module:attr`).  It declares:

- the target kinds it knows (`TargetKind`): whether such a target is a server or an application, which
  counter-roles the bench simulates against it and which credential types each role may use, and the
  generation's own target settings (a pydantic model: flat keys in a targets file's target table);
- its suites (`SuiteSpec`): the steps package with its one `scenarios(dir)` module, the features folder,
  the requirement catalogue, and the requirement a profile-validation failure names;
- the profile set live validation uses;
- how to describe a bare `--target URL` (default credentials) and how to start its embedded reference
  simulators for a run (`embedded`), yielding a `Target` that describes them completely.

A new generation is a new object in a new module; no engine code changes (tests/test_engine_generation_seam.py
registers a throw-away one from the test folder).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ktbench.core.errors import ConfigurationError

if TYPE_CHECKING:
    from ktbench.targets.model import Credential, Target

CredentialType = Literal["basic", "smart-backend", "mtls", "account"]


class NoSettings(BaseModel):
    """Target settings of a kind that has none of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class RoleSpec:
    """A counter-role the bench simulates against a target of some kind."""

    name: str
    credential_types: tuple[CredentialType, ...]
    description: str = ""
    required: bool = True      # False: scenarios that need it skip when a targets file leaves it out


@dataclass(frozen=True)
class TargetKind:
    name: str                                  # "kt1-server", "kt2-server", "kt2-module", ...
    title: str
    target_role: Literal["server", "application"]
    roles: Mapping[str, RoleSpec]
    settings: type[BaseModel] = NoSettings     # the generation's own keys of a target table

    @property
    def bench_is_client(self) -> bool:
        """A server target: the bench sends requests and the target answers (verdicts key on this)."""
        return self.target_role == "server"

    @property
    def default_credential_type(self) -> CredentialType:
        types = {t for spec in self.roles.values() for t in spec.credential_types[:1]}
        return sorted(types)[0] if len(types) == 1 else "basic"  # type: ignore[return-value]


@dataclass(frozen=True)
class SuiteSpec:
    name: str                                  # what `ktbench run --suite NAME` selects
    title: str
    kind: str                                  # the target kind the suite tests
    steps_package: str                         # e.g. "steps.kt1": holds the suite's scenarios(dir) module
    features: Path                             # the .feature files
    catalogue: Path                            # requirements.toml
    profile_requirement: str | None = None     # what a failed profile check of the exchanges names
    default_tags: str | None = None            # a tag expression always applied (e.g. "not @slow")
    # "module:function" judging every exchange of a scenario at its end (transport rules: headers, minted
    # URLs): function(exchanges, target) -> exception or None; its requirements are `exchange_requirements`
    exchange_rules: str | None = None
    exchange_requirements: tuple[str, ...] = ()

    @property
    def implicit_requirements(self) -> tuple[str, ...]:
        """Requirements every scenario of the suite carries without a tag: the checks of every exchange."""
        return ((self.profile_requirement,) if self.profile_requirement else ()) + self.exchange_requirements


@dataclass(frozen=True)
class PreflightProblem:
    """Why the bench cannot test a target as configured: a configuration verdict, never the target's failure."""

    kind: Literal["unreachable", "protocol", "credentials", "configuration"]
    message: str              # one sentence a tester can act on


@runtime_checkable
class Generation(Protocol):
    name: str
    title: str
    kinds: Sequence[TargetKind]
    suites: Sequence[SuiteSpec]
    validation_kt: int | None                  # ktbench.validation profile set (1, 2), None: auto-detect

    def default_roles(self, kind: str) -> dict[str, Credential]:
        """Credentials of every role on the generation's reference simulator (a target without roles)."""

    def target_for_url(self, url: str, kind: str, name: str | None = None) -> Target:
        """A bare `--target URL`: the reference simulator's default credentials and settings."""

    def embedded(self, suite: SuiteSpec, *, faults: Sequence[str] = (), workdir: Path) -> AbstractContextManager[Target]:
        """Start the suite's embedded reference simulators (loopback, port 0); yield the Target describing them."""

    # Optional (looked up with getattr; a generation without them gets the defaults):
    #   normalise_url(kind: str, url: str) -> str        the base URL the bench works with (e.g. a pasted FHIR
    #                                                     base reduced to the server root); default: unchanged
    #   preflight(target: Target) -> list[PreflightProblem]   checks before any scenario; default: none


def normalised_url(generation: Any, kind: str, url: str) -> str:
    normalise = getattr(generation, "normalise_url", None)
    return normalise(kind, url) if normalise is not None else url


def preflight(generation: Any, target: Target) -> list[PreflightProblem]:
    check = getattr(generation, "preflight", None)
    return list(check(target)) if check is not None else []


@dataclass
class GenerationRegistry:
    """The generations of one process, by name; kinds and suites looked up across them."""

    generations: dict[str, Generation] = field(default_factory=dict)
    import_paths: dict[str, str] = field(default_factory=dict)   # name -> "module:attr" (for subprocesses)

    def register(self, generation: Generation, import_path: str) -> None:
        if not isinstance(generation, Generation):
            raise ConfigurationError(f"{import_path} is not a ktbench generation (see ktbench.core.generation)")
        known = self.generations.get(generation.name)
        if known is not None and known is not generation:
            raise ConfigurationError(f"two generations are named {generation.name!r} "
                                     f"({self.import_paths[generation.name]} and {import_path})")
        self.generations[generation.name] = generation
        self.import_paths[generation.name] = import_path

    def load(self, import_path: str) -> Generation:
        generation = import_generation(import_path)
        self.register(generation, import_path)
        return generation

    def __iter__(self) -> Iterator[Generation]:
        return iter(self.generations.values())

    def kinds(self) -> dict[str, tuple[Generation, TargetKind]]:
        return {k.name: (g, k) for g in self for k in g.kinds}

    def kind(self, name: str) -> tuple[Generation, TargetKind]:
        return _lookup(self.kinds(), name, "target kind")

    def suites(self) -> dict[str, tuple[Generation, SuiteSpec]]:
        return {s.name: (g, s) for g in self for s in g.suites}

    def suite(self, name: str) -> tuple[Generation, SuiteSpec]:
        return _lookup(self.suites(), name, "suite")


def _lookup(table: dict[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise ConfigurationError(f"unknown {what} {name!r} (known: {', '.join(sorted(table)) or 'none'})") from None


def import_object(import_path: str, what: str = "object") -> Any:
    """`module:attr` -> the object (a clear ConfigurationError when it cannot be had)."""
    module_name, sep, attr = import_path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"a {what} is named module:attribute, not {import_path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {what} module {module_name!r}: {exc}") from None
    found: Any = getattr(module, attr, None)
    if found is None:
        raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}")
    return found


def import_generation(import_path: str) -> Generation:
    """`module:attr` -> the generation object (a clear ConfigurationError when it is not one)."""
    generation = import_object(import_path, "generation")
    if not isinstance(generation, Generation):
        raise ConfigurationError(f"{import_path} is not a ktbench generation (see ktbench.core.generation)")
    return generation


def registry_of(import_paths: Iterable[str]) -> GenerationRegistry:
    registry = GenerationRegistry()
    for path in import_paths:
        registry.load(path)
    return registry

"""The compiled form of types and profiles the walker consults.

Profiles are authored as data (profiles/**, StructureDefinitions); `loader`
turns them into these small slotted objects once, keyed by element path, so
that validating a resource is a single pass of dictionary look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNBOUNDED = 1 << 30


def parse_max(value: Any) -> int:
    if value in ("*", None):
        return UNBOUNDED
    return int(value)


def fmt_max(value: int) -> str:
    return "*" if value >= UNBOUNDED else str(value)


class ElementDef:
    """One JSON property of a type: `name` is the JSON key (valueString, not value[x])."""

    __slots__ = ("name", "min", "max", "type", "group", "is_list", "warn", "tdef", "check", "codes")

    def __init__(self, name: str, min_: int, max_: int, type_: str, group: str | None, warn: str | None = None):
        self.name = name
        self.min = min_
        self.max = max_
        self.type = type_
        self.group = group
        self.is_list = max_ > 1
        self.warn = warn  # an element outside the base standard that real senders use: accepted with a warning
        # resolved once the type system is complete (hot-path shortcuts for the walker)
        self.tdef: TypeDef | None = None
        self.check = None  # primitive checker, None for complex types
        self.codes: frozenset[str] | None = None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"ElementDef({self.name} {self.min}..{fmt_max(self.max)} {self.type})"


class TypeDef:
    """A data type, resource or backbone element with its JSON properties."""

    __slots__ = ("name", "kind", "elements", "required", "groups", "base", "codes")

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind  # primitive | complex | backbone | resource
        self.elements: dict[str, ElementDef] = {}
        self.required: tuple[ElementDef, ...] = ()
        # choice group -> (min, names)
        self.groups: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.base: str | None = None  # primitive base type (string, code, ...)
        self.codes: frozenset[str] | None = None  # DSTU1 enumerated code types

    def finish(self) -> None:
        self.required = tuple(e for e in self.elements.values() if e.min > 0 and e.group is None)
        groups: dict[str, list[str]] = {}
        mins: dict[str, int] = {}
        for e in self.elements.values():
            if e.group:
                groups.setdefault(e.group, []).append(e.name)
                mins[e.group] = max(mins.get(e.group, 0), e.min)
        self.groups = {g: (mins[g], tuple(n)) for g, n in groups.items()}


@dataclass(slots=True)
class TypeSystem:
    """All types of one FHIR version plus its primitive checkers."""

    version: str
    types: dict[str, TypeDef]
    checkers: dict[str, Any]
    resource_names: frozenset[str]
    # resource types of this FHIR version the tables do not describe (accepted, not checked)
    other_resource_names: frozenset[str] = frozenset()

    def get(self, name: str) -> TypeDef | None:
        return self.types.get(name)


class ValueSet:
    """Codes allowed by a binding.

    `systems` maps a code system URL to its allowed codes (None = any code of
    that system).  `complete` is False when we know only part of the value set
    (e.g. it includes an external terminology we do not ship): unknown codes
    are then reported as information, not errors.  `aliases` lets KT1 data name
    wrong-but-tolerated system URLs (a tolerated system yields a warning).
    """

    __slots__ = ("url", "name", "systems", "codes", "complete", "aliases", "displays")

    def __init__(
        self,
        url: str,
        name: str,
        systems: dict[str, frozenset[str] | None],
        complete: bool = True,
        aliases: dict[str, str] | None = None,
        displays: dict[tuple[str, str], str] | None = None,
    ):
        self.url = url
        self.name = name
        self.systems = systems
        codes: set[str] = set()
        for c in systems.values():
            if c:
                codes |= c
        self.codes = frozenset(codes)
        self.complete = complete
        self.aliases = aliases or {}
        self.displays = displays or {}

    def contains_code(self, code: str) -> bool:
        if code in self.codes:
            return True
        return any(v is None for v in self.systems.values())

    def contains(self, system: str | None, code: str | None) -> bool:
        if system is None or code is None:
            return False
        allowed = self.systems.get(system, False)
        if allowed is False:
            return False
        return allowed is None or code in allowed

    def describe(self, limit: int = 12) -> str:
        codes = sorted(self.codes)
        text = ", ".join(codes[:limit]) + (", ..." if len(codes) > limit else "")
        return f"{self.name} ({text})" if codes else self.name


class Binding:
    __slots__ = ("strength", "valueset", "url")

    def __init__(self, strength: str, valueset: ValueSet | None, url: str):
        self.strength = strength  # required | extensible | preferred | example
        self.valueset = valueset
        self.url = url


class Constraint:
    """Profile rules for one element path (any attribute may be None = inherit base)."""

    __slots__ = (
        "min", "max", "fixed", "pattern", "binding", "targets", "min_severity", "type_severity",
        "note", "types", "max_severity", "tolerated", "empty_severity",
    )

    def __init__(self) -> None:
        self.min: int | None = None
        self.max: int | None = None
        self.fixed: Any = None
        self.pattern: Any = None
        self.binding: Binding | None = None
        self.targets: frozenset[str] | None = None
        self.min_severity: str = "error"
        self.max_severity: str = "error"
        self.type_severity: str = "error"
        # a relaxed type_severity applies only to values matching this pattern (the exact real-world quirk);
        # any other wrong value is still an error
        self.tolerated: Any = None
        self.empty_severity: str = "error"   # an empty string here (a quirk of real servers), if not "error"
        self.note: str | None = None
        self.types: frozenset[str] | None = None  # allowed choice alternatives (JSON keys)


class ExtDef:
    """An extension allowed at a context path (KT1 or KT2), possibly complex (children)."""

    __slots__ = (
        "url", "name", "min", "max", "types", "tolerated_types", "binding", "targets", "children",
        "min_severity", "note", "fixed", "pattern", "context", "warn", "range", "range_severity",
    )

    def __init__(self, url: str, name: str):
        self.url = url
        self.name = name
        self.min = 0
        self.max = 1
        self.types: tuple[str, ...] = ()  # JSON keys, e.g. ("valueString",)
        self.tolerated_types: tuple[str, ...] = ()
        self.binding: Binding | None = None
        self.targets: frozenset[str] | None = None
        self.children: dict[str, ExtDef] = {}
        self.min_severity = "error"
        self.note: str | None = None
        self.fixed: Any = None
        self.pattern: Any = None
        self.context: str = ""
        self.warn: str | None = None  # tolerated-but-discouraged extension: warn whenever present
        self.range: tuple[float, float] | None = None  # numeric value bounds
        self.range_severity = "error"


@dataclass(slots=True)
class Slice:
    """A named slice of a repeating element, selected by a simple discriminator.

    `match` maps a relative path (e.g. ``system`` or ``member.@type``) to the
    value that puts an item in this slice; `default` marks the slice taking the
    items no other slice claims.
    """

    name: str
    min: int = 0
    max: int = UNBOUNDED
    match: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    constraints: dict[str, Constraint] = field(default_factory=dict)  # relative path -> constraint
    required: dict[str, int] = field(default_factory=dict)  # relative child -> min


@dataclass(slots=True)
class Invariant:
    key: str
    path: str
    expression: str
    human: str
    severity: str = "error"
    compiled: Any = None


@dataclass(slots=True)
class Profile:
    """A compiled profile: constraints keyed by element path (no indexes)."""

    id: str
    url: str
    type: str
    prefix: str  # rule id prefix: kt1 | kt2
    title: str = ""
    elements: dict[str, Constraint] = field(default_factory=dict)
    extensions: dict[str, dict[str, ExtDef]] = field(default_factory=dict)
    required: dict[str, list[tuple[str, int, str, str | None]]] = field(default_factory=dict)
    slices: dict[str, list[Slice]] = field(default_factory=dict)
    invariants: dict[str, list[Invariant]] = field(default_factory=dict)
    ext_base: str = ""  # KT1: base for relative extension URLs ("...#Name")
    other_code: str | None = None  # KT1: Other.code this profile applies to
    ext_required: dict[str, list[ExtDef]] = field(default_factory=dict)  # context -> extensions with min > 0
    namespaces: tuple[str, ...] = ()  # extension URL prefixes this standard owns
    closed_extensions: bool = True  # unknown extension in an owned namespace = error
    plans: dict = field(default_factory=dict, repr=False, compare=False)  # walker cache: (type, path) -> plan

    def constraint(self, path: str) -> Constraint | None:
        return self.elements.get(path)

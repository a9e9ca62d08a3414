"""Load profile data (profiles/**) into compiled `TypeSystem`s and `Profile`s.

The data formats are documented in profiles/README.md.  Compilation happens
once per process (the `standards` module caches the result).
"""

from __future__ import annotations

import re

import json
import tomllib
from pathlib import Path
from typing import Any

from ktbench.validation.model import (
    UNBOUNDED,
    Binding,
    Constraint,
    ElementDef,
    ExtDef,
    Invariant,
    Profile,
    Slice,
    TypeDef,
    TypeSystem,
    ValueSet,
    parse_max,
)

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"
RESOURCE = "@resource"


class ProfileDataError(ValueError):
    """Profile data is inconsistent (unknown path, value set or type)."""


def read_data(path: Path) -> dict:
    raw = path.read_bytes()
    if path.suffix == ".toml":
        return tomllib.loads(raw.decode("utf-8"))
    return json.loads(raw)


# ---------------------------------------------------------------------------------- types
_DSTU1_ELEMENT = [["id", 0, "1", "id", None], ["extension", 0, "*", "Extension", None]]
_DSTU1_BACKBONE = _DSTU1_ELEMENT + [["modifierExtension", 0, "*", "Extension", None]]
_DSTU1_RESOURCE = _DSTU1_BACKBONE + [
    ["language", 0, "1", "code", None],
    ["text", 0, "1", "Narrative", None],
    ["contained", 0, "*", RESOURCE, None],
]


def build_typesystem(
    data: dict,
    version: str,
    checkers: dict,
    extra_types: dict | None = None,
    inherit: str | None = None,
    tolerated_elements: list[dict] | None = None,
) -> TypeSystem:
    """Build a TypeSystem from the generated base JSON (plus authored extra types).

    `inherit="dstu1"` adds the properties every DSTU1 element/backbone/resource
    inherits (the XSD lists only a type's own elements).
    """
    raw_types: dict[str, dict] = dict(data["types"])
    if extra_types:
        raw_types.update(extra_types)
    code_lists = {k: frozenset(v) for k, v in data.get("codes", {}).items()}
    types: dict[str, TypeDef] = {}
    synthetic: dict[str, TypeDef] = {}
    for name, spec in raw_types.items():
        kind = spec["kind"]
        t = TypeDef(name, kind)
        if kind == "primitive":
            t.base = spec.get("base", name)
            if "codes" in spec:
                codes = spec["codes"]
                t.codes = code_lists[codes] if isinstance(codes, str) else frozenset(codes)
            types[name] = t
            continue
        elements = list(spec.get("elements", []))
        if inherit == "dstu1" and spec.get("inherit", True) and name not in ("Element", "BackboneElement", "Resource"):
            own = {e[0] for e in elements}
            if kind == "resource":
                base = _DSTU1_RESOURCE
            elif kind == "backbone":
                base = _DSTU1_BACKBONE
            else:
                base = _DSTU1_ELEMENT
            elements = [e for e in base if e[0] not in own] + elements
            if name == "Extension":
                elements = [["url", 1, "1", "uri", None]] + elements
        for e in elements:
            ename, emin, emax, etype = e[0], int(e[1]), parse_max(e[2]), e[3]
            group = e[4] if len(e) > 4 else None
            if etype in ("Resource.Inline", "Resource") and kind != "primitive":
                etype = RESOURCE
            if len(e) > 5 and e[5]:
                # element-level required code list: a synthetic primitive type
                codes = e[5]
                sname = f"{name}.{ename}#code"
                st = TypeDef(sname, "primitive")
                st.base = etype
                st.codes = code_lists[codes] if isinstance(codes, str) else frozenset(codes)
                synthetic[sname] = st
                etype = sname
            t.elements[ename] = ElementDef(ename, emin, emax, etype, group)
        types[name] = t
    types.update(synthetic)
    for tol in tolerated_elements or ():
        t = types.get(tol["type"])
        if t is None:
            raise ProfileDataError(f"{version}: tolerated element on unknown type {tol['type']}")
        e = tol["element"]
        group = e[4] if len(e) > 4 else None
        t.elements[e[0]] = ElementDef(e[0], int(e[1]), parse_max(e[2]), e[3], group, warn=tol["warn"])
    for t in types.values():
        if t.kind != "primitive":
            t.finish()
    missing = {ed.type for t in types.values() for ed in t.elements.values() if ed.type not in types and ed.type != RESOURCE}
    if missing:
        raise ProfileDataError(f"{version}: element types without definition: {sorted(missing)[:10]}")
    unknown_base = {t.base for t in types.values() if t.kind == "primitive" and t.base not in checkers}
    if unknown_base:
        raise ProfileDataError(f"{version}: primitive types without checker: {sorted(unknown_base)}")
    for t in types.values():
        for ed in t.elements.values():
            et = types.get(ed.type)
            ed.tdef = et
            if et is not None and et.kind == "primitive":
                ed.check = checkers[et.base]
                ed.codes = et.codes
    resources = frozenset(n for n, t in types.items() if t.kind == "resource")
    others = frozenset(data.get("resource_names", ())) - resources
    return TypeSystem(version, types, checkers, resources, others)


def resolve_path(ts: TypeSystem, path: str) -> tuple[TypeDef, ElementDef] | None:
    """Type and element definition for `Type.a.b` (JSON names)."""
    parts = path.split(".")
    t = ts.types.get(parts[0])
    if t is None:
        return None
    ed = None
    for part in parts[1:]:
        if t is None:
            return None
        ed = t.elements.get(part)
        if ed is None:
            return None
        parent = t
        t = ts.types.get(ed.type)
    if ed is None:
        return None
    return parent, ed


def expand_choice(ts: TypeSystem, path: str) -> list[str]:
    """`Patient.deceased[x]` -> ['Patient.deceasedBoolean', 'Patient.deceasedDateTime']; other paths unchanged."""
    if not path.endswith("[x]"):
        return [path]
    head, _, last = path.rpartition(".")
    group = last[:-3]
    parent = resolve_path(ts, head)
    if head.count(".") == 0:
        t = ts.types.get(head)
    else:
        t = ts.types.get(parent[1].type) if parent else None
    if t is None:
        raise ProfileDataError(f"cannot resolve {path}")
    names = [e.name for e in t.elements.values() if e.group == group]
    if not names:
        raise ProfileDataError(f"{path}: no choice group {group!r}")
    return [f"{head}.{n}" for n in names]


# ---------------------------------------------------------------------------------- value sets
def build_valuesets(data: dict) -> dict[str, ValueSet]:
    """Value sets keyed by both their name and their url."""
    out: dict[str, ValueSet] = {}
    for name, spec in data.get("valueset", {}).items():
        systems: dict[str, frozenset[str] | None] = {}
        if "system" in spec:
            systems[spec["system"]] = frozenset(spec["codes"]) if spec.get("codes") is not None else None
        for inc in spec.get("include", []):
            codes = inc.get("codes")
            prev = systems.get(inc["system"], frozenset())
            if codes is None or prev is None:
                systems[inc["system"]] = None
            else:
                systems[inc["system"]] = frozenset(prev) | frozenset(codes)
        displays = {}
        for d in spec.get("displays", []):
            displays[(d[0], d[1])] = d[2]
        vs = ValueSet(spec.get("url", name), name, systems, complete=spec.get("complete", True), aliases=spec.get("aliases"), displays=displays)
        out[name] = vs
        if "url" in spec:
            out[spec["url"]] = vs
    return out


def _binding(spec: Any, valuesets: dict[str, ValueSet], where: str) -> Binding:
    if isinstance(spec, str):
        spec = {"valueset": spec}
    ref = spec["valueset"]
    strength = spec.get("strength", "required")
    vs = valuesets.get(ref) or valuesets.get(ref.split("|")[0])
    if vs is None and spec.get("optional") is not True:
        raise ProfileDataError(f"{where}: unknown value set {ref!r}")
    return Binding(strength, vs, ref)


# ---------------------------------------------------------------------------------- profiles
def _constraint(spec: dict, valuesets: dict, where: str) -> Constraint:
    c = Constraint()
    if "min" in spec:
        c.min = int(spec["min"])
    if "max" in spec:
        c.max = parse_max(spec["max"])
    c.fixed = spec.get("fixed")
    c.pattern = spec.get("pattern")
    if "binding" in spec:
        c.binding = _binding(spec["binding"], valuesets, where)
    if "targets" in spec:
        c.targets = frozenset(spec["targets"])
    c.min_severity = spec.get("severity", "error")
    c.max_severity = spec.get("max_severity", "error")
    c.type_severity = spec.get("type_severity", "error")
    if c.type_severity != "error":
        if not isinstance(spec.get("tolerated"), str):
            raise ProfileDataError(f"{where}: a relaxed type_severity needs `tolerated`, the pattern of exactly the "
                                   "tolerated values (anything else breaking the type stays an error)")
        c.tolerated = re.compile(spec["tolerated"])
    c.empty_severity = spec.get("empty_severity", "error")
    c.note = spec.get("note")
    return c


def _ext(url: str, spec: dict, base: str, valuesets: dict, where: str, context: str) -> ExtDef:
    d = ExtDef(url, spec.get("name") or url.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
    d.context = context
    d.min = int(spec.get("min", 0))
    d.max = parse_max(spec.get("max", 1))
    t = spec.get("type", ())
    d.types = (t,) if isinstance(t, str) else tuple(t)
    tt = spec.get("tolerated_types", ())
    d.tolerated_types = (tt,) if isinstance(tt, str) else tuple(tt)
    if "binding" in spec:
        d.binding = _binding(spec["binding"], valuesets, f"{where} {url}")
    if "targets" in spec:
        d.targets = frozenset(spec["targets"])
    d.min_severity = spec.get("severity", "error")
    d.note = spec.get("note")
    d.fixed = spec.get("fixed")
    d.pattern = spec.get("pattern")
    d.warn = spec.get("warn")
    if "range" in spec:
        lo, hi = spec["range"]
        d.range = (lo, hi)
        d.range_severity = spec.get("range_severity", "error")
    for curl, cspec in spec.get("children", {}).items():
        full = _full_url(curl, base)
        d.children[full] = _ext(full, cspec, base, valuesets, where, context=f"{context}.extension('{d.name}')")
    return d


def _full_url(url: str, base: str) -> str:
    if url.startswith("#"):
        return base + url
    return url


def compile_profile(spec: dict, ts: TypeSystem, valuesets: dict[str, ValueSet], prefix: str, namespaces: tuple[str, ...] = ()) -> Profile:
    rtype = spec["type"]
    if rtype not in ts.types:
        raise ProfileDataError(f"profile {spec.get('id')}: unknown type {rtype}")
    base = spec.get("extension_base", "")
    p = Profile(
        id=spec["id"],
        url=spec.get("url", spec["id"]),
        type=rtype,
        prefix=prefix,
        title=spec.get("title", ""),
        ext_base=base,
        other_code=spec.get("other_code"),
        namespaces=tuple(spec.get("namespaces", namespaces)),
        closed_extensions=spec.get("closed_extensions", True),
    )
    where = f"profile {p.id}"
    for path, cspec in spec.get("element", {}).items():
        for real in expand_choice(ts, path):
            if resolve_path(ts, real) is None:
                raise ProfileDataError(f"{where}: unknown element path {real}")
            c = _constraint(cspec, valuesets, f"{where} {real}")
            p.elements[real] = c
            parent_t, ed = resolve_path(ts, real)
            if c.min is not None and c.min > ed.min and ed.group is None:
                parent = real.rsplit(".", 1)[0]
                p.required.setdefault(parent, []).append((ed.name, c.min, c.min_severity, c.note))
    for ctx, exts in spec.get("extension", {}).items():
        if resolve_path(ts, ctx) is None and ctx not in ts.types:
            raise ProfileDataError(f"{where}: unknown extension context {ctx}")
        table = p.extensions.setdefault(ctx, {})
        for url, espec in exts.items():
            full = _full_url(url, base)
            table[full] = _ext(full, espec, base, valuesets, where, ctx)
            if table[full].min > 0:
                p.ext_required.setdefault(ctx, []).append(table[full])
    for path, slices in spec.get("slice", {}).items():
        if resolve_path(ts, path) is None:
            raise ProfileDataError(f"{where}: unknown slice path {path}")
        compiled = []
        for s in slices:
            sl = Slice(
                name=s["name"],
                min=int(s.get("min", 0)),
                max=parse_max(s.get("max", "*")),
                match=dict(s.get("match", {})),
                default=bool(s.get("default", False)),
            )
            for rel, cspec in s.get("element", {}).items():
                sl.constraints[rel] = _constraint(cspec, valuesets, f"{where} slice {sl.name} {rel}")
            sl.required = {k: int(v) for k, v in s.get("required", {}).items()}
            compiled.append(sl)
        p.slices[path] = compiled
    for inv in spec.get("invariant", []):
        i = Invariant(inv["key"], inv["path"], inv["expression"], inv.get("human", inv["key"]), inv.get("severity", "error"))
        p.invariants.setdefault(inv["path"], []).append(i)
    return p


def extension_index(profiles: list[Profile]) -> dict[str, list[str]]:
    """url -> context paths where some profile defines it (for extension-context findings)."""
    index: dict[str, list[str]] = {}

    def add(defs: dict[str, ExtDef], ctx: str) -> None:
        for url, d in defs.items():
            lst = index.setdefault(url, [])
            if ctx not in lst:
                lst.append(ctx)
            if d.children:
                add(d.children, f"{ctx}.extension('{d.name}')")

    for p in profiles:
        for ctx, defs in p.extensions.items():
            label = f"{ctx} in profile {p.id}" if p.other_code or p.type == "Other" else ctx
            add(defs, label)
    return index


__all__ = [
    "PROFILES_DIR",
    "ProfileDataError",
    "UNBOUNDED",
    "build_typesystem",
    "build_valuesets",
    "compile_profile",
    "expand_choice",
    "extension_index",
    "read_data",
    "resolve_path",
]

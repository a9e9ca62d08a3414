"""The structural walker: one pass over a JSON resource against its type and profile.

It checks, per element: known JSON property, array vs single value, cardinality
(base and profile), primitive formats, choice groups, fixed/pattern values,
bindings, reference targets, extensions (URL, context, value type, nested
children, cardinality), slices and invariants.  Everything it knows comes from
a compiled `TypeSystem` and `Profile`; it holds no Koppeltaal facts itself.
"""

from __future__ import annotations

from typing import Any, Callable

from ktbench.validation.findings import ERROR, INFORMATION, WARNING, Finding
from ktbench.validation.model import (
    Binding,
    Constraint,
    ElementDef,
    ExtDef,
    Profile,
    Slice,
    TypeDef,
    TypeSystem,
    fmt_max,
)
from ktbench.validation.primitives import json_type_name

RESOURCE = "@resource"
_FAST_ONE, _FAST_LIST, _EXT, _GENERAL, _CPLX_ONE, _CPLX_LIST = 0, 1, 2, 3, 4, 5

Resolver = Callable[[dict, str, list], "Profile | None"]


def reference_type(ref: str) -> str | None:
    """The resource type a literal reference names (`Patient/1`, `http://x/fhir/Patient/1/_history/2`)."""
    if not ref or ref[0] == "#" or ref.startswith("urn:"):
        return None
    head = ref.split("/_history/", 1)[0].rstrip("/")
    parts = head.split("/")
    if len(parts) < 2:
        return None
    candidate = parts[-2]
    return candidate if candidate[:1].isupper() else None


class Walker:
    """Validates JSON against a type system; create one per type system and reuse it."""

    def __init__(
        self,
        ts: TypeSystem,
        prefix: str,
        resolver: Resolver,
        empty_string_severity: str = ERROR,
        extension_index: dict[str, list[str]] | None = None,
        check_reference_targets: bool = True,
        foreign_extension_severity: str | None = None,
    ):
        self.ts = ts
        self.types = ts.types
        self.checkers = ts.checkers
        self.prefix = prefix
        self.resolver = resolver
        self.empty_sev = empty_string_severity
        self.ext_index = extension_index or {}
        self.check_targets = check_reference_targets
        self.foreign_ext_sev = foreign_extension_severity
        self.ext_type = ts.types["Extension"]
        # XML input: the codec guesses list vs single for elements it does not know, so the JSON shape
        # carries no information; only the number of occurrences counts
        self.lenient_lists = False
        self._base_plans: dict = {}
        # references seen with profile target rules: (loc, reference, targets) - KT1 resolves them in the bundle
        self.refs: list[tuple[str, str, frozenset[str]]] = []

    def clone(self) -> "Walker":
        """A cheap copy for per-call state (refs, lenient_lists); plan caches stay shared."""
        new = object.__new__(Walker)
        new.__dict__.update(self.__dict__)
        new.refs = []
        return new

    # ------------------------------------------------------------------ helpers
    def _f(self, out: list, sev: str, rule: str, loc: str, msg: str) -> None:
        out.append(Finding(sev, f"{self.prefix}.{rule}", loc, msg))

    # ------------------------------------------------------------------ resources
    def resource(self, obj: Any, loc: str, out: list, profile: Profile | None = None) -> Profile | None:
        if not isinstance(obj, dict):
            self._f(out, ERROR, "structure", loc, f"expected a resource (JSON object), got {json_type_name(obj)}")
            return None
        rt = obj.get("resourceType")
        if not isinstance(rt, str):
            self._f(out, ERROR, "structure", loc, "resource has no resourceType")
            return None
        tdef = self.types.get(rt)
        if tdef is None or tdef.kind != "resource":
            if rt in self.ts.other_resource_names:
                self._f(out, INFORMATION, "structure", f"{loc}.resourceType", f"{rt} is a FHIR resource type the {self.prefix.upper()} profiles do not cover; its content was not checked")
                return None
            self._f(out, ERROR, "structure", f"{loc}.resourceType", f"unknown resource type {rt!r}")
            return None
        if profile is None:
            profile = self.resolver(obj, loc, out)
        self.node(obj, tdef, rt, loc, profile, out)
        return profile

    # ------------------------------------------------------------------ generic node
    def _plan(self, tdef: TypeDef, path: str, profile: Profile | None) -> tuple[dict, tuple | None]:
        """Per (type, path, profile): what to do with each JSON key, and the checks after the keys.

        Built once and cached (on the profile, or on the walker for profile-less
        nodes), so the hot loop does one dictionary look-up per key.
        """
        cache = profile.plans if profile is not None else self._base_plans
        key = (tdef.name, path)
        plan = cache.get(key)
        if plan is not None:
            return plan
        cons = profile.elements if profile is not None else {}
        steps: dict[str, tuple] = {}
        for name, ed in tdef.elements.items():
            cpath = path + "." + name
            c = cons.get(cpath)
            if ed.type == "Extension":
                kind = _EXT
            elif ed.check is not None and c is None and ed.codes is None and ed.warn is None:
                kind = _FAST_LIST if ed.is_list else _FAST_ONE
            elif (ed.check is None and c is None and ed.warn is None and ed.tdef is not None and ed.type != RESOURCE
                  and not (profile is not None and profile.slices.get(cpath))):
                kind = _CPLX_LIST if ed.is_list else _CPLX_ONE
            else:
                kind = _GENERAL
            steps[name] = (kind, ed, cpath, c, ed.check)
        required = []
        for ed in tdef.required:
            c = cons.get(f"{path}.{ed.name}")
            sev = c.min_severity if c is not None and c.min is not None else ERROR
            required.append((ed, sev, self._note(c)))
        ext_req = prof_req = invs = ()
        if profile is not None:
            ext_req = tuple(profile.ext_required.get(path, ()))
            prof_req = tuple(profile.required.get(path, ()))
            invs = tuple(profile.invariants.get(path, ()))
        groups = tuple(tdef.groups.items())
        post = (tuple(required), groups, ext_req, prof_req, invs) if (required or groups or ext_req or prof_req or invs) else None
        plan = (steps, post)
        cache[key] = plan
        return plan

    def node(self, obj: dict, tdef: TypeDef, path: str, loc: str, profile: Profile | None, out: list) -> None:
        steps, post = self._plan(tdef, path, profile)
        for key, value in obj.items():
            step = steps.get(key)
            if step is None:
                if key == "resourceType" and tdef.kind == "resource":
                    continue
                if key[:1] == "_" and key != "_":
                    self._primitive_extras(obj, key, value, tdef, path, loc, profile, out)
                    continue
                self._f(out, ERROR, "structure", f"{loc}.{key}", f"unknown element {key!r} in {tdef.name}")
                continue
            kind, ed, cpath, c, check = step
            if kind == _FAST_ONE:
                if type(value) is not list:
                    if check(value) is not None:
                        self.value(value, ed, cpath, f"{loc}.{key}", None, profile, out)
                    continue
            elif kind == _FAST_LIST:
                if type(value) is list and value:
                    if len(value) > ed.max:
                        self._f(out, ERROR, "cardinality", f"{loc}.{key}", f"{key} occurs {len(value)} times, at most {fmt_max(ed.max)} allowed")
                    for i, item in enumerate(value):
                        if check(item) is not None:
                            self.value(item, ed, cpath, f"{loc}.{key}[{i}]", None, profile, out)
                    continue
            elif kind == _CPLX_ONE:
                if type(value) is dict and value:
                    self.node(value, ed.tdef, cpath, loc + "." + key, profile, out)
                    continue
            elif kind == _CPLX_LIST:
                if type(value) is list and value and len(value) <= ed.max:
                    sub = ed.tdef
                    base = loc + "." + key
                    for i, item in enumerate(value):
                        if type(item) is dict and item:
                            self.node(item, sub, cpath, f"{base}[{i}]", profile, out)
                        else:
                            self.value(item, ed, cpath, f"{base}[{i}]", None, profile, out)
                    continue
            elif kind == _EXT:
                items = self._as_list(value, ed, f"{loc}.{key}", out)
                if items is not None:
                    self.extensions(items, path, loc, key, profile, out)
                continue
            self._general(key, value, ed, cpath, c, tdef, loc, profile, out)
        if post is not None:
            self._post(obj, post, tdef, path, loc, out)

    def _general(self, key: str, value: Any, ed: ElementDef, cpath: str, c: Constraint | None, tdef: TypeDef, loc: str, profile: Profile | None, out: list) -> None:
        if ed.warn is not None:
            self._f(out, WARNING, "structure", f"{loc}.{key}", ed.warn)
        if ed.is_list:
            if isinstance(value, list):
                items = value
                if not items and not (tdef.name == "Bundle" and key == "entry"):
                    self._f(out, ERROR, "structure", f"{loc}.{key}", "empty array (omit the element instead)")
                    return
            else:
                if not self.lenient_lists:
                    self._f(out, ERROR, "structure", f"{loc}.{key}", f"{key} repeats: expected a JSON array, got {json_type_name(value)}")
                items = [value]
            n = len(items)
            mx = c.max if c is not None and c.max is not None else ed.max
            if n > mx:
                sev = c.max_severity if c is not None else ERROR
                if mx == 0:
                    self._f(out, sev, "cardinality", f"{loc}.{key}", f"{key} is not allowed here (0..0{self._note(c)})")
                    return
                self._f(out, sev, "cardinality", f"{loc}.{key}", f"{key} occurs {n} times, at most {fmt_max(mx)} allowed")
            for i, item in enumerate(items):
                self.value(item, ed, cpath, f"{loc}.{key}[{i}]", c, profile, out)
            if profile is not None and profile.slices:
                sl = profile.slices.get(cpath)
                if sl:
                    self._slices(items, sl, cpath, f"{loc}.{key}", out)
            return
        if isinstance(value, list):
            if self.lenient_lists and len(value) == 1:
                value = value[0]
            elif self.lenient_lists:
                self._f(out, ERROR, "cardinality", f"{loc}.{key}", f"{key} occurs {len(value)} times, at most 1 allowed")
                return
            else:
                self._f(out, ERROR, "cardinality", f"{loc}.{key}", f"{key} occurs at most once: expected a single value, got an array")
                return
        if c is not None and c.max == 0:
            self._f(out, c.max_severity, "cardinality", f"{loc}.{key}", f"{key} is not allowed here (0..0{self._note(c)})")
            return
        self.value(value, ed, cpath, f"{loc}.{key}", c, profile, out)

    def _post(self, obj: dict, post: tuple, tdef: TypeDef, path: str, loc: str, out: list) -> None:
        required, groups, ext_req, prof_req, invs = post
        for ed, sev, note in required:
            if ed.name not in obj and f"_{ed.name}" not in obj:
                self._f(out, sev, "cardinality", f"{loc}.{ed.name}", f"required element {ed.name!r} is missing ({tdef.name}.{ed.name} {ed.min}..{fmt_max(ed.max)}{note})")
        for group, (gmin, names) in groups:
            present = [n for n in names if n in obj]
            if len(present) > 1:
                self._f(out, ERROR, "cardinality", f"{loc}.{present[1]}", f"only one of {group}[x] allowed, found {', '.join(present)}")
            elif gmin and not present:
                self._f(out, ERROR, "cardinality", f"{loc}.{group}[x]", f"required element {group}[x] is missing in {tdef.name}")
        if ext_req and "extension" not in obj:
            for d in ext_req:
                self._f(out, d.min_severity, "cardinality", f"{loc}.extension('{d.url}')", f"required extension {d.name} is missing ({d.url}, {d.min}..{fmt_max(d.max)}{'; ' + d.note if d.note else ''})")
        for name, mn, sev, note in prof_req:
            v = obj.get(name)
            n = 0 if v is None else (len(v) if isinstance(v, list) else 1)
            if n < mn:
                what = "is missing" if n == 0 else f"occurs {n} times"
                self._f(out, sev, "cardinality", f"{loc}.{name}", f"{name} {what}: the profile requires at least {mn}{'; ' + note if note else ''}")
        if invs:
            self._invariants(obj, list(invs), loc, out)

    @staticmethod
    def _note(c: Constraint | None) -> str:
        return f"; {c.note}" if c is not None and c.note else ""

    def _as_list(self, value: Any, ed: ElementDef, loc: str, out: list) -> list | None:
        if isinstance(value, list):
            if not value:
                self._f(out, ERROR, "structure", loc, "empty array (omit the element instead)")
                return None
            return value
        if not self.lenient_lists:
            self._f(out, ERROR, "structure", loc, f"{ed.name} repeats: expected a JSON array, got {json_type_name(value)}")
        return [value] if isinstance(value, dict) else None

    def _primitive_extras(self, obj: dict, key: str, value: Any, tdef: TypeDef, path: str, loc: str, profile: Profile | None, out: list) -> None:
        """`_name` holds id/extensions of primitive `name` (both DSTU1 and R4 JSON)."""
        base = key[1:]
        ed = tdef.elements.get(base)
        bt = self.types.get(ed.type) if ed is not None else None
        if ed is None or bt is None or bt.kind != "primitive":
            self._f(out, ERROR, "structure", f"{loc}.{key}", f"unknown element {key!r} in {tdef.name}")
            return
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            iloc = f"{loc}.{base}[{i}]" if isinstance(value, list) else f"{loc}.{base}"
            if item is None:
                continue
            if not isinstance(item, dict):
                self._f(out, ERROR, "structure", iloc, f"{key} must be an object holding id/extension")
                continue
            for k, v in item.items():
                if k == "id":
                    continue
                if k == "extension":
                    if isinstance(v, list) and v:
                        self.extensions(v, f"{path}.{base}", iloc, "extension", profile, out)
                    else:
                        self._f(out, ERROR, "structure", f"{iloc}.extension", "extension must be a non-empty array")
                else:
                    self._f(out, ERROR, "structure", f"{iloc}.{k}", f"unknown element {k!r} on a primitive")
        if base not in obj and ed.min > 0:
            # a primitive may be present by extension only; the element counts as present
            pass

    # ------------------------------------------------------------------ values
    def value(self, v: Any, ed: ElementDef, cpath: str, loc: str, c: Constraint | None, profile: Profile | None, out: list) -> None:
        tname = ed.type
        if tname == RESOURCE:
            self.resource(v, loc, out)
            return
        t = ed.tdef
        if t is None:
            return
        if t.kind == "primitive":
            if v is None:
                self._f(out, ERROR, "structure", loc, "null is not allowed as a value")
                return
            err = self.checkers[t.base](v)
            if err is not None:
                if err == "empty string":
                    sev = c.empty_severity if c is not None else self.empty_sev
                    self._f(out, sev, "value", loc, "empty value: FHIR does not allow empty strings"
                            + (f"{self._note(c)}" if sev != ERROR else ""))
                else:
                    tolerated = c is not None and c.tolerated is not None and isinstance(v, str) and c.tolerated.match(v)
                    sev = c.type_severity if tolerated else ERROR
                    self._f(out, sev, "type", loc, f"{err}{self._note(c) if sev != ERROR else ''}")
                return
            if t.codes is not None and v not in t.codes:
                self._f(out, ERROR, "binding", loc, f"{v!r} is not one of the allowed codes: {', '.join(sorted(t.codes))}")
            if c is not None:
                self._constraint_value(v, tname, c, loc, out)
            return
        if not isinstance(v, dict):
            self._f(out, ERROR, "structure", loc, f"expected a JSON object ({tname}), got {json_type_name(v)}")
            return
        if not v:
            self._f(out, ERROR, "structure", loc, "empty object (omit the element instead)")
            return
        if c is not None:
            self._constraint_value(v, tname, c, loc, out)
        self.node(v, t, cpath, loc, profile, out)

    def _constraint_value(self, v: Any, tname: str, c: Constraint | ExtDef, loc: str, out: list) -> None:
        if c.fixed is not None and v != c.fixed:
            self._f(out, ERROR, "fixed", loc, f"value must be exactly {_show(c.fixed)}, got {_show(v)}")
        if c.pattern is not None and not _matches_pattern(v, c.pattern):
            self._f(out, ERROR, "pattern", loc, f"value must match {_show(c.pattern)}, got {_show(v)}")
        if c.binding is not None:
            self.check_binding(v, tname, c.binding, loc, out)
        if c.targets is not None and isinstance(v, dict):
            self.check_targets_of(v, c.targets, loc, out)

    # ------------------------------------------------------------------ bindings
    def check_binding(self, v: Any, tname: str, b: Binding, loc: str, out: list) -> None:
        vs = b.valueset
        strength = b.strength
        if vs is None or strength in ("example",):
            return
        if strength == "required":
            sev = ERROR if vs.complete else INFORMATION
        elif strength == "extensible":
            sev = WARNING if vs.complete else INFORMATION
        else:  # preferred
            sev = INFORMATION
        if tname in ("code", "string", "uri") or isinstance(v, str):
            if isinstance(v, str) and not vs.contains_code(v):
                self._f(out, sev, "binding", loc, f"code {v!r} is not in value set {vs.describe()} ({strength} binding)")
            return
        if not isinstance(v, dict):
            return
        if tname == "Coding" or ("code" in v and "coding" not in v and "system" in v):
            self._check_coding(v, vs, strength, sev, loc, out)
            return
        codings = v.get("coding")
        if codings is None:
            if strength == "required" and vs.complete:
                self._f(out, sev, "binding", loc, f"no coding given; a code from value set {vs.describe()} is required")
            return
        if not isinstance(codings, list):
            return
        ok = False
        problems: list[tuple[str, str, str]] = []
        for i, coding in enumerate(codings):
            if not isinstance(coding, dict):
                continue
            res = self._coding_verdict(coding, vs)
            if res is None:
                ok = True
            else:
                problems.append((f"{loc}.coding[{i}]", res[0], res[1]))
        if ok:
            # tolerated aliases still deserve a warning when used
            for ploc, kind, msg in problems:
                if kind == "alias":
                    self._f(out, WARNING, "binding", ploc, msg)
            return
        for ploc, kind, msg in problems:
            self._f(out, WARNING if kind == "alias" else sev, "binding", ploc, f"{msg} ({strength} binding)")

    def _coding_verdict(self, coding: dict, vs) -> tuple[str, str] | None:
        system = coding.get("system")
        code = coding.get("code")
        if vs.contains(system, code):
            return None
        canonical = vs.aliases.get(system) if system else None
        if canonical and vs.contains(canonical, code):
            return ("alias", f"system {system!r} is tolerated but Koppeltaal expects {canonical!r} for code {code!r}")
        if system not in vs.systems:
            allowed = ", ".join(sorted(vs.systems)) or "?"
            return ("code", f"coding system {system!r} is not in value set {vs.name} (expected {allowed}); code {code!r}")
        return ("code", f"code {code!r} is not in value set {vs.describe()}")

    def _check_coding(self, coding: dict, vs, strength: str, sev: str, loc: str, out: list) -> None:
        res = self._coding_verdict(coding, vs)
        if res is None:
            return
        kind, msg = res
        if kind == "alias":
            self._f(out, WARNING, "binding", loc, msg)
        else:
            self._f(out, sev, "binding", loc, f"{msg} ({strength} binding)")

    # ------------------------------------------------------------------ references
    def check_targets_of(self, ref: dict, targets: frozenset[str], loc: str, out: list) -> None:
        r = ref.get("reference")
        if isinstance(r, str):
            self.refs.append((loc, r, targets))
        if not self.check_targets:
            return
        rtype = ref.get("type") if isinstance(ref.get("type"), str) else None
        if rtype is None and isinstance(r, str):
            rtype = reference_type(r)
        if rtype is not None and rtype not in targets and "Resource" not in targets:
            self._f(out, ERROR, "reference", loc, f"reference to {rtype} not allowed here; expected {' | '.join(sorted(targets))}")

    # ------------------------------------------------------------------ extensions
    def extensions(self, items: list, ctx: str, loc: str, key: str, profile: Profile | None, out: list, defs: dict[str, ExtDef] | None = None) -> None:
        if defs is None and profile is not None:
            defs = profile.extensions.get(ctx)
        counts: dict[str, int] = {}
        for i, ext in enumerate(items):
            eloc = f"{loc}.{key}[{i}]"
            if not isinstance(ext, dict):
                self._f(out, ERROR, "structure", eloc, f"extension must be a JSON object, got {json_type_name(ext)}")
                continue
            url = ext.get("url")
            if not isinstance(url, str) or not url:
                self._f(out, ERROR, "extension-url", f"{eloc}.url", "extension has no url")
                self._ext_generic(ext, eloc, profile, out)
                continue
            d = defs.get(url) if defs else None
            if d is None and profile is not None and ":" not in url and profile.ext_base and defs:
                cand = defs.get(f"{profile.ext_base}#{url.lstrip('#')}")
                if cand is not None:
                    self._f(out, WARNING, "extension-url", f"{eloc}.url", f"relative extension url {url!r}; interpreted as {cand.url!r} (Koppeltaal extension URLs are absolute)")
                    d = cand
            if d is None:
                self._unknown_extension(ext, url, ctx, eloc, profile, out)
                continue
            counts[d.url] = counts.get(d.url, 0) + 1
            if d.warn:
                self._f(out, WARNING, "extension-url", f"{eloc}.url", d.warn)
            self._ext_value(ext, d, eloc, profile, out)
        if defs:
            for d in defs.values():
                n = counts.get(d.url, 0)
                if n < d.min:
                    self._f(out, d.min_severity, "cardinality", f"{loc}.extension('{d.url}')", f"required extension {d.name} is missing ({d.url}, {d.min}..{fmt_max(d.max)}{'; ' + d.note if d.note else ''})")
                elif n > d.max:
                    self._f(out, ERROR, "cardinality", f"{loc}.extension('{d.url}')", f"extension {d.name} occurs {n} times, at most {fmt_max(d.max)} allowed ({d.url})")

    def _unknown_extension(self, ext: dict, url: str, ctx: str, eloc: str, profile: Profile | None, out: list) -> None:
        owned = profile is not None and any(url.startswith(ns) for ns in profile.namespaces)
        if owned and profile.closed_extensions:
            where = self.ext_index.get(url)
            if where:
                here = f"{ctx} in profile {profile.id}" if profile.other_code or profile.type == "Other" else ctx
                self._f(out, ERROR, "extension-context", f"{eloc}.url", f"extension {url} is defined for {', '.join(where)}, not for {here}")
            else:
                self._f(out, ERROR, "extension-url", f"{eloc}.url", f"unknown extension url {url!r} for {ctx} (not defined by the {self.prefix.upper()} profiles; typo?)")
        elif self.foreign_ext_sev is not None:
            self._f(out, self.foreign_ext_sev, "extension-url", f"{eloc}.url", f"extension {url} is not defined by the {self.prefix.upper()} profiles; its content was not checked")
        self._ext_generic(ext, eloc, profile, out)

    def _ext_generic(self, ext: dict, eloc: str, profile: Profile | None, out: list) -> None:
        """Structure of an extension we have no definition for: url, one value[x] or nested extensions."""
        et = self.ext_type
        nvalues = 0
        for k, v in ext.items():
            if k in ("url", "id"):
                continue
            if k == "extension":
                if isinstance(v, list) and v:
                    self.extensions(v, "", eloc, "extension", None, out, defs={})
                else:
                    self._f(out, ERROR, "structure", f"{eloc}.extension", "extension must be a non-empty array")
                continue
            ed = et.elements.get(k)
            if ed is None or ed.group is None:
                self._f(out, ERROR, "structure", f"{eloc}.{k}", f"unknown element {k!r} in Extension")
                continue
            nvalues += 1
            self.value(v, ed, f"Extension.{k}", f"{eloc}.{k}", None, None, out)
        if nvalues > 1:
            self._f(out, ERROR, "extension-type", eloc, "extension has more than one value[x]")

    def _ext_value(self, ext: dict, d: ExtDef, eloc: str, profile: Profile | None, out: list) -> None:
        et = self.ext_type
        value_keys = []
        nested = None
        for k, v in ext.items():
            if k in ("url", "id"):
                continue
            if k == "extension":
                nested = v
                continue
            ed = et.elements.get(k)
            if ed is None or ed.group is None:
                self._f(out, ERROR, "structure", f"{eloc}.{k}", f"unknown element {k!r} in Extension")
                continue
            value_keys.append((k, ed, v))
        if d.children:
            if value_keys and nested is None and value_keys[0][0] in d.tolerated_types:
                k, ed, v = value_keys[0]
                self._f(out, WARNING, "extension-type", f"{eloc}.{k}", f"{d.name} is a complex extension; a plain {k} is an old (KT1.0) form that is tolerated{'; ' + d.note if d.note else ''}")
                self.value(v, ed, f"Extension.{k}", f"{eloc}.{k}", None, None, out)
                return
            for k, _, _ in value_keys:
                self._f(out, ERROR, "extension-type", f"{eloc}.{k}", f"{d.name} is a complex extension: it holds nested extensions, not a {k}")
            if nested is None:
                nested_items: list = []
            elif isinstance(nested, list):
                nested_items = nested
            else:
                self._f(out, ERROR, "structure", f"{eloc}.extension", "extension must be a JSON array")
                nested_items = [nested] if isinstance(nested, dict) else []
            self.extensions(nested_items, d.context, eloc, "extension", profile, out, defs=d.children)
            return
        if nested is not None:
            self._f(out, ERROR, "extension-type", f"{eloc}.extension", f"{d.name} is a simple extension; nested extensions are not allowed")
        if not value_keys:
            self._f(out, ERROR, "extension-type", eloc, f"extension {d.name} has no value (expected {' or '.join(d.types)})")
            return
        if len(value_keys) > 1:
            self._f(out, ERROR, "extension-type", eloc, "extension has more than one value[x]")
        k, ed, v = value_keys[0]
        vloc = f"{eloc}.{k}"
        if d.types and k not in d.types:
            if k in d.tolerated_types:
                self._f(out, WARNING, "extension-type", vloc, f"{d.name} should be {' or '.join(d.types)}, got {k} (tolerated: real clients send it{'; ' + d.note if d.note else ''})")
            else:
                self._f(out, ERROR, "extension-type", vloc, f"{d.name} must be {' or '.join(d.types)}, got {k}")
                self.value(v, ed, f"Extension.{k}", vloc, None, None, out)
                return
        self.value(v, ed, f"Extension.{k}", vloc, None, None, out)
        if isinstance(v, (dict, str)) or d.fixed is not None:
            self._constraint_value(v, ed.type, d, vloc, out)
        if d.range is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, hi = d.range
            if not lo <= v <= hi:
                self._f(out, d.range_severity, "value", vloc, f"{d.name} must be between {lo} and {hi}, got {v}")

    # ------------------------------------------------------------------ slices
    def _slices(self, items: list, slices: list[Slice], cpath: str, loc: str, out: list) -> None:
        counts = {s.name: 0 for s in slices}
        default = next((s for s in slices if s.default), None)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            chosen = None
            for s in slices:
                if s.match and all(_get_rel(item, rel) == val for rel, val in s.match.items()):
                    chosen = s
                    break
            if chosen is None:
                chosen = default
            if chosen is None:
                continue
            counts[chosen.name] += 1
            iloc = f"{loc}[{i}]"
            if chosen.max == 0:
                self._f(out, ERROR, "cardinality", iloc, f"slice {chosen.name} of {cpath} is not allowed (0..0)")
                continue
            for rel, mn in chosen.required.items():
                val = item.get(rel)
                n = 0 if val is None else (len(val) if isinstance(val, list) else 1)
                if n < mn:
                    self._f(out, ERROR, "cardinality", f"{iloc}.{rel}", f"{rel} is required in slice {chosen.name} of {cpath} (min {mn})")
            for rel, c in chosen.constraints.items():
                val = _get_rel(item, rel)
                if val is None:
                    continue
                if c.max == 0:
                    self._f(out, ERROR, "cardinality", f"{iloc}.{rel}", f"{rel} is not allowed in slice {chosen.name} of {cpath} (0..0)")
                    continue
                vals = val if isinstance(val, list) else [val]
                for j, vv in enumerate(vals):
                    vloc = f"{iloc}.{rel}" + (f"[{j}]" if isinstance(val, list) else "")
                    self._constraint_value(vv, "", c, vloc, out)
        for s in slices:
            n = counts[s.name]
            if n < s.min:
                self._f(out, ERROR, "cardinality", loc, f"slice {s.name} of {cpath} needs at least {s.min} item(s), found {n}")
            elif n > s.max and s.max != 0:
                self._f(out, ERROR, "cardinality", loc, f"slice {s.name} of {cpath} allows at most {fmt_max(s.max)} item(s), found {n}")

    # ------------------------------------------------------------------ invariants
    def _invariants(self, obj: dict, invs: list, loc: str, out: list) -> None:
        from ktbench.validation.invariants import evaluate

        for inv in invs:
            verdict = evaluate(inv, obj)
            if verdict is None:
                continue
            if verdict is False:
                self._f(out, inv.severity, "invariant", loc, f"{inv.key}: {inv.human}")
            elif isinstance(verdict, str):
                self._f(out, WARNING, "invariant", loc, f"{inv.key} could not be evaluated: {verdict}")


def _get_rel(item: dict, rel: str) -> Any:
    """Value at a dotted relative path; `x.@type` = resource type named by reference x."""
    cur: Any = item
    for part in rel.split("."):
        if part == "@type":
            if isinstance(cur, dict):
                t = cur.get("type")
                if isinstance(t, str):
                    return t
                r = cur.get("reference")
                return reference_type(r) if isinstance(r, str) else None
            return None
        if isinstance(cur, list):
            cur = cur[0] if cur else None
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _matches_pattern(v: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(v, dict):
            return False
        return all(k in v and _matches_pattern(v[k], pv) for k, pv in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(v, list):
            return False
        return all(any(_matches_pattern(item, p) for item in v) for p in pattern)
    return v == pattern


def _show(v: Any) -> str:
    import json

    try:
        text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= 160 else text[:157] + "..."

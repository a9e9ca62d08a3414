"""KT2 (FHIR R4 REST): the 11 KT2 profiles over the R4 base types.

Profile choice per resource: a declared `meta.profile` we know (built-in or
from a loaded StructureDefinition package), else the KT2 profile for the
resource type (with a warning: KT2 resources SHOULD declare it).  Bundles are
checked structurally and each `entry[].resource` against its own profile.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ktbench.validation import primitives
from ktbench.validation.findings import WARNING, Finding
from ktbench.validation.loader import (
    PROFILES_DIR,
    build_typesystem,
    build_valuesets,
    compile_profile,
    extension_index,
    read_data,
)
from ktbench.validation.model import Profile, TypeSystem
from ktbench.validation.walker import Walker

PREFIX = "kt2"


@dataclass
class KT2Standard:
    ts: TypeSystem
    valuesets: dict
    profiles: dict[str, Profile]  # by url (unversioned) and by id
    defaults: dict[str, Profile]  # resource type -> profile
    namespaces: tuple[str, ...]
    walker: Walker


def _valuesets(data: dict) -> dict:
    vs_data = {"valueset": {}}
    for name, spec in data.get("valueset", {}).items():
        vs_data["valueset"][name] = spec
    vsets = build_valuesets(vs_data)
    displays = {}
    for system, code, display in data.get("displays", []):
        displays[(system, code)] = display
    for vs in vsets.values():
        vs.displays = {k: v for k, v in displays.items() if k[0] in vs.systems}
    return vsets


@functools.lru_cache(maxsize=1)
def standard() -> KT2Standard:
    base_dir = PROFILES_DIR / "kt2"
    ts = build_typesystem(read_data(base_dir / "base" / "r4-types.json"), "R4", primitives.R4)
    valuesets = _valuesets(read_data(base_dir / "valuesets.json"))
    settings = read_data(base_dir / "standard.toml")
    namespaces = tuple(settings.get("namespaces", ()))
    profiles: dict[str, Profile] = {}
    compiled = []
    for path in sorted((base_dir / "profiles").glob("*.json")):
        p = compile_profile(read_data(path), ts, valuesets, PREFIX, namespaces)
        compiled.append(p)
        profiles[p.url] = p
        profiles[p.id] = p
    defaults = {rt: profiles[pid] for rt, pid in settings.get("default_profile", {}).items()}
    std = KT2Standard(ts, valuesets, profiles, defaults, namespaces, None)  # type: ignore[arg-type]
    std.walker = Walker(ts, PREFIX, _resolver_for(std, None), extension_index=extension_index(compiled))
    return std


def _resolver_for(std: KT2Standard, package):
    def resolve(obj: dict, loc: str, out: list) -> Profile | None:
        rt = obj.get("resourceType")
        meta = obj.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        if isinstance(declared, list):
            unknown = []
            for url in declared:
                if not isinstance(url, str):
                    continue
                key = url.split("|", 1)[0]
                p = (package.profiles.get(key) if package is not None else None) or std.profiles.get(key)
                if p is not None:
                    if p.type != rt:
                        out.append(Finding("error", f"{PREFIX}.profile", f"{loc}.meta.profile", f"profile {url} is for {p.type}, not {rt}"))
                        continue
                    return p
                unknown.append(url)
            if unknown:
                fallback = _default(std, package, rt)
                what = f"; validated against {fallback.url}" if fallback else "; only the R4 base structure was checked"
                out.append(Finding(WARNING, f"{PREFIX}.profile", f"{loc}.meta.profile", f"unknown profile {', '.join(unknown)}{what}"))
                return fallback
        p = _default(std, package, rt)
        if p is not None and rt != "Bundle":
            out.append(Finding(WARNING, f"{PREFIX}.profile", f"{loc}.meta", f"no meta.profile declared (KT2 resources SHOULD name their profile); validated against {p.url}"))
        return p

    return resolve


def _default(std: KT2Standard, package, rt) -> Profile | None:
    if package is not None:
        p = package.defaults.get(rt)
        if p is not None:
            return p
    return std.defaults.get(rt)


def validate(obj: dict, out: list[Finding], package=None) -> list[str]:
    std = standard()
    w = std.walker.clone()
    w.refs = []
    if package is not None:
        w.resolver = _resolver_for(std, package)
        if package.extension_index:
            w.ext_index = {**w.ext_index, **package.extension_index}
    used: list[str] = []
    root = obj.get("resourceType") if isinstance(obj.get("resourceType"), str) else "Resource"
    original = w.resolver

    def tracking(o, loc, o_out):
        p = original(o, loc, o_out)
        if p is not None and p.id not in used:
            used.append(p.id)
        return p

    w.resolver = tracking
    w.resource(obj, root, out)
    return used

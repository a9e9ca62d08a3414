"""Load official StructureDefinitions (a FHIR package folder or .tgz) as validator profiles.

Koppeltaal publishes its KT2 profiles as FHIR packages; a tester may want to
check traffic against exactly the package a partner claims to implement.  Each
StructureDefinition snapshot is translated into the compact profile format
(profiles/README.md) and compiled like the built-in profiles, so the same walker
applies: cardinality, allowed choice types, fixed/pattern values, bindings
(when the value set is in the package or built in), reference targets,
extension URLs/value types and the profile's own invariants.

Not translated (documented limits): slices whose discriminator is not a
`value`/`pattern` on a child path, `type`/`profile` discriminators, extensions
nested under slices, bindings to value sets we cannot see.
"""

from __future__ import annotations

import functools
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktbench.validation.loader import ProfileDataError, build_valuesets, compile_profile, resolve_path
from ktbench.validation.model import Profile, parse_max

CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
MAX_MEMBER_BYTES = 20 * 1024 * 1024


class PackageError(ValueError):
    """The package cannot be read."""


@dataclass
class Package:
    name: str
    profiles: dict[str, Profile] = field(default_factory=dict)  # by url and id
    defaults: dict[str, Profile] = field(default_factory=dict)  # resource type -> profile (when unambiguous)
    extension_index: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what could not be translated


def _read_resources(path: Path) -> list[dict]:
    out: list[dict] = []
    if path.is_dir():
        for p in sorted(path.rglob("*.json")):
            if p.stat().st_size > MAX_MEMBER_BYTES:
                continue
            try:
                out.append(json.loads(p.read_bytes()))
            except (ValueError, OSError):
                continue
        return out
    if path.is_file() and (path.suffix in (".tgz", ".gz") or path.name.endswith(".tar.gz")):
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar.getmembers():
                    if not member.isfile() or not member.name.endswith(".json") or member.size > MAX_MEMBER_BYTES:
                        continue
                    fh = tar.extractfile(member)
                    if fh is None:
                        continue
                    try:
                        out.append(json.load(io.BytesIO(fh.read())))
                    except ValueError:
                        continue
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise PackageError(f"cannot read package {path}: {exc}") from None
        return out
    raise PackageError(f"package {path} is neither a folder nor a .tgz file")


def _vs_from_resource(vs: dict, codesystems: dict[str, list[str]]) -> dict | None:
    url = vs.get("url")
    if not url:
        return None
    include = []
    complete = True
    compose = vs.get("compose") or {}
    for inc in compose.get("include", []):
        system = inc.get("system")
        if not system:
            complete = False
            continue
        if inc.get("concept"):
            include.append({"system": system, "codes": [c["code"] for c in inc["concept"] if "code" in c]})
        elif system in codesystems:
            include.append({"system": system, "codes": codesystems[system]})
        else:
            include.append({"system": system})
            complete = False
        if inc.get("filter") or inc.get("valueSet"):
            complete = False
    for c in (vs.get("expansion") or {}).get("contains", []):
        if c.get("system") and c.get("code"):
            include.append({"system": c["system"], "codes": [c["code"]]})
    if not include:
        return None
    return {"url": url, "include": include, "complete": complete}


def _split_id(eid: str) -> list[tuple[str, str | None]]:
    parts = []
    for seg in eid.split("."):
        name, _, sl = seg.partition(":")
        parts.append((name, sl or None))
    return parts


def _value_key(element: dict, prefix: str) -> Any:
    for k, v in element.items():
        if k.startswith(prefix) and k != prefix:
            return v
    return None


def _types_of_targets(targets: list[str], by_url_type: dict[str, str]) -> list[str] | None:
    out = []
    for t in targets:
        u = t.split("|", 1)[0]
        if u in by_url_type:
            out.append(by_url_type[u])
        elif u.startswith(CORE_SD):
            out.append(u[len(CORE_SD):])
        else:
            out.append(u.rsplit("/", 1)[-1])
    if "Resource" in out:
        return None
    return out


def _sd_to_spec(sd: dict, ts, by_url_type: dict[str, str], ext_sds: dict[str, dict], vs_urls: set[str], notes: list[str]) -> dict:
    rtype = sd["type"]
    url = sd["url"]
    pid = sd.get("id") or sd.get("name")
    if sd.get("version"):
        pid = f"{pid}|{sd['version']}"  # tells package profiles apart from the built-in ones in reports
    spec: dict = {"id": pid, "url": url, "type": rtype, "title": sd.get("title") or sd.get("name", ""),
                  "element": {}, "extension": {}, "slice": {}, "invariant": []}
    elements = (sd.get("snapshot") or {}).get("element") or (sd.get("differential") or {}).get("element") or []
    by_id = {e["id"]: e for e in elements if "id" in e}
    for e in elements:
        eid = e.get("id") or e.get("path")
        parts = _split_id(eid)
        if len(parts) < 2:
            continue
        sliced_at = next((i for i, (_, s) in enumerate(parts) if s), None)
        plain = ".".join(n for n, _ in parts)
        if sliced_at is None:
            _plain_element(spec, e, plain, ts, by_url_type, vs_urls, notes)
            for c in e.get("constraint", []):
                src = c.get("source", "")
                if src and src.startswith(CORE_SD):
                    continue
                if not c.get("expression"):
                    continue
                spec["invariant"].append({"key": c["key"], "path": plain.replace("[x]", ""), "expression": c["expression"],
                                          "human": c.get("human", c["key"]), "severity": c.get("severity", "error")})
            continue
        name, sl = parts[sliced_at]
        parent_plain = ".".join(n for n, _ in parts[:sliced_at])
        if name in ("extension", "modifierExtension"):
            if sliced_at != len(parts) - 1 or any(s for _, s in parts[:sliced_at]):
                continue  # children of an extension slice, or extensions under other slices
            _extension_slice(spec, e, parent_plain, ext_sds, by_url_type, notes)
            continue
        if sliced_at == len(parts) - 1:
            slicing = (by_id.get(".".join(f"{n}:{s}" if s else n for n, s in parts[:sliced_at]) + f".{name}") or {}).get("slicing")
            _slice_head(spec, e, f"{parent_plain}.{name}", sl, slicing, by_id, eid, notes)
        elif sliced_at == len(parts) - 2:
            _slice_child(spec, e, f"{parent_plain}.{name}", sl, parts[-1][0])
    for key in ("element", "extension", "slice", "invariant"):
        if not spec[key]:
            del spec[key]
    # slices we could not give a discriminator never match anything: drop them
    if "slice" in spec:
        spec["slice"] = {p: [s for s in lst if s.get("match")] for p, lst in spec["slice"].items()}
        spec["slice"] = {p: lst for p, lst in spec["slice"].items() if lst}
    return spec


def _plain_element(spec: dict, e: dict, plain: str, ts, by_url_type, vs_urls, notes) -> None:
    if plain.endswith("[x]"):
        head, _, last = plain.rpartition(".")
        group = last[:-3]
        parent = resolve_path(ts, head)
        t = ts.types.get(head) if "." not in head else (ts.types.get(parent[1].type) if parent else None)
        if t is None:
            return
        alts = [ed for ed in t.elements.values() if ed.group == group]
        allowed = {group + ty["code"][0].upper() + ty["code"][1:] for ty in e.get("type", []) if ty.get("code")}
        mx = e.get("max")
        for ed in alts:
            c: dict = {}
            if mx == "0" or (allowed and ed.name not in allowed):
                c["max"] = 0
            if c:
                spec["element"][f"{head}.{ed.name}"] = c
        return
    found = resolve_path(ts, plain)
    if found is None:
        return
    _, base = found
    c: dict = {}
    if "min" in e and int(e["min"]) > base.min:
        c["min"] = int(e["min"])
    if "max" in e and parse_max(e["max"]) < base.max:
        c["max"] = e["max"]
    fixed = _value_key(e, "fixed")
    if fixed is not None:
        c["fixed"] = fixed
    pattern = _value_key(e, "pattern")
    if pattern is not None:
        c["pattern"] = pattern
    b = e.get("binding") or {}
    vs = (b.get("valueSet") or "").split("|", 1)[0]
    if b.get("strength") in ("required", "extensible") and vs:
        if vs in vs_urls:
            c["binding"] = {"valueset": vs, "strength": b["strength"]}
        elif base.codes is None and b.get("strength") == "required":
            notes.append(f"{spec['id']}: binding of {plain} to {vs} not checked (value set not available)")
    for ty in e.get("type", []):
        if ty.get("code") == "Reference" and ty.get("targetProfile"):
            targets = _types_of_targets(ty["targetProfile"], by_url_type)
            if targets:
                c["targets"] = targets
    if c:
        spec["element"][plain] = c


def _extension_slice(spec: dict, e: dict, ctx: str, ext_sds: dict[str, dict], by_url_type, notes) -> None:
    profiles = [p for ty in e.get("type", []) for p in ty.get("profile", [])]
    if not profiles:
        return
    url = profiles[0].split("|", 1)[0]
    d: dict = {"name": e.get("sliceName", url), "min": int(e.get("min", 0)), "max": e.get("max", "*")}
    ext = ext_sds.get(url)
    if ext is None:
        notes.append(f"{spec['id']}: extension {url} not in the package; its value type is not checked")
    else:
        for el in (ext.get("snapshot") or ext.get("differential") or {}).get("element", []):
            if el.get("path") == "Extension.value[x]" and el.get("type") and el.get("max") != "0":
                d["type"] = ["value" + t["code"][0].upper() + t["code"][1:] for t in el["type"] if t.get("code")]
                for t in el["type"]:
                    if t.get("code") == "Reference" and t.get("targetProfile"):
                        targets = _types_of_targets(t["targetProfile"], by_url_type)
                        if targets:
                            d["targets"] = targets
    spec["extension"].setdefault(ctx, {})[url] = d


def _slice_head(spec: dict, e: dict, path: str, name: str, slicing: dict | None, by_id: dict, eid: str, notes) -> None:
    lst = spec["slice"].setdefault(path, [])
    s = {"name": name, "min": int(e.get("min", 0)), "max": e.get("max", "*"), "match": {}}
    for disc in (slicing or {}).get("discriminator", []):
        if disc.get("type") not in ("value", "pattern") or disc.get("path") in (None, "$this"):
            continue
        child = by_id.get(f"{eid}.{disc['path']}")
        val = None
        if child is not None:
            val = _value_key(child, "fixed")
            if val is None:
                val = _value_key(child, "pattern")
        if val is None:
            continue
        if isinstance(val, dict):
            for k in ("system", "code"):
                if k in val:
                    s["match"][f"{disc['path']}.{k}"] = val[k]
        else:
            s["match"][disc["path"]] = val
    if not s["match"]:
        notes.append(f"{spec['id']}: slice {path}:{name} has no value/pattern discriminator; not checked")
    lst.append(s)


def _slice_child(spec: dict, e: dict, path: str, name: str, child: str) -> None:
    for s in spec["slice"].get(path, []):
        if s["name"] != name:
            continue
        if int(e.get("min", 0)) > 0:
            s.setdefault("required", {})[child] = int(e["min"])
        if e.get("max") == "0":
            s.setdefault("element", {})[child] = {"max": 0}


def load_package(path: str | Path) -> Package:
    """Read a package folder/.tgz and compile its resource profiles (cached per path)."""
    return _load(str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Package:
    from ktbench.validation import kt2  # the KT2 (R4) type system and built-in value sets

    std = kt2.standard()
    ts = std.ts
    resources = _read_resources(Path(path))
    sds = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "StructureDefinition"]
    if not sds:
        raise PackageError(f"package {path} contains no StructureDefinition")
    codesystems = {}
    for r in resources:
        if isinstance(r, dict) and r.get("resourceType") == "CodeSystem" and r.get("url") and r.get("concept"):
            codesystems[r["url"]] = [c["code"] for c in r["concept"] if "code" in c]
    vs_specs = {}
    for r in resources:
        if isinstance(r, dict) and r.get("resourceType") == "ValueSet":
            spec = _vs_from_resource(r, codesystems)
            if spec:
                vs_specs[spec["url"]] = spec
    valuesets = dict(std.valuesets)
    valuesets.update(build_valuesets({"valueset": vs_specs}))
    by_url_type = {sd["url"]: sd.get("type") for sd in sds if sd.get("url")}
    ext_sds = {sd["url"]: sd for sd in sds if sd.get("type") == "Extension"}
    pkg = Package(name=Path(path).name)
    for ext in ext_sds.values():
        ctx = [c.get("expression") for c in ext.get("context", []) if c.get("expression")]
        if ctx and len(ctx) < 20:
            pkg.extension_index[ext["url"]] = ctx
    per_type: dict[str, list[Profile]] = {}
    for sd in sds:
        if sd.get("kind") != "resource" or sd.get("type") not in ts.types or sd.get("abstract"):
            continue
        spec = _sd_to_spec(sd, ts, by_url_type, ext_sds, set(valuesets), pkg.notes)
        base_url = sd["url"].rsplit("/", 1)[0] + "/"
        try:
            profile = compile_profile(spec, ts, valuesets, "kt2", namespaces=(base_url,))
        except ProfileDataError as exc:
            pkg.notes.append(f"{sd['url']}: skipped ({exc})")
            continue
        pkg.profiles[profile.url] = profile
        pkg.profiles[profile.id] = profile
        per_type.setdefault(profile.type, []).append(profile)
    for rt, lst in per_type.items():
        if len(lst) == 1:
            pkg.defaults[rt] = lst[0]
    return pkg


def coerce_package(value) -> Package | None:
    if value is None or isinstance(value, Package):
        return value
    return load_package(value)

"""Convert the KT2 IG (FSH v0.16.3) into the validator's profile data, once.

Run by a developer from the repository root (the output is committed as data;
the script reads ../shared only when run):

    /tmp/venv/kt/bin/python profiles/tools/build_kt2.py [../shared/kt2]

Writes:
  profiles/kt2/base/r4-types.json     R4 base structure (fhir.resources R4B models, R4-corrected,
                                      cardinalities cross-checked against the package-0.8 snapshots)
  profiles/kt2/profiles/<Id>.json     the 11 KT2 profiles in the compact profile format
  profiles/kt2/valuesets.json         KT2 code systems/value sets (+ external codes from kt2_overlay.toml)
  profiles/kt2/examples/<name>.json   the IG's FSH Instance examples as FHIR JSON (test data)

Only the FSH subset the KT2 IG uses is understood (see fsh_reader.py); anything
else is reported on stdout so a newer IG version cannot be converted silently wrong.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fsh_reader  # noqa: E402
import r4_base  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "kt2"
BASE_R4 = {"Task", "Patient", "Practitioner", "RelatedPerson", "Organization", "CareTeam", "ActivityDefinition",
           "AuditEvent", "Device", "Endpoint", "Subscription", "OperationOutcome", "Bundle"}
WARNINGS: list[str] = []


def warn(msg: str) -> None:
    WARNINGS.append(msg)


# ------------------------------------------------------------------------------------- types
class Types:
    """Path resolution over the generated R4 base types."""

    def __init__(self, data: dict):
        self.types = data["types"]

    def elements(self, tname: str) -> dict[str, list]:
        spec = self.types.get(tname) or {}
        return {row[0]: row for row in spec.get("elements", [])}

    def element(self, tname: str, name: str) -> list | None:
        return self.elements(tname).get(name)

    def choice(self, tname: str, group: str) -> list[list]:
        return [row for row in self.types.get(tname, {}).get("elements", []) if row[4] == group]

    def resolve(self, path: str) -> tuple[str, list] | None:
        """('Parent type', element row) for 'Task.owner.type' style paths (JSON names)."""
        parts = path.split(".")
        cur = parts[0]
        row = None
        parent = cur
        for part in parts[1:]:
            parent = cur
            row = self.element(cur, part)
            if row is None:
                return None
            cur = row[3]
        return (parent, row) if row else None

    def is_primitive(self, tname: str) -> bool:
        return self.types.get(tname, {}).get("kind") == "primitive" or tname.endswith("#code")


# ------------------------------------------------------------------------------------- values
_CODE_RE = re.compile(r'^(?P<system>[^\s"#]*)#(?P<code>[^\s"]+|"[^"]*")(\s+"(?P<display>(?:[^"\\]|\\.)*)")?\s*$')
_QTY_RE = re.compile(r"^(?P<value>-?\d+(\.\d+)?)\s+'(?P<code>[^']*)'(\s+\"(?P<unit>[^\"]*)\")?\s*$")
_REF_RE = re.compile(r'^Reference\((?P<target>[^)]*)\)(\s+"(?P<display>[^"]*)")?\s*$')


class Resolver:
    def __init__(self, aliases: dict[str, str], names: dict[str, str]):
        self.aliases = aliases
        self.names = names

    def system(self, token: str) -> str:
        if token.startswith("$"):
            return self.aliases.get(token, token)
        return self.names.get(token, self.aliases.get(token, token))

    def code(self, text: str) -> dict | None:
        m = _CODE_RE.match(text.strip())
        if not m:
            return None
        out = {}
        if m.group("system"):
            out["system"] = self.system(m.group("system"))
        code = m.group("code")
        out["code"] = code.strip('"')
        if m.group("display") is not None:
            out["display"] = m.group("display")
        return out


# ------------------------------------------------------------------------------------- build
def main(argv: list[str]) -> int:
    shared = Path(argv[1]) if len(argv) > 1 else HERE.parents[1] / ".." / "shared" / "kt2"
    fsh_dir = shared / "fsh"
    overlay = tomllib.loads((HERE / "kt2_overlay.toml").read_text(encoding="utf-8"))
    entities = fsh_reader.read_entities(sorted(fsh_dir.rglob("*.fsh")))

    # --- base types
    base = r4_base.build()
    pkg = shared / "package-0.8"
    for sd_path in sorted(pkg.glob("StructureDefinition-KT2*.json")):
        sd = json.loads(sd_path.read_text(encoding="utf-8"))
        if sd.get("kind") == "resource":
            for change in r4_base.apply_snapshot_cardinality(base["types"], sd):
                print(f"  base cardinality from {sd_path.name}: {change}")
    types = Types(base)
    # every R4 resource type name (the resource-origin extension's context lists all DomainResources)
    origin = next(e for e in entities if e.kind == "Extension" and e.name == "KT2_ResourceOrigin")
    names_r4 = {n.strip() for n in origin.header["Context"].split("|")} | {"Bundle", "Binary", "Parameters"}
    base["resource_names"] = sorted(names_r4)

    aliases = {e.name: e.header["value"] for e in entities if e.kind == "Alias"}
    names: dict[str, str] = dict(overlay.get("names", {}))
    canonical = overlay["canonical"]
    by_kind: dict[str, dict[str, fsh_reader.Entity]] = {}
    for e in entities:
        by_kind.setdefault(e.kind, {})[e.name] = e

    def caret_url(e: fsh_reader.Entity) -> str | None:
        for r in e.rules:
            if r.path == "" and r.text.startswith("^url"):
                return fsh_reader.parse_string(r.text.split("=", 1)[1])
        return None

    # profiles: name -> (id, url, type)
    profile_info: dict[str, dict] = {}
    for name, e in by_kind.get("Profile", {}).items():
        pid = e.header.get("Id", name)
        parent = e.header["Parent"]
        rtype = parent if parent in BASE_R4 else overlay["parent"].get(parent, {}).get("type")
        if rtype is None:
            warn(f"profile {name}: unknown parent {parent}")
            continue
        url = caret_url(e) or f"{canonical}/StructureDefinition/{pid}"
        profile_info[name] = {"id": pid, "url": url, "type": rtype, "parent": parent}
        names[name] = url
    ext_info: dict[str, dict] = {}
    for name, e in by_kind.get("Extension", {}).items():
        eid = e.header.get("Id", name)
        url = caret_url(e) or f"{canonical}/StructureDefinition/{eid}"
        names[name] = url
        ext_info[name] = {"id": eid, "url": url, "entity": e}
    for kind in ("ValueSet", "CodeSystem"):
        for name, e in by_kind.get(kind, {}).items():
            eid = e.header.get("Id", name)
            names[name] = caret_url(e) or f"{canonical}/{kind}/{eid}"
    res = Resolver(aliases, names)

    def ref_type(target: str) -> str:
        target = target.strip()
        if target in profile_info:
            return profile_info[target]["type"]
        return target.split("|")[0].rsplit("/", 1)[-1]

    # --- code systems and value sets
    codesystems: dict[str, dict] = {url: dict(spec) for url, spec in overlay.get("codesystem", {}).items()}
    for name, e in by_kind.get("CodeSystem", {}).items():
        codes, displays = [], []
        for r in e.rules:
            m = re.match(r'^#(\S+)(\s+"([^"]*)")?', r.raw)
            if m:
                codes.append(m.group(1).strip('"'))
                if m.group(3):
                    displays.append([names[name], m.group(1).strip('"'), m.group(3)])
        codesystems[names[name]] = {"codes": codes, "displays": displays}
    valuesets: dict[str, dict] = {}
    for url, spec in overlay.get("valueset", {}).items():
        valuesets[spec.get("name", url)] = {"url": url, "complete": spec.get("complete", True), "include": spec.get("include", [])}
    for name, e in by_kind.get("ValueSet", {}).items():
        url = names[name]
        include: dict[str, list | None] = {}
        complete = True
        for r in e.rules:
            text = r.raw
            m = re.match(r"^include codes from system (\S+)", text)
            if m:
                sys_url = res.system(m.group(1))
                cs = codesystems.get(sys_url)
                if cs is None:
                    warn(f"value set {name}: code system {sys_url} unknown; any code accepted (incomplete)")
                    include[sys_url] = None
                    complete = False
                else:
                    include[sys_url] = list(cs["codes"])
                    complete = complete and cs.get("complete", True)
                continue
            m = re.match(r"^include codes from valueset (\S+)", text)
            if m:
                vs_url = res.system(m.group(1))
                ext = overlay.get("valueset", {}).get(vs_url)
                if ext is None:
                    warn(f"value set {name}: included value set {vs_url} unknown")
                else:
                    for inc in ext.get("include", []):
                        include.setdefault(inc["system"], None)
                complete = False
                continue
            c = res.code(text)
            if c and "system" in c:
                lst = include.setdefault(c["system"], [])
                if lst is not None:
                    lst.append(c["code"])
                continue
            if text.startswith("^") or text.startswith("insert"):
                continue
            warn(f"value set {name}: rule not understood: {text}")
        valuesets[name] = {
            "url": url,
            "complete": complete,
            "include": [{"system": s, **({"codes": c} if c is not None else {})} for s, c in include.items()],
        }
    displays = []
    for cs in codesystems.values():
        displays.extend(cs.get("displays", []))

    # --- extensions
    extensions: dict[str, dict] = {}
    for name, info in ext_info.items():
        e = info["entity"]
        spec: dict = {"url": info["url"], "name": info["id"], "max": "*", "types": [], "targets": None}
        for r in e.rules:
            if r.path == "" and re.match(r"^\.\.\s*(\d+|\*)$", r.text or ""):
                pass
            if r.raw.startswith(". ") or r.raw == ".":
                m = re.search(r"\.\.(\d+|\*)", r.raw)
                if m and "^" not in r.raw:
                    spec["max"] = m.group(1)
                continue
            if r.path == "value[x]":
                m = re.match(r"^only (.+)$", r.text)
                if m:
                    t = m.group(1).strip()
                    rm = re.match(r"^Reference\((.+)\)$", t)
                    if rm:
                        spec["types"] = ["valueReference"]
                        spec["targets"] = [ref_type(x) for x in rm.group(1).split(" or ")]
                    else:
                        spec["types"] = ["value" + x.strip()[0].upper() + x.strip()[1:] for x in t.split(" or ")]
        if not spec["types"]:
            warn(f"extension {name}: no value type found")
        extensions[name] = spec

    # --- invariants
    invariants: dict[str, dict] = {}
    for name, e in by_kind.get("Invariant", {}).items():
        expr = e.header.get("Expression")
        sev = e.header.get("Severity", "#error")
        for r in e.rules:
            if r.path == "expression":
                expr = fsh_reader.parse_string(r.text.split("=", 1)[1])
            if r.path == "severity":
                sev = r.text.split("=", 1)[1].strip()
        invariants[name] = {"key": name, "expression": " ".join(expr.split()), "human": e.header.get("Description", name), "severity": sev.lstrip("#")}

    # --- profiles
    rulesets = by_kind.get("RuleSet", {})
    OUT.joinpath("profiles").mkdir(parents=True, exist_ok=True)
    for old in OUT.joinpath("profiles").glob("*.json"):
        old.unlink()
    for name, info in profile_info.items():
        spec = build_profile(name, info, by_kind["Profile"][name], rulesets, types, res, extensions, invariants, overlay, ref_type)
        path = OUT / "profiles" / f"{info['id']}.json"
        path.write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parents[1])}")

    (OUT / "base").mkdir(parents=True, exist_ok=True)
    (OUT / "base" / "r4-types.json").write_text(json.dumps(base, indent=1) + "\n", encoding="utf-8")
    vs_out = {"valueset": valuesets, "displays": displays}
    (OUT / "valuesets.json").write_text(json.dumps(vs_out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    # --- examples
    ex_dir = OUT / "examples"
    ex_dir.mkdir(parents=True, exist_ok=True)
    for old in ex_dir.glob("*.json"):
        old.unlink()
    instances = by_kind.get("Instance", {})
    inst_types = {}
    for iname, e in instances.items():
        of = e.header.get("InstanceOf", "")
        inst_types[iname] = profile_info[of]["type"] if of in profile_info else overlay["parent"].get(of, {}).get("type", of)
    manifest = {}
    built: dict[str, dict] = {}
    order = sorted(instances, key=lambda n: instances[n].header.get("Usage", "") != "#inline")
    for iname in order:
        e = instances[iname]
        rtype = inst_types[iname]
        if rtype not in types.types:
            warn(f"instance {iname}: type {rtype} not in the R4 base tables; skipped")
            continue
        builder = InstanceBuilder(rtype, iname, types, res, inst_types, rulesets, extensions, profile_info, e.header.get("InstanceOf", ""))
        builder.built = built
        obj = builder.build(e.rules)
        built[iname] = obj
        built.setdefault(obj.get("id", iname), obj)  # FSH may name an instance by its id
        (ex_dir / f"{iname}.json").write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        manifest[iname] = {"resourceType": rtype, "instanceOf": e.header.get("InstanceOf"), "usage": e.header.get("Usage", "").lstrip("#"),
                           "profile": (obj.get("meta") or {}).get("profile", [None])[0]}
    (ex_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(manifest)} examples")
    for w in WARNINGS:
        print("WARNING:", w)
    return 0


def _split_slice(seg: str) -> tuple[str, str | None]:
    """'name[slice]' -> ('name', 'slice'); a choice 'deceased[x]' stays whole."""
    if seg.endswith("[x]"):
        return seg, None
    m = re.match(r"^([^\[]+)(\[(.+)\])?$", seg)
    return (m.group(1), m.group(3)) if m else (seg, None)


def build_profile(name, info, entity, rulesets, types: Types, res: Resolver, extensions, invariants, overlay, ref_type) -> dict:
    rtype = info["type"]
    parent = overlay["parent"].get(info["parent"], {})
    spec: dict = {
        "id": info["id"],
        "url": info["url"],
        "type": rtype,
        "title": entity.header.get("Title", name),
        "source": f"KT2 IG FSH {Path(entity.source).name}",
        "element": {},
        "extension": {},
        "slice": {},
        "invariant": [],
    }
    slices: dict[str, dict[str, dict]] = {}
    for path, lst in parent.get("slice", {}).items():
        for s in lst:
            slices.setdefault(path, {})[s["name"]] = json.loads(json.dumps(s))
    parent_ext = parent.get("extensions", {})

    # expand inserted rule sets
    rules: list[tuple[str, str]] = []
    for r in entity.rules:
        if r.text.startswith("insert "):
            rs = rulesets.get(r.text.split()[1])
            if rs is None:
                continue
            for rr in rs.rules:
                p = f"{r.path}.{rr.path}" if r.path and rr.path else (r.path or rr.path)
                rules.append((p, rr.text))
            continue
        rules.append((r.path, r.text))

    def elem(path: str) -> dict:
        return spec["element"].setdefault(path, {})

    ext_slices: dict[str, tuple[str, str]] = {}  # slice name -> (context path, url)
    for path, text in rules:
        if not text or text.startswith("^"):
            continue
        segs = path.split(".") if path else []
        # locate a slice in the path (not extension slices)
        slice_at = None
        for i, seg in enumerate(segs):
            base_name, sl = _split_slice(seg)
            if sl is not None and base_name not in ("extension", "modifierExtension") and not sl.isdigit():
                slice_at = i
                break
        plain = ".".join(_split_slice(s)[0] for s in segs)
        full = f"{rtype}.{plain}" if plain else rtype
        # --- contains
        m = re.match(r"^contains (.+)$", text)
        if m:
            items = [x.strip() for x in re.split(r"\s+and\s+", m.group(1))]
            ctx = full.rsplit(".", 1)[0] if full.endswith(".extension") else None
            for item in items:
                im = re.match(r"^(\S+)(\s+named\s+(\S+))?\s+(\d+)\.\.(\d+|\*)", item)
                if not im:
                    warn(f"{name}: contains item not understood: {item}")
                    continue
                what, alias, mn, mx = im.group(1), im.group(3), im.group(4), im.group(5)
                if ctx is not None:
                    ext = extensions.get(what)
                    if ext is None:
                        warn(f"{name}: unknown extension {what}")
                        continue
                    emax = ext["max"]
                    if emax != "*" and (mx == "*" or int(emax) < int(mx)):
                        mx = emax
                    d = {"name": alias or ext["name"], "min": int(mn), "max": mx, "type": ext["types"]}
                    if ext["targets"]:
                        d["targets"] = ext["targets"]
                    spec["extension"].setdefault(ctx, {})[ext["url"]] = d
                    ext_slices[alias or what] = (ctx, ext["url"])
                else:
                    sl = slices.setdefault(full, {}).setdefault(what, {"name": what})
                    sl["min"] = int(mn)
                    sl["max"] = mx
                    match = overlay.get("slice_match", {}).get(full, {}).get(what)
                    if match:
                        sl["match"] = match
            continue
        # --- extension slice rules
        if segs and _split_slice(segs[-1])[0] == "extension" and _split_slice(segs[-1])[1]:
            slname = _split_slice(segs[-1])[1]
            cm = re.match(r"^(\d*)\.\.(\d+|\*)?", text)
            if slname in ext_slices:
                ctx, url = ext_slices[slname]
                if cm:
                    d = spec["extension"][ctx][url]
                    if cm.group(1):
                        d["min"] = int(cm.group(1))
                    if cm.group(2):
                        d["max"] = cm.group(2)
            elif slname in parent_ext and cm:
                ctx = full.rsplit(".", 1)[0]
                spec["extension"].setdefault(ctx, {})[parent_ext[slname]] = {"name": slname, "min": int(cm.group(1) or 0), "max": cm.group(2) or "*", "type": []}
            elif cm:
                warn(f"{name}: cardinality on unknown extension slice {slname}")
            continue
        if slice_at is not None:
            sl_path = f"{rtype}." + ".".join(_split_slice(s)[0] for s in segs[: slice_at + 1])
            slname = _split_slice(segs[slice_at])[1]
            rel = ".".join(_split_slice(s)[0] for s in segs[slice_at + 1:])
            sl = slices.setdefault(sl_path, {}).setdefault(slname, {"name": slname})
            if not rel:
                cm = re.match(r"^(\d*)\.\.(\d+|\*)?", text)
                if cm:
                    if cm.group(1):
                        sl["min"] = int(cm.group(1))
                    if cm.group(2):
                        sl["max"] = cm.group(2)
                    continue
                om = re.match(r"^obeys (.+)$", text)
                if om:
                    for key in om.group(1).split(" and "):
                        inv = dict(invariants[key.strip()])
                        inv["path"] = sl_path
                        spec["invariant"].append(inv)
                    continue
                warn(f"{name}: slice rule not understood: {path} {text}")
                continue
            relc = sl.setdefault("element", {}).setdefault(rel, {})
            cm = re.match(r"^(\d*)\.\.(\d+|\*)?", text)
            if cm:
                if cm.group(1) and int(cm.group(1)) > 0:
                    sl.setdefault("required", {})[rel] = int(cm.group(1))
                if cm.group(2) == "0":
                    relc["max"] = 0
                continue
            bm = re.match(r"^from (\S+)(\s+\((\w+)\))?", text)
            if bm:
                relc["binding"] = {"valueset": res.system(bm.group(1)), "strength": bm.group(3) or "required"}
                continue
            om = re.match(r"^only Reference\((.+)\)$", text)
            if om:
                relc["targets"] = [ref_type(x) for x in om.group(1).split(" or ")]
                continue
            am = re.match(r"^=\s*(.+?)(\s+\(exactly\))?$", text)
            if am:
                row = types.resolve(f"{sl_path}.{rel}")
                value = assign_value(am.group(1), row[1][3] if row else "string", res)
                if am.group(2):
                    relc["fixed"] = value
                else:
                    relc["pattern"] = value
                    # a pattern inside a slice is its discriminator
                    flat = value if not isinstance(value, dict) else {k: v for k, v in value.items() if k in ("system", "code")}
                    if isinstance(flat, dict):
                        for k, v in flat.items():
                            sl.setdefault("match", {})[f"{rel}.{k}"] = v
                    else:
                        sl.setdefault("match", {})[rel] = flat
                continue
            warn(f"{name}: slice element rule not understood: {path} {text}")
            continue
        # --- plain element rules
        cm = re.match(r"^(\d*)\.\.(\d+|\*)?(\s+\w+)*$", text)
        if cm:
            for real in _expand(full, types):
                e = elem(real)
                if cm.group(1):
                    e["min"] = int(cm.group(1))
                if cm.group(2):
                    e["max"] = cm.group(2)
            continue
        om = re.match(r"^only (.+)$", text)
        if om:
            t = om.group(1).strip()
            rm = re.match(r"^Reference\((.+)\)$", t)
            if rm:
                elem(full)["targets"] = [ref_type(x) for x in rm.group(1).split(" or ")]
            # Canonical(...) / primitive type restrictions are not checked
            continue
        bm = re.match(r"^from (\S+)(\s+\((\w+)\))?", text)
        if bm:
            elem(full)["binding"] = {"valueset": res.system(bm.group(1)), "strength": bm.group(3) or "required"}
            continue
        am = re.match(r"^=\s*(.+?)(\s+\(exactly\))?$", text)
        if am:
            row = types.resolve(full)
            if row is None:
                warn(f"{name}: cannot resolve {full}")
                continue
            value = assign_value(am.group(1), row[1][3], res)
            elem(full)["fixed" if am.group(2) else "pattern"] = value
            continue
        ob = re.match(r"^obeys (.+)$", text)
        if ob:
            for key in ob.group(1).split(" and "):
                inv = dict(invariants[key.strip()])
                inv["path"] = full
                spec["invariant"].append(inv)
            continue
        warn(f"{name}: rule not understood: {path} {text}")

    for path, named in slices.items():
        order = parent.get("slice_order", [])
        lst = sorted(named.values(), key=lambda s: order.index(s["name"]) if s["name"] in order else len(order))
        spec["slice"][path] = lst
    for key in ("element", "extension", "slice", "invariant"):
        if not spec[key]:
            del spec[key]
    # drop empty element entries
    if "element" in spec:
        spec["element"] = {k: v for k, v in spec["element"].items() if v}
    return spec


def _expand(path: str, types: Types) -> list[str]:
    if not path.endswith("[x]"):
        return [path]
    head, _, last = path.rpartition(".")
    t = head if "." not in head else types.resolve(head)[1][3]
    return [f"{head}.{row[0]}" for row in types.choice(t, last[:-3])]


def assign_value(text: str, tname: str, res: Resolver):
    text = text.strip()
    if text.startswith("$") and text in res.aliases:
        return res.aliases[text]
    if text.startswith('"'):
        return fsh_reader.parse_string(text)
    if text in ("true", "false"):
        return text == "true"
    if re.match(r"^-?\d+(\.\d+)?$", text):
        return float(text) if "." in text else int(text)
    c = res.code(text)
    if c is not None:
        if tname in ("code", "string", "uri") or tname.endswith("#code"):
            return c["code"]
        if tname == "Coding":
            return c
        if tname == "CodeableConcept":
            return {"coding": [c]}
        return c
    return text


class InstanceBuilder:
    """Evaluate FSH Instance assignment rules into FHIR JSON, using the R4 type tables."""

    def __init__(self, rtype, iname, types: Types, res: Resolver, inst_types, rulesets, extensions, profile_info, instance_of):
        self.rtype = rtype
        self.types = types
        self.res = res
        self.inst_types = inst_types
        self.rulesets = rulesets
        self.obj: dict = {"resourceType": rtype, "id": iname}
        self.soft: dict[str, int] = {}
        self.ext_by_slice = {}
        prof = profile_info.get(instance_of)
        for ext in extensions.values():
            self.ext_by_slice[ext["name"]] = ext["url"]
        self.ext_by_slice.update({"resource-origin": "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin",
                                  "endpoint": "http://koppeltaal.nl/fhir/StructureDefinition/KT2EndpointExtension",
                                  "publisherId": "http://koppeltaal.nl/fhir/StructureDefinition/KT2PublisherId",
                                  "instantiates": "http://vzvz.nl/fhir/StructureDefinition/instantiates"})
        self.profile = prof

    def build(self, rules) -> dict:
        for r in rules:
            if r.text.startswith("insert "):
                rs = self.rulesets.get(r.text.split()[1])
                for rr in rs.rules if rs else ():
                    p = f"{r.path}.{rr.path}" if r.path and rr.path else (r.path or rr.path)
                    self._rule(p, rr.text)
                continue
            self._rule(r.path, r.text)
        return self.obj

    def _rule(self, path: str, text: str) -> None:
        if not text and path:
            # a bare path (context for indented rules) still chooses its index: [+] advances
            self._assign(path.split("."), None)
            return
        if not text or not text.startswith("="):
            return
        value_text = text[1:].strip()
        if value_text.endswith("(exactly)"):
            value_text = value_text[: -len("(exactly)")].strip()
        if path == "id":
            self.obj["id"] = fsh_reader.parse_string(value_text)
            return
        self._assign(path.split("."), value_text)

    def _index(self, key: str, idx: str | None, length: int) -> int:
        if idx is None:
            return self.soft.get(key, 0)
        if idx == "+":
            n = self.soft.get(key, -1) + 1
        elif idx == "=":
            n = self.soft.get(key, 0)
        elif idx.isdigit():
            n = int(idx)
        else:
            raise KeyError(idx)
        self.soft[key] = n
        return n

    def _assign(self, segs: list[str], value_text: str) -> None:
        cur = self.obj
        tname = self.rtype
        key_path = ""
        i = 0
        while i < len(segs):
            seg = segs[i]
            name, idx = _split_slice(seg)
            last = i == len(segs) - 1
            row = self.types.element(tname, name)
            if row is None:
                warn(f"instance {self.obj['id']}: unknown element {name} in {tname}")
                return
            etype = row[3]
            is_list = row[2] != "1"
            key_path = f"{key_path}.{seg}"
            if name == "extension" and idx and not idx.isdigit() and idx not in "+=":
                url = self.ext_by_slice.get(idx)
                lst = cur.setdefault("extension", [])
                pos = next((k for k, x in enumerate(lst) if x.get("url") == url), None)
                if pos is None:
                    lst.append({"url": url})
                    pos = len(lst) - 1
                cur = lst[pos]
                tname = "Extension"
                i += 1
                continue
            slot_key = f"{id(cur)}.{name}"
            n = self._index(slot_key, idx, 0) if is_list else 0
            if last and value_text is None:
                if not self.types.is_primitive(etype):
                    if is_list:
                        lst = cur.setdefault(name, [])
                        while len(lst) <= n:
                            lst.append({})
                    else:
                        cur.setdefault(name, {})
                return
            if self.types.is_primitive(etype):
                if last:
                    value = self._value(value_text, etype)
                    if is_list:
                        lst = cur.setdefault(name, [])
                        while len(lst) <= n:
                            lst.append(None)
                        lst[n] = value
                    else:
                        cur[name] = value
                    return
                # a path below a primitive: its id/extension live in the _name sibling
                holder_key = f"_{name}"
                if is_list:
                    lst = cur.setdefault(holder_key, [])
                    while len(lst) <= n:
                        lst.append(None)
                    if lst[n] is None:
                        lst[n] = {}
                    cur = lst[n]
                else:
                    cur = cur.setdefault(holder_key, {})
                tname = "Element"
                self._element_type_hack()
                i += 1
                continue
            if last:
                value = self._value(value_text, etype)
                if is_list:
                    lst = cur.setdefault(name, [])
                    while len(lst) <= n:
                        lst.append({})
                    lst[n] = _merge(lst[n], value)
                else:
                    cur[name] = _merge(cur.get(name, {}), value)
                return
            if is_list:
                lst = cur.setdefault(name, [])
                while len(lst) <= n:
                    lst.append({})
                cur = lst[n]
            else:
                cur = cur.setdefault(name, {})
            tname = etype
            i += 1

    def _element_type_hack(self) -> None:
        if "Element" not in self.types.types:
            self.types.types["Element"] = {"kind": "complex", "elements": [["id", 0, "1", "string", None], ["extension", 0, "*", "Extension", None]]}

    def _value(self, text: str, tname: str):
        text = text.strip()
        if tname == "Resource" and text in getattr(self, "built", {}):
            return json.loads(json.dumps(self.built[text]))
        m = _REF_RE.match(text)
        if m:
            target = m.group("target").strip()
            if "/" not in target and target in self.inst_types:
                target = f"{self.inst_types[target]}/{target}"
            out = {"reference": target}
            if m.group("display"):
                out["display"] = m.group("display")
            return out
        cm = re.match(r"^Canonical\((.+)\)$", text)
        if cm:
            return self.res.names.get(cm.group(1), cm.group(1))
        q = _QTY_RE.match(text)
        if q and tname in ("Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"):
            v = q.group("value")
            out = {"value": float(v) if "." in v else int(v), "system": "http://unitsofmeasure.org", "code": q.group("code")}
            if q.group("unit"):
                out["unit"] = q.group("unit")
            return out
        return assign_value(text, tname, self.res)


def _merge(old, new):
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            if k == "coding" and "coding" in out:
                out["coding"] = [_merge(out["coding"][0], v[0])] + out["coding"][1:]
            else:
                out[k] = v
        return out
    return new


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

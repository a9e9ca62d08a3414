"""Convert the HL7 FHIR DSTU1 (0.0.82) XSD into profiles/kt1/base/dstu1-types.json.

Run once by a developer (the output is committed as data):

    python profiles/tools/dstu1_types_from_xsd.py ../shared/kt1-xsd/fhir-single.xsd

Why a converter rather than hand-typing: the base structure of ~50 DSTU1 resources
and data types (element names, cardinalities, types, choice groups, enumerated
codes) is mechanical; the schema is the authoritative source, so we read it once
and keep the result as plain JSON the validator loads quickly.  Only the
Koppeltaal-specific constraints are hand-authored (profiles/kt1/*.toml).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lxml import etree

XS = "{http://www.w3.org/2001/XMLSchema}"


def _max(value: str | None) -> str:
    if value is None:
        return "1"
    return "*" if value == "unbounded" else value


def _min(value: str | None) -> int:
    return 1 if value is None else int(value)


def convert(xsd_path: Path) -> dict:
    tree = etree.parse(str(xsd_path))
    root = tree.getroot()
    simple: dict[str, etree._Element] = {}
    complex_: dict[str, etree._Element] = {}
    for node in root:
        if node.tag == XS + "simpleType":
            simple[node.get("name")] = node
        elif node.tag == XS + "complexType":
            complex_[node.get("name")] = node

    codes: dict[str, list[str]] = {}
    for name, node in simple.items():
        if name.endswith("-list"):
            codes[name[: -len("-list")]] = [e.get("value") for e in node.iter(XS + "enumeration")]

    patterns: dict[str, str] = {}
    for name, node in simple.items():
        if name.endswith("-primitive"):
            pat = node.find(f".//{XS}pattern")
            if pat is not None:
                patterns[name[: -len("-primitive")]] = pat.get("value")

    types: dict[str, dict] = {}
    for name, node in complex_.items():
        content = node.find(f"{XS}complexContent/{XS}extension")
        if content is None:
            content = node.find(f"{XS}complexContent/{XS}restriction")  # Age, Duration, ... restrict Quantity
        if content is None:
            # Resource.Inline (a choice of resources) and the Element root
            continue
        base = content.get("base")
        value_attr = content.find(f"{XS}attribute[@name='value']")
        if base == "Element" and value_attr is not None and content.find(f"{XS}sequence") is None:
            vtype = value_attr.get("type")
            entry: dict = {"kind": "primitive"}
            if vtype.endswith("-list"):
                entry["base"] = "code"
                entry["codes"] = vtype[: -len("-list")]
            else:
                entry["base"] = vtype[: -len("-primitive")]
            types[name] = entry
            continue
        if base == "Resource":
            kind = "resource"
        elif base == "Quantity":
            kind = "complex"
        elif base in ("BackboneElement",):
            kind = "backbone"
        else:
            kind = "complex"
        elements: list[list] = []
        seq = content.find(f"{XS}sequence")
        if seq is not None:
            for child in seq:
                if child.tag == XS + "element":
                    ename = child.get("name") or child.get("ref", "").split(":")[-1]
                    etype = child.get("type") or ("xhtml" if child.get("ref") == "xhtml:div" else child.get("ref"))
                    elements.append([ename, _min(child.get("minOccurs")), _max(child.get("maxOccurs")), etype, None])
                elif child.tag == XS + "choice":
                    group_min = _min(child.get("minOccurs"))
                    group_max = _max(child.get("maxOccurs"))
                    options = [c for c in child if c.tag == XS + "element"]
                    group = _choice_group([c.get("name") for c in options])
                    for opt in options:
                        elements.append([opt.get("name"), group_min, group_max, opt.get("type"), group])
        entry = {"kind": kind, "elements": elements}
        attrs = [a.get("name") for a in content.findall(f"{XS}attribute")]
        if attrs:
            entry["attributes"] = attrs
        types[name] = entry
    # the narrative <div> is XHTML, carried as a string in JSON
    types["xhtml"] = {"kind": "primitive", "base": "xhtml"}
    return {
        "fhirVersion": "0.0.82",
        "source": "HL7 FHIR DSTU1 0.0.82 XSD (fhir-single.xsd as patched by koppeltaal-schema)",
        "patterns": patterns,
        "codes": codes,
        "types": dict(sorted(types.items())),
    }


def _choice_group(names: list[str]) -> str:
    """Common lower-case prefix of the alternatives, e.g. valueString/valueCoding -> value."""
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    while prefix and prefix[-1].isupper():
        prefix = prefix[:-1]
    return prefix


def main(argv: list[str]) -> int:
    xsd = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / ".." / "shared" / "kt1-xsd" / "fhir-single.xsd"
    out = Path(__file__).resolve().parents[1] / "kt1" / "base" / "dstu1-types.json"
    data = convert(xsd)
    out.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(data['types'])} types, {len(data['codes'])} code lists)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

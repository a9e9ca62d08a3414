"""Derive the FHIR R4 base structure KT2 needs from the `fhir.resources.R4B` models.

Used by build_kt2.py (run once by a developer; the output is committed).  The
R4B models are R4 plus a handful of additions; `R4B_ONLY` removes those that
touch the KT2 resources, and `REQUIRED_CODES` completes the required code
bindings the models list only partly (their `enum_values` end in "+").
"""

from __future__ import annotations

import re
import typing

from fhir.resources import R4B

ROOTS = [
    "Task", "Patient", "Practitioner", "RelatedPerson", "Organization", "CareTeam", "ActivityDefinition",
    "AuditEvent", "Device", "Endpoint", "Subscription", "Bundle", "OperationOutcome", "Parameters",
    # not profiled by KT2, but on the wire of a KT2 server (metadata, search parameters, documents)
    "CapabilityStatement", "SearchParameter", "NamingSystem", "Binary", "DocumentReference",
]

# elements added in R4B (4.3) that R4 (4.0.1) does not have
R4B_ONLY = {
    "ActivityDefinition": {"subjectCanonical"},
    "Extension": {"valueCodeableReference", "valueRatioRange"},
    "ElementDefinition": set(),
}

# required bindings on `code` elements: complete code lists (R4 4.0.1)
REQUIRED_CODES = {
    "Task.status": ["draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress",
                    "on-hold", "failed", "completed", "entered-in-error"],
    "Device.udiCarrier.entryType": ["barcode", "rfid", "manual", "card", "self-reported", "unknown"],
    "AuditEvent.action": ["C", "R", "U", "D", "E"],
    "AuditEvent.outcome": ["0", "4", "8", "12"],
    "AuditEvent.agent.network.type": ["1", "2", "3", "4", "5"],
    "OperationOutcome.issue.code": [
        "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown", "expired",
        "forbidden", "suppressed", "processing", "not-supported", "duplicate", "multiple-matches", "not-found",
        "deleted", "too-long", "code-invalid", "extension", "too-costly", "business-rule", "conflict", "transient",
        "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
    ],
    "Bundle.link.relation": None,  # string, not bound
}
# enum lists in the models that are not required bindings (or not complete)
# bindings to value sets too large to list (CapabilityStatement formats: any BCP-13 mime type)
NOT_REQUIRED = {"Expression.language", "Bundle.link.relation", "CapabilityStatement.format",
                "CapabilityStatement.patchFormat"}

_PRIM = {
    "Id": "id", "Uri": "uri", "Url": "url", "Canonical": "canonical", "Code": "code", "String": "string",
    "Markdown": "markdown", "Integer": "integer", "Decimal": "decimal", "PositiveInt": "positiveInt",
    "UnsignedInt": "unsignedInt", "Date": "date", "DateTime": "dateTime", "Instant": "instant", "Time": "time",
    "Base64Binary": "base64Binary", "Oid": "oid", "Uuid": "uuid", "Xhtml": "xhtml", "Boolean": "boolean",
    "Integer64": "integer64",
}


def _type_of(annotation) -> tuple[str, bool]:
    """(FHIR type name or model class name, is_list)."""
    text = str(annotation)
    is_list = "List[" in text
    m = re.search(r"abc\.(\w+)Type", text)
    if m:
        return m.group(1), is_list
    for arg in _flatten(annotation):
        meta = getattr(arg, "__metadata__", None)
        if meta:
            for md in meta:
                name = type(md).__name__
                if name in _PRIM:
                    return _PRIM[name], is_list
    if "bool" in text:
        return "boolean", is_list
    if "uuid.UUID" in text:
        return "uuid", is_list
    raise ValueError(f"cannot map annotation {text}")


def _flatten(annotation):
    stack = [annotation]
    while stack:
        a = stack.pop()
        yield a
        stack.extend(typing.get_args(a) or ())


# R4 minimum cardinalities of complex elements the models do not flag (they mark primitives only),
# for types without a package-0.8 snapshot; the snapshot `base` cardinalities cover the KT2 resources.
REQUIRED_COMPLEX = {
    "RelatedPerson.patient": 1,
    "RelatedPerson.communication.language": 1,
    "Patient.communication.language": 1,
    "Patient.link.other": 1,
    "Practitioner.qualification.code": 1,
    "OperationOutcome.issue": 1,
    "UsageContext.code": 1,
    "Signature.type": 1,
    "Signature.who": 1,
    "Parameters.parameter.name": 1,
    "Bundle.entry.request.method": 1,
    "Bundle.entry.request.url": 1,
    "Bundle.entry.response.status": 1,
    "Bundle.link.relation": 1,
    "Bundle.link.url": 1,
}


def apply_snapshot_cardinality(types: dict, snapshot: dict) -> list[str]:
    """Copy R4 base cardinalities (`element.base`) from a StructureDefinition snapshot into `types`."""
    changed = []
    rt = snapshot["type"]
    for e in snapshot["snapshot"]["element"]:
        if ":" in e["id"] or "." not in e["path"]:
            continue
        base = e.get("base") or {}
        if "min" not in base:
            continue
        parts = e["path"].split(".")
        cur = rt
        row = None
        for part in parts[1:]:
            spec = types.get(cur)
            if not spec or "elements" not in spec:
                row = None
                break
            if part.endswith("[x]"):
                rows = [r for r in spec["elements"] if r[4] == part[:-3]]
            else:
                rows = [r for r in spec["elements"] if r[0] == part and not r[4]]
            if not rows:
                row = None
                break
            row = rows
            cur = rows[0][3]
        if not row:
            continue
        for r in row:
            if r[1] != base["min"] or r[2] != base["max"]:
                changed.append(f"{e['path']} {r[1]}..{r[2]} -> {base['min']}..{base['max']}")
                r[1] = base["min"]
                r[2] = base["max"]
    return changed


def build() -> dict:
    types: dict[str, dict] = {}
    names: dict[str, str] = {}  # model class name -> our type name

    def visit(cls_name: str, our_name: str) -> None:
        if cls_name in names:
            if our_name != names[cls_name]:
                aliases[our_name] = names[cls_name]  # the same backbone reached by another path
            return
        cls = R4B.get_fhir_model_class(cls_name)
        names[cls_name] = our_name
        mro = [c.__name__ for c in cls.__mro__]
        if getattr(cls, "__resource_type__", None) == cls_name and ("DomainResource" in mro or "Resource" in mro) and cls_name not in ("Resource", "DomainResource"):
            kind = "resource"
        elif cls.__module__.rsplit(".", 1)[-1] != cls.__name__.lower():
            kind = "backbone"
        else:
            kind = "complex"
        elements = []
        pending = []
        drop = R4B_ONLY.get(our_name, set())
        for fname, f in cls.model_fields.items():
            ex = f.json_schema_extra or {}
            if not isinstance(ex, dict) or not ex.get("element_property"):
                continue
            alias = f.alias or fname
            if alias in drop:
                continue
            tname, is_list = _type_of(f.annotation)
            group = ex.get("one_of_many")
            mn = 1 if ex.get("element_required") else 0
            if group and ex.get("one_of_many_required"):
                mn = 1
            if tname in ("Resource",):
                etype = "Resource"
            elif tname[:1].isupper() and tname not in _PRIM.values():
                sub = R4B.get_fhir_model_class(tname)
                # a backbone class lives in its owner's module (task.TaskInput); a data type has its own
                if sub.__module__.rsplit(".", 1)[-1] != sub.__name__.lower():
                    etype = names.get(tname) or f"{our_name}.{alias}"
                    pending.append((tname, etype))
                else:
                    etype = tname
                    pending.append((tname, tname))
            else:
                etype = tname
            path = f"{our_name}.{alias}"
            codes = None
            enum = ex.get("enum_values")
            if path in REQUIRED_CODES:
                codes = REQUIRED_CODES[path]
            elif enum and "+" not in enum and path not in NOT_REQUIRED and etype == "code":
                codes = list(enum)
            row = [alias, mn, "*" if is_list else "1", etype, group]
            if codes:
                row.append(codes)
            elements.append(row)
        if our_name == "Extension" or kind == "resource":
            pass
        for row in elements:
            need = REQUIRED_COMPLEX.get(f"{our_name}.{row[0]}")
            if need:
                row[1] = need
        types[our_name] = {"kind": kind, "elements": elements}
        for tname, etype in pending:
            visit(tname, etype)

    aliases: dict[str, str] = {}
    for root in ROOTS:
        visit(root, root)
    for alias, target in aliases.items():
        types.setdefault(alias, types[target])
    for prim in sorted(set(_PRIM.values()) - {"integer64"}):
        types[prim] = {"kind": "primitive", "base": prim}
    return {"fhirVersion": "4.0.1", "source": "fhir.resources.R4B models minus R4B-only elements", "types": dict(sorted(types.items()))}

"""Tell KT1 (FHIR DSTU1 messaging) from KT2 (FHIR R4 REST) by looking at a parsed document.

The two generations share resource names (Patient, Bundle, MessageHeader...), so
detection weighs markers: DSTU1 Atom bundles (`entry[].content`, `category`,
`totalResults`), `Other` resources and the ggz.koppeltaal.nl namespace point to
KT1; `meta`/`meta.profile` with a KT2 canonical, R4 bundles (`entry[].resource`,
`type`) and R4-only resource types point to KT2.
"""

from __future__ import annotations

KT1_NS = "ggz.koppeltaal.nl"
KT2_MARKERS = ("koppeltaal.nl/fhir/StructureDefinition", "vzvz.nl/fhir/")
R4_ONLY = frozenset(
    {
        "Task", "Endpoint", "Subscription", "AuditEvent", "ActivityDefinition", "CareTeam", "CapabilityStatement",
        "Parameters", "PractitionerRole", "Basic", "Communication", "ServiceRequest", "QuestionnaireResponse",
    }
)
DSTU1_ONLY = frozenset({"Other", "Conformance", "SecurityEvent", "Query", "Profile", "AdverseReaction", "Alert"})


def _scan(obj, budget: list[int]) -> tuple[int, int]:
    """Count KT1 / KT2 namespace markers in string values (bounded walk)."""
    k1 = k2 = 0
    stack = [obj]
    while stack and budget[0] > 0:
        cur = stack.pop()
        budget[0] -= 1
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
        elif isinstance(cur, str) and "koppeltaal" in cur or isinstance(cur, str) and "vzvz.nl" in cur:
            if KT1_NS in cur:
                k1 += 1
            elif any(m in cur for m in KT2_MARKERS):
                k2 += 1
    return k1, k2


def detect_kt(obj: dict) -> tuple[int, str]:
    """(1|2, reason)."""
    rt = obj.get("resourceType")
    meta = obj.get("meta")
    if isinstance(meta, dict):
        profiles = meta.get("profile")
        if isinstance(profiles, list) and any(isinstance(p, str) and "koppeltaal.nl/fhir" in p for p in profiles):
            return 2, "meta.profile names a KT2 profile"
    if rt == "Bundle":
        entries = obj.get("entry")
        if isinstance(entries, list):
            for e in entries[:5]:
                if isinstance(e, dict):
                    if "content" in e:
                        return 1, "DSTU1 Atom bundle (entry[].content)"
                    if "resource" in e or "fullUrl" in e or "request" in e or "search" in e:
                        return 2, "R4 Bundle (entry[].resource)"
        if "type" in obj:
            return 2, "R4 Bundle (Bundle.type)"
        if any(k in obj for k in ("category", "totalResults", "updated", "author", "title")):
            return 1, "DSTU1 Atom bundle"
    if rt in DSTU1_ONLY:
        return 1, f"{rt} exists only in DSTU1"
    if rt in R4_ONLY:
        return 2, f"{rt} exists only in R4"
    if isinstance(meta, dict):
        return 2, "meta is an R4 element"
    if rt == "MessageHeader":
        if "eventCoding" in obj or "eventUri" in obj:
            return 2, "R4 MessageHeader (eventCoding)"
        return 1, "MessageHeader (KT1 messaging)"
    k1, k2 = _scan(obj, [5000])
    if k1 > k2:
        return 1, "uses the ggz.koppeltaal.nl namespace"
    if k2 > k1:
        return 2, "uses KT2 (koppeltaal.nl/fhir, vzvz.nl) URLs"
    gender = obj.get("gender")
    if isinstance(gender, dict):
        return 1, "gender is a CodeableConcept (DSTU1)"
    return 2, "no KT1 markers found; assumed KT2"

"""KT1.3 (FHIR DSTU1 0.0.82 messaging): profiles, the Atom feed and message rules.

Resources are checked by the generic walker against the DSTU1 base types and the
Koppeltaal profiles in profiles/kt1/; this module adds what only makes sense
for a whole feed: categories, entry ids and self links, the MessageHeader
first, the focal resource per event and the Patient the message belongs to.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import urlsplit

from ktbench.fhir.dstu1.constants import EXT_PATIENT, EXT_PROCESSING_STATUS, NAMESPACE, OTHER_USAGE_SYSTEM
from ktbench.fhir.dstu1.links import entry_self_link
from ktbench.validation import primitives
from ktbench.validation.findings import ERROR, INFORMATION, WARNING, Finding
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

# extension URLs under these prefixes must be known: an unknown one is most likely a typo.  The vzvz.nl
# form appears in the KT1.3 documentation's own (abbreviated) examples and is no valid Koppeltaal URL.
KT1_NAMESPACES = (NAMESPACE, "http://vzvz.nl/fhir/Koppeltaal/")
PREFIX = "kt1"


@dataclass
class EventRule:
    focal: tuple[str, ...]
    patient: str = "optional"
    patient_entry: bool = False
    patient_types: tuple[str, ...] = ("Patient",)


@dataclass
class KT1Standard:
    ts: TypeSystem
    profiles: dict[str, Profile]
    by_type: dict[str, Profile]
    by_other_code: dict[str, Profile]
    walker: Walker
    events: dict[str, EventRule]
    supported: frozenset[str]
    tolerated: frozenset[str]
    feed: dict


def other_code(resource: dict) -> str | None:
    code = resource.get("code")
    if isinstance(code, dict):
        for coding in code.get("coding") or ():
            if isinstance(coding, dict) and coding.get("system") == OTHER_USAGE_SYSTEM and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def kind_of(resource: dict) -> str:
    """`Patient`, or `Other:CareTeam` for Other resources."""
    rt = resource.get("resourceType")
    if rt == "Other":
        code = other_code(resource)
        return f"Other:{code}" if code else "Other"
    return rt if isinstance(rt, str) else "?"


@functools.lru_cache(maxsize=1)
def standard() -> KT1Standard:
    base_dir = PROFILES_DIR / "kt1"
    base = read_data(base_dir / "base" / "dstu1-types.json")
    feed = read_data(base_dir / "feed.toml")
    tolerances = read_data(base_dir / "tolerances.toml")
    ts = build_typesystem(
        base,
        "DSTU1",
        primitives.DSTU1,
        extra_types=feed.get("types"),
        inherit="dstu1",
        tolerated_elements=tolerances.get("element"),
    )
    valuesets = build_valuesets(read_data(base_dir / "valuesets.toml"))
    profiles: dict[str, Profile] = {}
    for path in sorted((base_dir / "resources").glob("*.toml")):
        p = compile_profile(read_data(path), ts, valuesets, PREFIX, KT1_NAMESPACES)
        profiles[p.id] = p
    by_type: dict[str, Profile] = {}
    by_code: dict[str, Profile] = {}
    for p in profiles.values():
        if p.other_code:
            by_code[p.other_code] = p
        elif p.type != "Other":
            by_type[p.type] = p
    by_type["Other"] = profiles["kt1-Other"]
    msgs = read_data(base_dir / "messages.toml")
    events = {
        name: EventRule(
            focal=tuple(spec.get("focal", ())),
            patient=spec.get("patient", "optional"),
            patient_entry=bool(spec.get("patient_entry", False)),
            patient_types=tuple(spec.get("patient_types", ("Patient",))),
        )
        for name, spec in msgs.get("event", {}).items()
    }
    index = extension_index(list(profiles.values()))

    def resolver(obj: dict, loc: str, out: list) -> Profile | None:
        rt = obj.get("resourceType")
        if rt == "Other":
            code = other_code(obj)
            if code is not None and code in by_code:
                return by_code[code]
            return by_type["Other"]
        return by_type.get(rt)

    walker = Walker(
        ts,
        PREFIX,
        resolver,
        empty_string_severity=ERROR,
        extension_index=index,
        check_reference_targets=False,
        foreign_extension_severity=INFORMATION,
    )
    return KT1Standard(
        ts=ts,
        profiles=profiles,
        by_type=by_type,
        by_other_code=by_code,
        walker=walker,
        events=events,
        supported=frozenset(msgs.get("resources", {}).get("supported", ())),
        tolerated=frozenset(msgs.get("resources", {}).get("tolerated", ())),
        feed=feed.get("message", {}),
    )


# ---------------------------------------------------------------------------------------------
def validate(obj: dict, out: list[Finding], xml: bool = False) -> list[str]:
    """Validate one KT1 document (feed or single resource); returns the profile ids applied.

    `xml=True` when the JSON model came from the XML codec: list-vs-single is then
    the codec's guess and only the number of occurrences is checked.
    """
    std = standard()
    w = std.walker.clone()  # per-call state (refs, lenient_lists): safe under threads
    w.refs = []
    w.lenient_lists = xml
    used: list[str] = []
    if obj.get("resourceType") == "Bundle":
        _bundle(std, w, obj, out, used)
    else:
        p = w.resource(obj, obj.get("resourceType") if isinstance(obj.get("resourceType"), str) else "Resource", out)
        if p is not None:
            used.append(p.id)
    return used


def _f(out: list, sev: str, rule: str, loc: str, msg: str) -> None:
    out.append(Finding(sev, f"{PREFIX}.{rule}", loc, msg))


def _strip(url: str, marker: str = "/_history/") -> str:
    return url.split(marker, 1)[0]


def _version(url: str) -> str | None:
    head, sep, tail = url.partition("/_history/")
    return tail or None if sep else None


def _path_key(url: str) -> str:
    try:
        return urlsplit(url).path if "://" in url else url
    except ValueError:
        return url


@dataclass
class _Entry:
    index: int
    loc: str
    ident: str | None
    self_link: str | None
    resource: dict | None
    kind: str


def _bundle(std: KT1Standard, w: Walker, bundle: dict, out: list, used: list) -> None:
    entries_raw = bundle.get("entry")
    entries_raw = entries_raw if isinstance(entries_raw, list) else []
    # the Kick-ASS game sends entry.link as an object: warn, then let the walker see the array form
    quirky = [i for i, e in enumerate(entries_raw) if isinstance(e, dict) and isinstance(e.get("link"), dict)]
    doc = bundle
    if quirky:
        fixed = list(entries_raw)
        for i in quirky:
            _f(out, WARNING, "feed.link", f"Bundle.entry[{i}].link", "entry.link must be an array; a single object is tolerated (Kick-ASS game quirk) but the Python connector iterates it")
            fixed[i] = {**fixed[i], "link": [fixed[i]["link"]]}
        doc = {**bundle, "entry": fixed}
    # one structural pass over feed, entries and (via the resolver) every resource with its profile
    original = w.resolver

    def tracking(obj: dict, loc: str, o_out: list):
        p = original(obj, loc, o_out)
        if p is not None and p.id not in used:
            used.append(p.id)
        return p

    w.resolver = tracking
    w.node(doc, std.ts.types["Bundle"], "Bundle", "Bundle", None, out)
    w.resolver = original

    entries: list[_Entry] = []
    for i, entry in enumerate(entries_raw):
        if not isinstance(entry, dict):
            continue
        loc = f"Bundle.entry[{i}]"
        content = entry.get("content")
        resource = content if isinstance(content, dict) else None
        if content is None and "deleted" not in entry:
            _f(out, ERROR, "cardinality", f"{loc}.content", "entry has no content (and is not a deleted entry)")
        ident = entry.get("id") if isinstance(entry.get("id"), str) else None
        entries.append(_Entry(i, loc, ident, entry_self_link(entry), resource, kind_of(resource) if resource else "?"))

    header = entries[0].resource if entries and entries[0].resource and entries[0].resource.get("resourceType") == "MessageHeader" else None
    # an empty feed (e.g. GetNextNewAndClaim with nothing to claim) is a search result, whatever its tags say
    is_message = bool(entries) and (_has_message_tag(bundle, std.feed) or (header is not None and "totalResults" not in bundle))
    _entry_links(entries, out, is_message, header)
    if is_message:
        _message(std, w, bundle, entries, header, out)


def _has_message_tag(bundle: dict, rules: dict) -> bool:
    cats = bundle.get("category")
    if not isinstance(cats, list):
        return False
    return any(isinstance(c, dict) and c.get("term") == rules.get("message_term") for c in cats)


def _entry_links(entries: list[_Entry], out: list, is_message: bool, header: dict | None) -> None:
    delivered = header is not None and _has_ext(header, EXT_PROCESSING_STATUS)
    for e in entries:
        is_header = e.resource is not None and e.resource.get("resourceType") == "MessageHeader"
        if e.ident is None:
            if e.self_link is not None:
                _f(out, WARNING, "feed.entry-id", f"{e.loc}.id", "entry has no id (1..1 in KT1.3); its identity is taken from the self link")
            elif is_header:
                _f(out, WARNING, "feed.entry-id", f"{e.loc}.id", "MessageHeader entry has no id (1..1 in KT1.3)")
            else:
                _f(out, ERROR, "feed.entry-id", f"{e.loc}.id", "entry has neither an id nor a self link: the resource cannot be identified")
        elif "/_history/" in e.ident:
            _f(out, ERROR, "feed.entry-id", f"{e.loc}.id", f"entry.id must be the resource URL without /_history/ (got {e.ident!r})")
        if e.self_link is None:
            if is_header:
                if delivered:
                    _f(out, ERROR, "feed.self-link", f"{e.loc}.link", "a delivered MessageHeader entry needs a self link: it is the URL the receiver acknowledges (PUT)")
            elif is_message or e.resource is not None:
                _f(out, ERROR, "feed.self-link", f"{e.loc}.link", "entry has no self link (rel=\"self\") with the resource's (versioned) URL")
        elif e.ident is not None and _strip(e.self_link) != e.ident and _path_key(_strip(e.self_link)) != _path_key(e.ident):
            _f(out, ERROR, "feed.self-link", f"{e.loc}.link", f"self link {e.self_link!r} does not name this entry (id {e.ident!r})")


def _has_ext(resource: dict, url: str) -> bool:
    exts = resource.get("extension")
    return isinstance(exts, list) and any(isinstance(x, dict) and x.get("url") == url for x in exts)


def _ext_value(resource: dict, url: str):
    exts = resource.get("extension")
    if not isinstance(exts, list):
        return None, None
    for i, x in enumerate(exts):
        if isinstance(x, dict) and x.get("url") == url:
            return i, x
    return None, None


def _message(std: KT1Standard, w: Walker, bundle: dict, entries: list[_Entry], header: dict | None, out: list) -> None:
    rules = std.feed
    _categories(bundle, rules, out)
    if not entries:
        _f(out, ERROR, "message.header", "Bundle.entry", "a message needs at least the MessageHeader entry")
        return
    if header is None:
        _f(out, ERROR, "message.header", "Bundle.entry[0].content", "the first entry of a message must be the MessageHeader")
    for e in entries[1:]:
        if e.resource is not None and e.resource.get("resourceType") == "MessageHeader":
            _f(out, ERROR, "message.header", f"{e.loc}.content", "a message carries exactly one MessageHeader (the first entry)")
    for e in entries:
        rt = e.resource.get("resourceType") if e.resource else None
        if rt and rt in std.tolerated:
            _f(out, WARNING, "resource-type", f"{e.loc}.content.resourceType", f"the resource type {rt!r} appears in the KT1.3 documentation but real servers do not accept it in a Mailbox message")
        elif rt and rt != "Bundle" and rt not in std.supported:
            _f(out, ERROR, "resource-type", f"{e.loc}.content.resourceType", f"the resource type {rt!r} is not supported by Koppeltaal 1.3 (supported: {', '.join(sorted(std.supported))})")
    if header is None:
        return
    hloc = "Bundle.entry[0].content"
    by_id: dict[str, _Entry] = {}
    for e in entries:
        for key in (e.ident, _strip(e.self_link) if e.self_link else None):
            if key:
                by_id.setdefault(key, e)
    by_path: dict[str, _Entry] = {}  # clients ignore the host of links: fall back to the path (built on demand)

    def lookup(ref: str) -> _Entry | None:
        key = _strip(ref)
        hit = by_id.get(key)
        if hit is not None:
            return hit
        if not by_path:
            for k, e in by_id.items():
                by_path.setdefault(_path_key(k), e)
        return by_path.get(_path_key(key))

    is_reply = isinstance(header.get("response"), dict)
    delivered = _has_ext(header, EXT_PROCESSING_STATUS)
    event = header.get("event")
    code = event.get("code") if isinstance(event, dict) else None
    rule = std.events.get(code) if isinstance(code, str) else None
    data = header.get("data")
    data = data if isinstance(data, list) else []
    if is_reply:
        return  # Mailbox replies name the sender's resources; they do not travel in the reply
    if not data:
        _f(out, ERROR, "message.focal", f"{hloc}.data", "MessageHeader.data must reference the focal resource of the message")
    else:
        if delivered and len(data) != 1:
            _f(out, ERROR, "message.focal", f"{hloc}.data", f"a delivered message carries exactly one data reference (found {len(data)}); the Python connector asserts it")
        focal_ref = data[0].get("reference") if isinstance(data[0], dict) else None
        if not isinstance(focal_ref, str):
            _f(out, ERROR, "message.focal", f"{hloc}.data[0]", "MessageHeader.data[0] has no reference")
        else:
            focal = lookup(focal_ref)
            if focal is None:
                _f(out, ERROR, "message.focal", f"{hloc}.data[0].reference", f"focal reference {focal_ref!r} does not resolve to an entry of this message (compare entry.id / self links)")
            else:
                if rule is not None and rule.focal and focal.kind not in rule.focal:
                    _f(out, ERROR, "message.focal", f"{hloc}.data[0].reference", f"event {code} needs a focal {' or '.join(rule.focal)}, but data[0] points to a {focal.kind}")
                v_ref = _version(focal_ref)
                v_self = _version(focal.self_link) if focal.self_link else None
                if v_ref and v_self and v_ref != v_self:
                    _f(out, ERROR, "message.focal", f"{hloc}.data[0].reference", f"data[0] names version {v_ref!r} but the focal entry's self link has version {v_self!r}")
    if rule is not None:
        idx, ext = _ext_value(header, EXT_PATIENT)
        if ext is None:
            if rule.patient == "required":
                _f(out, ERROR, "message.patient", f"{hloc}.extension('{EXT_PATIENT}')", f"event {code} requires the MessageHeader#Patient extension (the dossier the message belongs to)")
            elif rule.patient == "recommended":
                _f(out, WARNING, "message.patient", f"{hloc}.extension('{EXT_PATIENT}')", f"KT1.3 requires MessageHeader#Patient for {code}; the Python connector omits it when it has no patient")
        else:
            vr = ext.get("valueResource")
            ref = vr.get("reference") if isinstance(vr, dict) else None
            ploc = f"{hloc}.extension[{idx}].valueResource.reference"
            if isinstance(ref, str):
                if "/_history/" in ref:
                    _f(out, WARNING, "reference", ploc, "MessageHeader#Patient should be history-less (KT1.3.5 versioning rule)")
                target = lookup(ref)
                if target is None:
                    if rule.patient_entry:
                        _f(out, ERROR, "message.patient", ploc, f"event {code} must carry the Patient's resource in the message; {ref!r} is not an entry")
                elif target.kind not in rule.patient_types:
                    _f(out, ERROR, "message.patient", ploc, f"MessageHeader#Patient must point to a {' or '.join(rule.patient_types)}, not a {target.kind}")
    # reference targets collected by the walker (profile `targets`) resolved inside the bundle
    for loc, ref, targets in w.refs:
        if "/_history/" in ref:
            _f(out, WARNING, "reference", loc, "references other than MessageHeader.data are history-less in KT1.3.5 (resource versioning)")
        target = lookup(ref)
        if target is None:
            continue
        kinds = {target.kind, target.kind.split(":", 1)[-1]}
        if target.kind.startswith("Other:"):
            kinds.add("Other")
        if not kinds & targets:
            _f(out, ERROR, "reference", loc, f"reference resolves to a {target.kind}; expected {' | '.join(sorted(targets))}")


def _categories(bundle: dict, rules: dict, out: list) -> None:
    cats = bundle.get("category")
    cats = cats if isinstance(cats, list) else []
    want = int(rules.get("categories", 2))
    if len(cats) != want:
        _f(out, ERROR, "feed.category", "Bundle.category", f"a message feed carries exactly {want} categories (domain security tag and message tag), found {len(cats)}")
    domain = [i for i, c in enumerate(cats) if isinstance(c, dict) and isinstance(c.get("term"), str) and c["term"].startswith(rules["domain_term_prefix"])]
    message = [i for i, c in enumerate(cats) if isinstance(c, dict) and c.get("term") == rules["message_term"]]
    if not domain:
        _f(out, ERROR, "feed.category", "Bundle.category", f"missing the domain category (term {rules['domain_term_prefix']}<domain>, scheme {rules['domain_scheme']})")
    for i in domain:
        c = cats[i]
        if c.get("scheme") != rules["domain_scheme"]:
            _f(out, ERROR, "feed.category", f"Bundle.category[{i}].scheme", f"domain category scheme must be {rules['domain_scheme']!r}, got {c.get('scheme')!r}")
        if c["term"] == rules["domain_term_prefix"]:
            _f(out, ERROR, "feed.category", f"Bundle.category[{i}].term", "domain category names no domain")
    if not message:
        _f(out, ERROR, "feed.category", "Bundle.category", f"missing the message category (term {rules['message_term']}, scheme {rules['message_scheme']})")
    for i in message:
        if cats[i].get("scheme") != rules["message_scheme"]:
            _f(out, ERROR, "feed.category", f"Bundle.category[{i}].scheme", f"message category scheme must be {rules['message_scheme']!r}, got {cats[i].get('scheme')!r}")

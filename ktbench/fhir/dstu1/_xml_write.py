"""JSON -> XML half of the DSTU1 codec (see :mod:`ktbench.fhir.dstu1.xmlcodec` for the mapping rules).

Elements are written in XSD order for the types in the DSTU1 table (so output validates against
``fhir-atom-single.xsd`` whenever the content does), in JSON order otherwise.

Why two sinks: building an lxml tree costs about two microseconds per element (every ``SubElement``
resolves its namespace and validates its name), several times the cost of the conversion itself, and the
KT1 server writes XML for every reply. So one traversal (:class:`_Writer`) drives a *sink*:

* :class:`_TextSink` writes the XML text directly. It reproduces lxml's serialisation byte for byte
  (same escaping, same namespace declarations, ``<x/>`` for empty elements) but only for what it can
  prove identical: safe ASCII names, the namespace situations this writer creates, and text without
  characters XML cannot carry. Anything else raises :class:`_NeedsTree`.
* :class:`_TreeSink` builds the lxml tree and serialises it, as this module always did. It is used when
  the text sink gives up, so unusual input (odd JSON keys, control characters...) gets exactly lxml's
  output or lxml's error message, raised at the same point of the traversal.

Every check and sink operation happens in the same order as with the tree alone, so the first error a
document triggers -- and therefore the message -- does not depend on the sink.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from itertools import zip_longest
from typing import Any, Union

from lxml import etree

from ktbench.fhir.dstu1._xml_common import (
    ATOM,
    DELETED_ENTRY_TAG,
    FEED_TAG,
    FHIR,
    MAX_DEPTH,
    OPENSEARCH_NS,
    TOMBSTONE_NS,
    TOTAL_RESULTS_TAG,
    XmlCodecError,
    check_depth,
    checked_xhtml,
)
from ktbench.fhir.dstu1._xml_schema import RESOURCE_KIND, RESOURCE_NAMES, TYPES, XHTML_KIND, Field, guess_field
from ktbench.fhir.dstu1.constants import ATOM_NS, FHIR_NS

_MISSING: Any = object()
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_FHIR_NSMAP = {None: FHIR_NS}


def write_document(obj: Mapping[str, Any]) -> bytes:
    """Bundle dict -> Atom feed bytes; resource dict -> resource bytes (UTF-8, XML declaration)."""
    if _TEXT_SINK_AGREES:
        try:
            return _Writer(_TextSink()).document(obj)
        except _NeedsTree:
            pass
    return _Writer(_TreeSink()).document(obj)


# --------------------------------------------------------------------------------------------------
# Paths in error messages ("Patient.name[0].given"), built only when an error is raised

Where = Union[str, tuple]
"""``"Patient"``, or ``(parent path, element name)`` for ``.name``, or ``(parent path, index)`` for ``[i]``."""


def _path(where: Where) -> str:
    parts: list[str] = []
    while not isinstance(where, str):
        where, part = where
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    parts.append(where)
    return "".join(reversed(parts))


# --------------------------------------------------------------------------------------------------
# The traversal


class _Writer:
    """One JSON -> XML conversion, emitted through ``sink``.

    Sink protocol: ``open(tag, nsmap=None, attrs=None)`` starts a child of the open element (or the
    root), ``set(name, value)`` adds an attribute, ``text(value)`` sets its text, ``xhtml(checked)``
    splices a validated XHTML string as its content, ``close()`` ends it, ``leaf(tag, name, value)`` is
    open + set + close, ``finish()`` returns the bytes.
    """

    __slots__ = ("sink",)

    def __init__(self, sink: _TextSink | _TreeSink) -> None:
        self.sink = sink

    def document(self, obj: Mapping[str, Any]) -> bytes:
        if obj.get("resourceType") == "Bundle":
            self.feed(obj, 0)
        else:
            self.resource(obj, 0, str(obj.get("resourceType", "resource")), _FHIR_NSMAP)
        return self.sink.finish()

    # -- Atom --------------------------------------------------------------------------------------

    def feed(self, bundle: Mapping[str, Any], depth: int) -> None:
        check_depth(depth)
        sink = self.sink
        nsmap = {None: ATOM_NS}
        if "totalResults" in bundle:
            nsmap["os"] = OPENSEARCH_NS
        sink.open(FEED_TAG, nsmap)
        unknown = set(bundle) - _BUNDLE_KEYS
        if unknown:
            raise XmlCodecError(f"Bundle key(s) {sorted(unknown)} have no Atom representation")
        if "title" in bundle:
            self.text_construct("title", bundle["title"], "Bundle.title")
        for key in ("id", "updated"):
            if key in bundle:
                self.atom_text(key, bundle[key], f"Bundle.{key}")
        for author in _as_list(bundle.get("author"), "Bundle.author"):
            self.atom_person(author, "Bundle.author")
        if "totalResults" in bundle:
            total = bundle["totalResults"]
            if isinstance(total, bool) or not isinstance(total, (str, int)):
                raise XmlCodecError("Bundle.totalResults must be a string (or an integer)")
            text = str(total)
            sink.open(TOTAL_RESULTS_TAG)
            sink.text(text)
            sink.close()
        for link in _as_list(bundle.get("link"), "Bundle.link"):
            self.atom_attrs(ATOM + "link", link, ("rel", "href"), "Bundle.link")
        for category in _as_list(bundle.get("category"), "Bundle.category"):
            self.atom_attrs(ATOM + "category", category, ("term", "label", "scheme"), "Bundle.category")
        for index, entry in enumerate(_as_list(bundle.get("entry"), "Bundle.entry")):
            if not isinstance(entry, Mapping):
                raise XmlCodecError(f"Bundle.entry[{index}] must be an object")
            if "deleted" in entry:
                self.deleted_entry(entry, index)
            else:
                self.entry(entry, index, depth + 1)
        sink.close()

    def entry(self, entry: Mapping[str, Any], index: int, depth: int) -> None:
        sink = self.sink
        where = f"Bundle.entry[{index}]"
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise XmlCodecError(f"{where} key(s) {sorted(unknown)} have no Atom representation")
        sink.open(ATOM + "entry")
        if "title" in entry:
            self.text_construct("title", entry["title"], f"{where}.title")
        for key in ("id", "updated", "published"):
            if key in entry:
                self.atom_text(key, entry[key], f"{where}.{key}")
        for author in _as_list(entry.get("author"), f"{where}.author"):
            self.atom_person(author, f"{where}.author")
        for link in _as_list(entry.get("link"), f"{where}.link"):
            self.atom_attrs(ATOM + "link", link, ("rel", "href"), f"{where}.link")
        for category in _as_list(entry.get("category"), f"{where}.category"):
            self.atom_attrs(ATOM + "category", category, ("term", "label", "scheme"), f"{where}.category")
        if "content" in entry:
            content = entry["content"]
            if not isinstance(content, Mapping):
                raise XmlCodecError(f"{where}.content must be a resource object")
            sink.open(ATOM + "content", None, _CONTENT_ATTRS)
            if content.get("resourceType") == "Bundle":
                self.feed(content, depth + 1)
            else:
                self.resource(content, depth + 1, f"{where}.content", _FHIR_NSMAP)
            sink.close()
        if "summary" in entry:
            self.text_construct("summary", entry["summary"], f"{where}.summary")
        sink.close()

    def deleted_entry(self, entry: Mapping[str, Any], index: int) -> None:
        where = f"Bundle.entry[{index}]"
        unknown = set(entry) - {"deleted", "id", "link"}
        if unknown:
            raise XmlCodecError(f"deleted {where} key(s) {sorted(unknown)} have no Atom representation")
        ref = _string(entry.get("id"), f"{where}.id")
        when = _string(entry["deleted"], f"{where}.deleted")
        self.sink.open(DELETED_ENTRY_TAG, {"at": TOMBSTONE_NS}, {"ref": ref, "when": when})
        for link in _as_list(entry.get("link"), f"{where}.link"):
            self.atom_attrs("{" + TOMBSTONE_NS + "}link", link, ("rel", "href"), f"{where}.link")
        self.sink.close()

    def text_construct(self, name: str, value: Any, where: str) -> None:
        sink = self.sink
        text = _string(value, where)
        if text.lstrip().startswith("<div"):
            sink.open(ATOM + name, None, _XHTML_TYPE_ATTRS)
            sink.xhtml(checked_xhtml(text, where))
        else:
            sink.open(ATOM + name, None, _TEXT_TYPE_ATTRS)
            sink.text(text)
        sink.close()

    def atom_text(self, name: str, value: Any, where: str) -> None:
        text = _string(value, where)
        self.sink.open(ATOM + name)
        self.sink.text(text)
        self.sink.close()

    def atom_person(self, person: Any, where: str) -> None:
        if not isinstance(person, Mapping) or set(person) - {"name", "uri", "email"}:
            raise XmlCodecError(f"{where} must be an object with 'name' (and optionally 'uri')")
        self.sink.open(ATOM + "author")
        for key in ("name", "uri", "email"):
            if key in person:
                self.atom_text(key, person[key], f"{where}.{key}")
        self.sink.close()

    def atom_attrs(self, tag: str, obj: Any, first: tuple[str, ...], where: str) -> None:
        if not isinstance(obj, Mapping):
            raise XmlCodecError(f"{where} must be an object")
        sink = self.sink
        sink.open(tag)
        for key in (*first, *(k for k in obj if k not in first)):
            if key in obj:
                sink.set(key, _string(obj[key], f"{where}.{key}"))
        sink.close()

    # -- FHIR --------------------------------------------------------------------------------------

    def resource(self, obj: Mapping[str, Any], depth: int, where: Where, nsmap: dict | None) -> None:
        """A resource element; ``nsmap`` declares the FHIR namespace unless the parent is FHIR already."""
        check_depth(depth)
        sink = self.sink
        resource_type = obj.get("resourceType")
        if not isinstance(resource_type, str) or resource_type not in RESOURCE_NAMES:
            raise XmlCodecError(f"{_path(where)}: resourceType {resource_type!r} is not a DSTU1 resource type")
        sink.open(FHIR + resource_type, nsmap)
        if resource_type == "Binary":
            self.binary(obj, where)
        else:
            if "id" in obj:
                sink.set("id", _string(obj["id"], (where, "id")))
            self.fields(obj, resource_type, depth, where, _RESOURCE_SKIP)
        sink.close()

    def binary(self, obj: Mapping[str, Any], where: Where) -> None:
        unknown = set(obj) - {"resourceType", "id", "contentType", "content"}
        if unknown:
            raise XmlCodecError(f"{_path(where)}: Binary key(s) {sorted(unknown)} have no XML representation")
        sink = self.sink
        if "id" in obj:
            sink.set("id", _string(obj["id"], (where, "id")))
        sink.set("contentType", _string(obj.get("contentType"), (where, "contentType")))
        sink.text(_string(obj.get("content", ""), (where, "content")))

    def fields(self, obj: Mapping[str, Any], type_name: str, depth: int, where: Where, skip: frozenset[str]) -> None:
        """Child elements of a complex element, in XSD order for known types (JSON order otherwise)."""
        names: dict[str, None] = {}
        has_meta = type(obj) is not dict  # for a plain dict: does any "_name" key exist at all?
        for key in obj:
            if key in skip:
                continue
            if key.startswith("_"):
                base = key[1:]
                has_meta = True
            else:
                base = key
            if not base:
                raise XmlCodecError(f"{_path(where)}: key {key!r} is not a FHIR element name")
            names[base] = None
        fields = _FIELDS.get(type_name)
        if len(names) > 1:
            # Stable sort: known names in table order, then unknown ones in JSON order -- or, for types
            # outside the table, the Element/Resource base elements first as in every XSD.
            rank = _RANKS.get(type_name, _GENERIC_RANK)
            ordered = sorted(names, key=rank.__getitem__)
        else:
            ordered = names
        for name in ordered:
            field = fields.get(name) if fields is not None else None
            if field is None:
                field = guess_field(name)
            value = obj.get(name, _MISSING)
            meta = obj.get("_" + name) if has_meta else None
            here = (where, name)
            if isinstance(value, list) or isinstance(meta, list):
                values = value if isinstance(value, list) else ([] if value is _MISSING else [value])
                metas = meta if isinstance(meta, list) else ([] if meta is None else [meta])
                for index, (v, m) in enumerate(zip_longest(values, metas)):
                    self.item(name, field, v, m, depth + 1, (here, index))
            else:
                self.item(name, field, value, meta, depth + 1, here)

    def item(self, name: str, field: Field, value: Any, meta: Any, depth: int, where: Where) -> None:
        """One element: a primitive (``value`` plus ``_name`` metadata), a complex value or a resource."""
        if depth > MAX_DEPTH:
            check_depth(depth)
        if type(value) is str and meta is None and name != "div":
            kind = field.kind
            if kind != XHTML_KIND and kind != RESOURCE_KIND:
                # ``<name value="..."/>``: most elements of a KT1 message (the general path below would
                # open the element, set @value and close it, with no check in between that could fail).
                self.sink.leaf(FHIR + name, "value", value)
                return
        if value is _MISSING or value is None:
            if meta is None:
                return
            value = _MISSING
        kind = field.kind
        sink = self.sink
        if kind == XHTML_KIND or (name == "div" and isinstance(value, str)):
            sink.xhtml(checked_xhtml(_string(value, where), _path(where)))
            return
        if kind == RESOURCE_KIND:
            if not isinstance(value, Mapping):
                raise XmlCodecError(f"{_path(where)} must be an inline resource object")
            sink.open(FHIR + name)
            self.resource(value, depth + 1, where, None)
            sink.close()
            return
        if isinstance(value, list):
            raise XmlCodecError(f"{_path(where)}: nested lists have no XML representation")
        sink.open(FHIR + name)
        if type(value) is dict or isinstance(value, Mapping):
            if meta is not None:
                raise XmlCodecError(f"{_path(where)}: '_{name}' only belongs next to a primitive value")
            if "id" in value:
                sink.set("id", _string(value["id"], (where, "id")))
            if kind == "Extension":
                if "url" not in value:
                    raise XmlCodecError(f"{_path(where)}: an extension needs a 'url'")
                sink.set("url", _string(value["url"], (where, "url")))
                self.fields(value, kind, depth, where, _EXTENSION_SKIP)
            else:
                self.fields(value, kind, depth, where, _ELEMENT_SKIP)
            sink.close()
            return
        if value is not _MISSING:
            sink.set("value", value if type(value) is str else _format_primitive(value, where))
        if meta is not None:
            if not isinstance(meta, Mapping) or set(meta) - {"id", "extension"}:
                raise XmlCodecError(f"{_path(where)}: '_{name}' may only hold 'id' and 'extension'")
            if "id" in meta:
                sink.set("id", _string(meta["id"], (where, "id")))
            extension_field = guess_field("extension")
            extensions = _as_list(meta.get("extension"), (where, "extension"))
            for index, ext in enumerate(extensions):
                self.item("extension", extension_field, ext, None, depth + 1, ((where, "extension"), index))
        sink.close()


_BUNDLE_KEYS = frozenset(
    {"resourceType", "title", "id", "updated", "author", "totalResults", "link", "category", "entry"}
)
_ENTRY_KEYS = frozenset({"title", "id", "updated", "published", "author", "link", "category", "content", "summary"})
_RESOURCE_SKIP = frozenset({"resourceType", "id"})
_ELEMENT_SKIP = frozenset({"id"})
_EXTENSION_SKIP = frozenset({"id", "url"})
_CONTENT_ATTRS = {"type": "text/xml"}
_XHTML_TYPE_ATTRS = {"type": "xhtml"}
_TEXT_TYPE_ATTRS = {"type": "text"}


class _Rank(dict):
    """Sort key table: position of a known name; every other name ranks after all of them."""

    def __init__(self, ranks: dict[str, int], other: int) -> None:
        super().__init__(ranks)
        self.other = other

    def __missing__(self, key: str) -> int:  # does not insert: names come from untrusted JSON
        return self.other


_FIELDS = {name: dict(fields) for name, fields in TYPES.items()}  # plain dicts: faster than the read-only views
_RANKS = {name: _Rank({field: i for i, field in enumerate(fields)}, len(fields)) for name, fields in TYPES.items()}
_GENERIC_RANK = _Rank({"extension": 0, "modifierExtension": 1, "language": 2, "text": 3, "contained": 4}, 5)


def _as_list(value: Any, where: Where) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise XmlCodecError(f"{_path(where)} must be a list")
    return value


def _string(value: Any, where: Where) -> str:
    if not isinstance(value, str):
        raise XmlCodecError(f"{_path(where)} must be a string, not {type(value).__name__}")
    return value


def _format_primitive(value: Any, where: Where) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise XmlCodecError(f"{_path(where)}: {value!r} is not a valid decimal")
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise XmlCodecError(f"{_path(where)}: {value!r} is not a valid decimal")
        return format(value, "f")
    raise XmlCodecError(f"{_path(where)}: a {type(value).__name__} has no DSTU1 primitive form")


# --------------------------------------------------------------------------------------------------
# Sinks


class _NeedsTree(Exception):
    """The text sink met something whose exact lxml output or error it does not reproduce: use the tree."""


_SLOT_NS = "urn:ktbench:dstu1:xhtml-slot"
_SLOT_TAG = "{" + _SLOT_NS + "}slot"
_SLOT_RE = re.compile(r'<kts:slot xmlns:kts="' + re.escape(_SLOT_NS) + r'" n="(\d+)"/>')


class _TreeSink:
    """The reference behaviour: an lxml tree, serialised by lxml.

    XHTML strings are spliced in verbatim at the end (a placeholder element marks the spot): grafting
    parsed XHTML into the tree would let lxml rewrite the author's namespace declarations inside the div.
    """

    __slots__ = ("root", "stack", "slots")

    def __init__(self) -> None:
        self.root: Any = None
        self.stack: list[Any] = []
        self.slots: list[str] = []

    def open(self, tag: str, nsmap: dict | None = None, attrs: dict[str, str] | None = None) -> None:
        if self.stack:
            el = etree.SubElement(self.stack[-1], tag, nsmap=nsmap, **(attrs or {}))
        else:
            el = self.root = etree.Element(tag, nsmap=nsmap, **(attrs or {}))
        self.stack.append(el)

    def leaf(self, tag: str, name: str, value: str) -> None:
        etree.SubElement(self.stack[-1], tag).set(name, value)

    def set(self, name: str, value: str) -> None:
        self.stack[-1].set(name, value)

    def text(self, value: str) -> None:
        self.stack[-1].text = value

    def xhtml(self, checked: str) -> None:
        self.slots.append(checked)
        etree.SubElement(self.stack[-1], _SLOT_TAG, nsmap={"kts": _SLOT_NS}, n=str(len(self.slots) - 1))

    def close(self) -> None:
        self.stack.pop()

    def finish(self) -> bytes:
        text = etree.tostring(self.root, encoding="unicode")
        if self.slots:
            slots = self.slots
            text = _SLOT_RE.sub(lambda m: slots[int(m.group(1))], text)
        return (_XML_DECLARATION + text).encode("utf-8")


_SAFE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
"""ASCII names lxml always accepts (a subset of XML NCNames); anything else goes to the tree sink."""
_PLAIN_ATTRIBUTES = frozenset(
    {"id", "url", "value", "contentType", "type", "ref", "when", "rel", "href", "term", "label", "scheme"}
)
_NOT_XML = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udfff]"  # two classes compile 3x faster
_NOT_XML_RE = re.compile(_NOT_XML)
"""Characters lxml refuses in text and attribute values (with an error the tree sink reproduces)."""
_ATTR_SPECIAL_RE = re.compile('[&<>"\n\r\t]|' + _NOT_XML)
_TEXT_SPECIAL_RE = re.compile("[&<>\r]|" + _NOT_XML)
_CACHE_LIMIT = 4096  # per cache; tags and attribute names can come from untrusted JSON keys


def _attribute(name: Any, value: Any) -> str:
    """`` name="value"`` as libxml2 serialises it (compared with lxml 6.1 / libxml2 2.14 for every code point)."""
    if name not in _PLAIN_ATTRIBUTES and not (
        type(name) is str and _SAFE_NAME_RE.match(name) is not None and name[:3].lower() != "xml"
    ):  # "xml..." names (xmlns!) are special to XML: leave them to lxml
        raise _NeedsTree
    if type(value) is not str:
        raise _NeedsTree
    if _ATTR_SPECIAL_RE.search(value) is not None:
        if _NOT_XML_RE.search(value) is not None:
            raise _NeedsTree
        value = (
            value.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace('"', "&quot;")
            .replace("\n", "&#10;")
            .replace("\r", "&#13;")
            .replace("\t", "&#9;")
        )
    return f' {name}="{value}"'


def _text_value(value: Any) -> str:
    """Element text escaped the way libxml2 serialises it."""
    if type(value) is not str:
        raise _NeedsTree
    if _TEXT_SPECIAL_RE.search(value) is None:
        return value
    if _NOT_XML_RE.search(value) is not None:
        raise _NeedsTree
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _plain_uri(uri: Any) -> bool:
    """A namespace URI that is written as is (the writer only declares its own constants)."""
    return type(uri) is str and _PLAIN_URI_RE.match(uri) is not None


_PLAIN_URI_RE = re.compile(r"[A-Za-z0-9:/?#@!$()*+,;=._~%-]+\Z")


def _split_tag(tag: Any) -> tuple[str, str]:
    """``{uri}local`` -> (uri, local), for tags whose local name is safe."""
    if type(tag) is not str or not tag.startswith("{"):
        raise _NeedsTree
    uri, brace, local = tag[1:].partition("}")
    if not brace or not _plain_uri(uri) or _SAFE_NAME_RE.match(local) is None:
        raise _NeedsTree
    return uri, local


class _Scope:
    """The namespace prefixes in scope at an element (prefix, None = default -> URI), with caches.

    Scopes are interned by their bindings (:func:`_scope`), so the caches -- which qualified name and
    which namespace declarations lxml gives an element with a given tag here -- stay warm across
    documents. The writer only declares a handful of constant namespaces, so there are few scopes.
    """

    __slots__ = ("bindings", "plain", "declaring")

    def __init__(self, bindings: dict[str | None, str]) -> None:
        self.bindings = bindings
        self.plain: dict[str, tuple[str, str, _Scope]] = {}  # tag -> (qualified name, "", self)
        self.declaring: dict[tuple, tuple[str, str, _Scope]] = {}  # (tag, *nsmap items) -> ditto, declared

    def resolve(self, tag: str, nsmap: dict | None) -> tuple[str, str, _Scope]:
        """(qualified name, namespace declarations, scope inside) of a new element, the way lxml does it.

        lxml declares an nsmap prefix unless it is bound to the same URI already, and gives the element the
        first nsmap prefix for its namespace. Otherwise it takes the nearest declaration of the namespace
        whose prefix is not shadowed: when exactly one visible prefix maps to it that is the one; with
        none (lxml would invent ``ns0``) or several (the choice depends on declaration order), the tree
        sink decides.
        """
        uri, local = _split_tag(tag)
        declarations = ""
        inner = self
        prefix: Any = _MISSING
        if nsmap:
            bindings = None
            for p, u in nsmap.items():
                if self.bindings.get(p) != u:
                    if not _plain_uri(u) or (p is not None and _SAFE_NAME_RE.match(p) is None):
                        raise _NeedsTree
                    if bindings is None:
                        bindings = dict(self.bindings)
                    bindings[p] = u
                    declarations += f' xmlns="{u}"' if p is None else f' xmlns:{p}="{u}"'
                if u == uri and prefix is _MISSING:
                    prefix = p
            if bindings is not None:
                inner = _scope(bindings)
        if prefix is _MISSING:
            found = [p for p, u in inner.bindings.items() if u == uri]
            if len(found) != 1:
                raise _NeedsTree
            prefix = found[0]
        result = (local if prefix is None else f"{prefix}:{local}", declarations, inner)
        if nsmap:
            if len(self.declaring) < _CACHE_LIMIT:
                self.declaring[(tag, *nsmap.items())] = result
        elif len(self.plain) < _CACHE_LIMIT:
            self.plain[tag] = result
        return result


_SCOPES: dict[frozenset, _Scope] = {}


def _scope(bindings: dict[str | None, str]) -> _Scope:
    key = frozenset(bindings.items())
    scope = _SCOPES.get(key)
    if scope is None:
        scope = _SCOPES.setdefault(key, _Scope(bindings))
    return scope


_ROOT_SCOPE = _scope({})


class _TextSink:
    """Writes the XML text directly, exactly as lxml would serialise the tree the writer describes."""

    __slots__ = ("parts", "stack", "pending")

    def __init__(self) -> None:
        self.parts: list[str] = [_XML_DECLARATION]
        self.stack: list[tuple[str, _Scope]] = []  # (qualified name, namespaces in scope) per open element
        self.pending = False  # the innermost start tag is still open (attributes may follow)

    def open(self, tag: str, nsmap: dict | None = None, attrs: dict[str, str] | None = None) -> None:
        scope = self.stack[-1][1] if self.stack else _ROOT_SCOPE
        if nsmap is None:
            resolved = scope.plain.get(tag)
        else:
            resolved = scope.declaring.get((tag, *nsmap.items()))
        if resolved is None:
            resolved = scope.resolve(tag, nsmap)
        name, declarations, inner = resolved
        if self.pending:
            self.parts.append(">")
        self.parts.append("<" + name + declarations)
        self.stack.append((name, inner))
        self.pending = True
        if attrs:
            for key, value in attrs.items():
                self.parts.append(_attribute(key, value))

    def leaf(self, tag: str, name: str, value: str) -> None:
        """``open(tag); set(name, value); close()`` in one call: the shape of most FHIR primitives."""
        scope = self.stack[-1][1]
        resolved = scope.plain.get(tag) or scope.resolve(tag, None)
        if name in _PLAIN_ATTRIBUTES and type(value) is str and _ATTR_SPECIAL_RE.search(value) is None:
            attribute = f' {name}="{value}"'  # nothing to escape or check: _attribute() would return this
        else:
            attribute = _attribute(name, value)
        if self.pending:
            self.parts.append(">")
            self.pending = False
        self.parts.append("<" + resolved[0] + attribute + "/>")

    def set(self, name: str, value: str) -> None:
        if not self.pending:  # lxml would still put it on the start tag; never done by the writer
            raise _NeedsTree
        self.parts.append(_attribute(name, value))

    def text(self, value: str) -> None:
        if not self.pending:
            raise _NeedsTree
        self.parts.append(">" + _text_value(value))
        self.pending = False

    def xhtml(self, checked: str) -> None:
        if self.pending:
            self.parts.append(">")
            self.pending = False
        self.parts.append(checked)

    def close(self) -> None:
        name = self.stack.pop()[0]
        if self.pending:
            self.parts.append("/>")
            self.pending = False
        else:
            self.parts.append("</" + name + ">")

    def finish(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Self-check against the installed lxml

_PROBE: dict[str, Any] = {
    "resourceType": "Bundle",
    "id": "urn:uuid:1",
    "updated": "",
    "title": "t & <b> \"q\" 'a'\r\n\t\u00e9\U0001f600",
    "totalResults": "2",
    "author": [{"name": "n", "uri": "u"}],
    "link": [{"rel": "self", "href": "h?a=1&b=\"2\"\n\t\r<>'\u00e9", "type": "t"}],
    "category": [{"term": "t", "label": "l", "scheme": "s"}],
    "entry": [
        {"deleted": "2020-01-01", "id": "x", "link": [{"href": "h"}]},
        {
            "id": "e",
            "link": [{"rel": "self", "href": "h"}],
            "content": {
                "resourceType": "Patient",
                "id": "p",
                "text": {"status": "generated", "div": "<div>x &amp; y</div>"},
                "contained": [{"resourceType": "Binary", "contentType": "text/plain", "content": "QQ== &<>\r\n"}],
                "extension": [{"url": "u", "valueDecimal": 1e-7}, {"url": "v", "valueBoolean": False}],
                "name": [{"given": ["a\"&<>\n\r\t", "b"], "_given": [None, {"id": "g", "extension": [
                    {"url": "u", "valueString": "v"}]}]}],
                "active": True,
            },
            "summary": "<div xmlns=\"http://www.w3.org/1999/xhtml\">s</div>",
        },
        {"content": {"resourceType": "Bundle", "totalResults": "1", "entry": [{"content": {"resourceType": "Other"}}]}},
    ],
}


def _text_sink_agrees() -> bool:
    """Does the text sink write exactly what lxml writes? Checked once at import on a document that uses
    every sink operation, escaping and namespace case, so a different lxml/libxml2 serialisation can only
    make the writer slower (tree sink only), never different."""
    try:
        return _Writer(_TextSink()).document(_PROBE) == _Writer(_TreeSink()).document(_PROBE)
    except _NeedsTree:  # pragma: no cover - the probe is built to stay on the text sink
        return False


_TEXT_SINK_AGREES = _text_sink_agrees()

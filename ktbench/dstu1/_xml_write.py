"""JSON -> XML half of the DSTU1 codec (see :mod:`ktbench.dstu1.xmlcodec` for the mapping rules).

Elements are written in XSD order for the types in the DSTU1 table (so output validates against
``fhir-atom-single.xsd`` whenever the content does), in JSON order otherwise.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from itertools import zip_longest
from typing import Any, Mapping

from lxml import etree

from ktbench.dstu1._xml_common import (
    ATOM,
    DELETED_ENTRY_TAG,
    FEED_TAG,
    FHIR,
    OPENSEARCH_NS,
    TOMBSTONE_NS,
    TOTAL_RESULTS_TAG,
    XmlCodecError,
    check_depth,
    checked_xhtml,
)
from ktbench.dstu1._xml_schema import RESOURCE_KIND, RESOURCE_NAMES, TYPES, XHTML_KIND, Field, guess_field
from ktbench.dstu1.constants import ATOM_NS, FHIR_NS

_MISSING: Any = object()


def write_document(obj: Mapping[str, Any]) -> bytes:
    """Bundle dict -> Atom feed bytes; resource dict -> resource bytes (UTF-8, XML declaration)."""
    writer = _Writer()
    if obj.get("resourceType") == "Bundle":
        root = writer.feed(None, obj, 0)
    else:
        root = writer.resource(None, obj, 0, str(obj.get("resourceType", "resource")))
    return writer.finish(root)



_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_SLOT_NS = "urn:ktbench:dstu1:xhtml-slot"
_SLOT_TAG = "{" + _SLOT_NS + "}slot"
_SLOT_RE = re.compile(r'<kts:slot xmlns:kts="' + re.escape(_SLOT_NS) + r'" n="(\d+)"/>')


class _Writer:
    """One JSON -> XML conversion. XHTML strings are validated, then spliced in verbatim at the end.

    Splicing (instead of grafting parsed XHTML into the tree) keeps the author's namespace declarations
    inside the div exactly as written; lxml would otherwise rewrite them on the move.
    """

    __slots__ = ("slots",)

    def __init__(self) -> None:
        self.slots: list[str] = []

    def finish(self, root: Any) -> bytes:
        text = etree.tostring(root, encoding="unicode")
        if self.slots:
            slots = self.slots
            text = _SLOT_RE.sub(lambda m: slots[int(m.group(1))], text)
        return (_XML_DECLARATION + text).encode("utf-8")

    # -- Atom --------------------------------------------------------------------------------------

    def feed(self, parent: Any, bundle: Mapping[str, Any], depth: int) -> Any:
        check_depth(depth)
        nsmap = {None: ATOM_NS}
        if "totalResults" in bundle:
            nsmap["os"] = OPENSEARCH_NS
        if parent is None:
            feed = etree.Element(FEED_TAG, nsmap=nsmap)
        else:
            feed = etree.SubElement(parent, FEED_TAG, nsmap=nsmap)
        unknown = set(bundle) - _BUNDLE_KEYS
        if unknown:
            raise XmlCodecError(f"Bundle key(s) {sorted(unknown)} have no Atom representation")
        if "title" in bundle:
            self.text_construct(feed, "title", bundle["title"], "Bundle.title")
        for key in ("id", "updated"):
            if key in bundle:
                _atom_text(feed, key, bundle[key], f"Bundle.{key}")
        for author in _as_list(bundle.get("author"), "Bundle.author"):
            _atom_person(feed, author, "Bundle.author")
        if "totalResults" in bundle:
            total = bundle["totalResults"]
            if isinstance(total, bool) or not isinstance(total, (str, int)):
                raise XmlCodecError("Bundle.totalResults must be a string (or an integer)")
            etree.SubElement(feed, TOTAL_RESULTS_TAG).text = str(total)
        for link in _as_list(bundle.get("link"), "Bundle.link"):
            _atom_attrs(feed, ATOM + "link", link, ("rel", "href"), "Bundle.link")
        for category in _as_list(bundle.get("category"), "Bundle.category"):
            _atom_attrs(feed, ATOM + "category", category, ("term", "label", "scheme"), "Bundle.category")
        for index, entry in enumerate(_as_list(bundle.get("entry"), "Bundle.entry")):
            if not isinstance(entry, Mapping):
                raise XmlCodecError(f"Bundle.entry[{index}] must be an object")
            if "deleted" in entry:
                self.deleted_entry(feed, entry, index)
            else:
                self.entry(feed, entry, index, depth + 1)
        return feed

    def entry(self, feed: Any, entry: Mapping[str, Any], index: int, depth: int) -> None:
        where = f"Bundle.entry[{index}]"
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise XmlCodecError(f"{where} key(s) {sorted(unknown)} have no Atom representation")
        el = etree.SubElement(feed, ATOM + "entry")
        if "title" in entry:
            self.text_construct(el, "title", entry["title"], f"{where}.title")
        for key in ("id", "updated", "published"):
            if key in entry:
                _atom_text(el, key, entry[key], f"{where}.{key}")
        for author in _as_list(entry.get("author"), f"{where}.author"):
            _atom_person(el, author, f"{where}.author")
        for link in _as_list(entry.get("link"), f"{where}.link"):
            _atom_attrs(el, ATOM + "link", link, ("rel", "href"), f"{where}.link")
        for category in _as_list(entry.get("category"), f"{where}.category"):
            _atom_attrs(el, ATOM + "category", category, ("term", "label", "scheme"), f"{where}.category")
        if "content" in entry:
            content = entry["content"]
            if not isinstance(content, Mapping):
                raise XmlCodecError(f"{where}.content must be a resource object")
            holder = etree.SubElement(el, ATOM + "content", type="text/xml")
            if content.get("resourceType") == "Bundle":
                self.feed(holder, content, depth + 1)
            else:
                self.resource(holder, content, depth + 1, f"{where}.content")
        if "summary" in entry:
            self.text_construct(el, "summary", entry["summary"], f"{where}.summary")

    def deleted_entry(self, feed: Any, entry: Mapping[str, Any], index: int) -> None:
        where = f"Bundle.entry[{index}]"
        unknown = set(entry) - {"deleted", "id", "link"}
        if unknown:
            raise XmlCodecError(f"deleted {where} key(s) {sorted(unknown)} have no Atom representation")
        ref = _string(entry.get("id"), f"{where}.id")
        when = _string(entry["deleted"], f"{where}.deleted")
        el = etree.SubElement(feed, DELETED_ENTRY_TAG, nsmap={"at": TOMBSTONE_NS}, ref=ref, when=when)
        for link in _as_list(entry.get("link"), f"{where}.link"):
            _atom_attrs(el, "{" + TOMBSTONE_NS + "}link", link, ("rel", "href"), f"{where}.link")

    def text_construct(self, parent: Any, name: str, value: Any, where: str) -> None:
        text = _string(value, where)
        if text.lstrip().startswith("<div"):
            el = etree.SubElement(parent, ATOM + name, type="xhtml")
            self.xhtml(el, text, where)
        else:
            etree.SubElement(parent, ATOM + name, type="text").text = text

    def xhtml(self, parent: Any, text: str, where: str) -> None:
        self.slots.append(checked_xhtml(text, where))
        etree.SubElement(parent, _SLOT_TAG, nsmap={"kts": _SLOT_NS}, n=str(len(self.slots) - 1))

    # -- FHIR --------------------------------------------------------------------------------------

    def resource(self, parent: Any, obj: Mapping[str, Any], depth: int, where: str) -> Any:
        check_depth(depth)
        resource_type = obj.get("resourceType")
        if not isinstance(resource_type, str) or resource_type not in RESOURCE_NAMES:
            raise XmlCodecError(f"{where}: resourceType {resource_type!r} is not a DSTU1 resource type")
        tag = FHIR + resource_type
        if parent is None:
            el = etree.Element(tag, nsmap={None: FHIR_NS})
        elif parent.tag.startswith(FHIR):
            el = etree.SubElement(parent, tag)
        else:
            el = etree.SubElement(parent, tag, nsmap={None: FHIR_NS})
        if resource_type == "Binary":
            _write_binary(el, obj, where)
            return el
        if "id" in obj:
            el.set("id", _string(obj["id"], f"{where}.id"))
        self.fields(el, obj, TYPES.get(resource_type), depth, where, skip=_RESOURCE_SKIP)
        return el

    def fields(
        self,
        el: Any,
        obj: Mapping[str, Any],
        fields: Mapping[str, Field] | None,
        depth: int,
        where: str,
        skip: frozenset[str] = frozenset({"id"}),
    ) -> None:
        names: dict[str, None] = {}
        for key in obj:
            if key in skip:
                continue
            base = key[1:] if key.startswith("_") else key
            if not base:
                raise XmlCodecError(f"{where}: key {key!r} is not a FHIR element name")
            names[base] = None
        if fields is not None:
            ordered = [n for n in fields if n in names]
            ordered += [n for n in names if n not in fields]
        else:
            ordered = sorted(names, key=_generic_rank)
        for name in ordered:
            field = (fields.get(name) if fields is not None else None) or guess_field(name)
            value = obj.get(name, _MISSING)
            meta = obj.get("_" + name)
            here = f"{where}.{name}"
            if isinstance(value, list) or isinstance(meta, list):
                values = value if isinstance(value, list) else ([] if value is _MISSING else [value])
                metas = meta if isinstance(meta, list) else ([] if meta is None else [meta])
                for index, (v, m) in enumerate(zip_longest(values, metas)):
                    self.item(el, name, field, v, m, depth + 1, f"{here}[{index}]")
            else:
                self.item(el, name, field, value, meta, depth + 1, here)

    def item(self, parent: Any, name: str, field: Field, value: Any, meta: Any, depth: int, where: str) -> None:
        check_depth(depth)
        if value is _MISSING or value is None:
            if meta is None:
                return
            value = _MISSING
        if field.kind == XHTML_KIND or (name == "div" and isinstance(value, str)):
            self.xhtml(parent, _string(value, where), where)
            return
        if field.kind == RESOURCE_KIND:
            if not isinstance(value, Mapping):
                raise XmlCodecError(f"{where} must be an inline resource object")
            self.resource(etree.SubElement(parent, FHIR + name), value, depth + 1, where)
            return
        if isinstance(value, list):
            raise XmlCodecError(f"{where}: nested lists have no XML representation")
        el = etree.SubElement(parent, FHIR + name)
        if isinstance(value, Mapping):
            if meta is not None:
                raise XmlCodecError(f"{where}: '_{name}' only belongs next to a primitive value")
            is_extension = field.kind == "Extension"
            if "id" in value:
                el.set("id", _string(value["id"], f"{where}.id"))
            if is_extension:
                if "url" not in value:
                    raise XmlCodecError(f"{where}: an extension needs a 'url'")
                el.set("url", _string(value["url"], f"{where}.url"))
            skip = _EXTENSION_SKIP if is_extension else _ELEMENT_SKIP
            self.fields(el, value, TYPES.get(field.kind), depth, where, skip=skip)
            return
        if value is not _MISSING:
            el.set("value", _format_primitive(value, where))
        if meta is not None:
            if not isinstance(meta, Mapping) or set(meta) - {"id", "extension"}:
                raise XmlCodecError(f"{where}: '_{name}' may only hold 'id' and 'extension'")
            if "id" in meta:
                el.set("id", _string(meta["id"], f"{where}.id"))
            extension_field = guess_field("extension")
            for index, ext in enumerate(_as_list(meta.get("extension"), f"{where}.extension")):
                self.item(el, "extension", extension_field, ext, None, depth + 1, f"{where}.extension[{index}]")


_BUNDLE_KEYS = frozenset(
    {"resourceType", "title", "id", "updated", "author", "totalResults", "link", "category", "entry"}
)
_ENTRY_KEYS = frozenset({"title", "id", "updated", "published", "author", "link", "category", "content", "summary"})
_RESOURCE_SKIP = frozenset({"resourceType", "id"})
_ELEMENT_SKIP = frozenset({"id"})
_EXTENSION_SKIP = frozenset({"id", "url"})
_GENERIC_FIRST = {"extension": 0, "modifierExtension": 1, "language": 2, "text": 3, "contained": 4}


def _generic_rank(name: str) -> int:
    # Unknown types: keep JSON order, but the Element/Resource base elements come first as in every XSD.
    return _GENERIC_FIRST.get(name, 5)


def _as_list(value: Any, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise XmlCodecError(f"{where} must be a list")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise XmlCodecError(f"{where} must be a string, not {type(value).__name__}")
    return value


def _format_primitive(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise XmlCodecError(f"{where}: {value!r} is not a valid decimal")
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise XmlCodecError(f"{where}: {value!r} is not a valid decimal")
        return format(value, "f")
    raise XmlCodecError(f"{where}: a {type(value).__name__} has no DSTU1 primitive form")


def _atom_text(parent: Any, name: str, value: Any, where: str) -> None:
    etree.SubElement(parent, ATOM + name).text = _string(value, where)


def _atom_person(parent: Any, person: Any, where: str) -> None:
    if not isinstance(person, Mapping) or set(person) - {"name", "uri", "email"}:
        raise XmlCodecError(f"{where} must be an object with 'name' (and optionally 'uri')")
    el = etree.SubElement(parent, ATOM + "author")
    for key in ("name", "uri", "email"):
        if key in person:
            _atom_text(el, key, person[key], f"{where}.{key}")


def _atom_attrs(parent: Any, tag: str, obj: Any, first: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, Mapping):
        raise XmlCodecError(f"{where} must be an object")
    el = etree.SubElement(parent, tag)
    for key in (*first, *(k for k in obj if k not in first)):
        if key in obj:
            el.set(key, _string(obj[key], f"{where}.{key}"))


def _write_binary(el: Any, obj: Mapping[str, Any], where: str) -> None:
    unknown = set(obj) - {"resourceType", "id", "contentType", "content"}
    if unknown:
        raise XmlCodecError(f"{where}: Binary key(s) {sorted(unknown)} have no XML representation")
    if "id" in obj:
        el.set("id", _string(obj["id"], f"{where}.id"))
    el.set("contentType", _string(obj.get("contentType"), f"{where}.contentType"))
    el.text = _string(obj.get("content", ""), f"{where}.content")

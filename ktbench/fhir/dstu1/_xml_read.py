"""XML -> JSON half of the DSTU1 codec (see :mod:`ktbench.fhir.dstu1.xmlcodec` for the mapping rules).

Elements are matched against the DSTU1 table per context; anything the table does not know is
converted by shape, so nothing a sender wrote is silently dropped -- text where DSTU1 allows none and
unknown attributes are errors instead.

Speed (the validator and the KT1 server convert every XML message): the walk touches each lxml element
as few times as possible, because every property access on an lxml element crosses into C and builds
new Python objects. In particular:

* ``el.items()`` is read once per element and handed down (``el.attrib`` would build a proxy object);
* ``len(el)`` is asked before iterating, and children are taken with ``el[:]``: starting lxml's child
  iterator costs several times more, and most elements are leaves;
* text/tail blankness is tested with ``not s or s.isspace()`` (the same test as ``not s.strip()``,
  without building a stripped copy);
* the field of a child comes from a per-type table keyed by the namespaced tag (one dict lookup);
* ``<name value="..."/>`` -- most elements of a KT1 message -- is converted inline in
  :func:`_read_into`, without the general :func:`_read_value` / :func:`_read_primitive` calls;
* the "where" context used in error messages is a cheap linked tuple, formatted only when an error
  is actually raised.

The checks and their order are unchanged, so a document that has several problems still gets the same
(first) error message.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Union

from ktbench.fhir.dstu1._xml_common import (
    ATOM,
    DELETED_ENTRY_TAG,
    FEED_TAG,
    FHIR,
    FHIR_LEN,
    MAX_DEPTH,
    TOTAL_RESULTS_TAG,
    XHTML_DIV_TAG,
    XmlCodecError,
    check_depth,
    describe,
    is_blank,
    snippet,
    xhtml_to_string,
)
from ktbench.fhir.dstu1._xml_schema import PRIMITIVE_KINDS, RESOURCE_KIND, RESOURCE_NAMES, TYPES, Field, guess_field
from ktbench.fhir.dstu1.constants import ATOM_NS, FHIR_NS

_MISSING: Any = object()
_TEXT_HINT = (
    "DSTU1 XML carries values in @value attributes, never as text "
    "(an abbreviated example with '...' cannot be converted)"
)
_EXTENSION_TAG = FHIR + "extension"

Where = Union[str, tuple]
"""Error-message context: ``"<Patient>"``, or ``(element name, parent context)`` for a nested element.

Formatted by :func:`_where` as ``<given> in <name> in <Patient>`` -- only when an error is raised."""


def _where(where: Where) -> str:
    parts = []
    while not isinstance(where, str):
        name, where = where
        parts.append(f"<{name}>")
    parts.append(where)
    return " in ".join(parts)


def _fields_by_tag() -> dict[str, dict[str, Field]]:
    """Complex type name -> {namespaced tag: field}: one dict lookup per child element.

    The XHTML narrative ``div`` is listed under its XHTML tag as well: it shares the ``div`` field (and
    therefore its group) with a ``<div>`` in the FHIR namespace, exactly as a by-name lookup would.
    """
    tables: dict[str, dict[str, Field]] = {}
    for type_name, fields in TYPES.items():
        table = {FHIR + name: field for name, field in fields.items()}
        if "div" in fields:
            table[XHTML_DIV_TAG] = fields["div"]
        tables[type_name] = table
    return tables


_FIELDS_BY_TAG = _fields_by_tag()
_NO_FIELDS: dict[str, Field] = {}


def _unlisted_field(tag: Any, where: Where) -> Field:
    """Field of a child element its type does not list: FHIR-namespace elements are converted by shape."""
    if not isinstance(tag, str):
        raise XmlCodecError(f"unexpected XML node {tag!r} inside {_where(where)}")
    if tag.startswith(FHIR):
        return guess_field(tag[FHIR_LEN:])
    if tag == XHTML_DIV_TAG:
        return guess_field("div")
    raise XmlCodecError(f"unexpected element {describe(tag)} inside {_where(where)}")


def read_document(root: Any) -> dict:
    """Convert a parsed root element: Atom feed -> Bundle dict, FHIR resource -> resource dict."""
    tag = root.tag
    if tag == FEED_TAG:
        return _read_feed(root, 0)
    if _is_resource_tag(tag):
        return _read_resource(root, 0)
    raise XmlCodecError(
        f"root element {describe(tag)} is neither an Atom <feed> ({ATOM_NS}) nor a DSTU1 resource in {FHIR_NS}"
    )


def _is_resource_tag(tag: Any) -> bool:
    return isinstance(tag, str) and tag.startswith(FHIR) and tag[FHIR_LEN:] in RESOURCE_NAMES


def _text_of(el: Any, where: str) -> str:
    """Text content of a simple Atom element (no child elements allowed)."""
    if len(el):
        raise XmlCodecError(f"{where} must contain text only, found element {describe(el[0].tag)}")
    return el.text or ""


# --------------------------------------------------------------------------------------------------
# Atom

_ATOM_NAMES = {
    ATOM + name: name
    for name in ("entry", "id", "updated", "published", "title", "summary", "author", "link", "category", "content",
                 "name", "uri", "email")
}
"""Atom tag -> local name for the elements the readers below accept (any other tag is refused by them)."""


def _read_feed(feed: Any, depth: int) -> dict:
    check_depth(depth)
    if not is_blank(feed.text):
        raise XmlCodecError(f"unexpected text {snippet(feed.text)!r} inside <feed>")
    out: dict[str, Any] = {"resourceType": "Bundle"}
    entries: list[dict] = []
    for child in feed:
        tail = child.tail
        if tail and not tail.isspace():
            raise XmlCodecError(f"unexpected text {snippet(tail)!r} inside <feed>")
        tag = child.tag
        if tag == TOTAL_RESULTS_TAG:
            out["totalResults"] = _text_of(child, "<os:totalResults>").strip()
            continue
        if tag == DELETED_ENTRY_TAG:
            entries.append(_read_deleted_entry(child))
            continue
        name = _ATOM_NAMES.get(tag)
        if name == "entry":
            entries.append(_read_entry(child, depth + 1))
        elif name in ("id", "updated"):
            out[name] = _text_of(child, f"<feed><{name}>").strip()
        elif name == "title":
            out["title"] = _read_text_construct(child, "<feed><title>")
        elif name == "author":
            out.setdefault("author", []).append(_read_person(child))
        elif name == "link":
            out.setdefault("link", []).append(_read_link(child))
        elif name == "category":
            out.setdefault("category", []).append(_read_category(child))
        else:
            raise XmlCodecError(f"unsupported element {describe(tag)} in Atom <feed>")
    out["entry"] = entries
    return out


def _read_entry(entry: Any, depth: int) -> dict:
    check_depth(depth)
    if not is_blank(entry.text):
        raise XmlCodecError(f"unexpected text {snippet(entry.text)!r} inside <entry>")
    out: dict[str, Any] = {}
    for child in entry:
        tail = child.tail
        if tail and not tail.isspace():
            raise XmlCodecError(f"unexpected text {snippet(tail)!r} inside <entry>")
        tag = child.tag
        name = _ATOM_NAMES.get(tag)
        if name in ("id", "updated", "published"):
            out[name] = _text_of(child, f"<entry><{name}>").strip()
        elif name == "title":
            out["title"] = _read_text_construct(child, "<entry><title>")
        elif name == "summary":
            out["summary"] = _read_text_construct(child, "<entry><summary>")
        elif name == "author":
            out.setdefault("author", []).append(_read_person(child))
        elif name == "link":
            out.setdefault("link", []).append(_read_link(child))
        elif name == "category":
            out.setdefault("category", []).append(_read_category(child))
        elif name == "content":
            out["content"] = _read_content(child, depth + 1)
        else:
            raise XmlCodecError(f"unsupported element {describe(tag)} in Atom <entry>")
    return out


def _read_deleted_entry(el: Any) -> dict:
    ref, when = el.get("ref"), el.get("when")
    if ref is None or when is None:
        raise XmlCodecError("<at:deleted-entry> needs both @ref and @when")
    out: dict[str, Any] = {"deleted": when, "id": ref}
    for child in el:
        if not isinstance(child.tag, str) or child.tag.rpartition("}")[2] != "link":
            raise XmlCodecError(f"unsupported element {describe(child.tag)} in <at:deleted-entry>")
        out.setdefault("link", []).append(_read_link(child))
    return out


def _read_content(content: Any, depth: int) -> dict:
    children = content[:]
    if not is_blank(content.text) or any(not is_blank(c.tail) for c in children):
        raise XmlCodecError("Atom <content> must hold one FHIR resource element, found text")
    if len(children) != 1:
        raise XmlCodecError(
            f"Atom <content> must hold exactly one FHIR resource element, found {len(children)}"
        )
    child = children[0]
    tag = child.tag
    if tag == FEED_TAG:
        return _read_feed(child, depth)
    if _is_resource_tag(tag):
        return _read_resource(child, depth)
    raise XmlCodecError(f"Atom <content> holds {describe(tag)}, which is not a DSTU1 resource")


def _read_text_construct(el: Any, where: str) -> str:
    """Atom title/summary: plain text, or (``type="xhtml"``) one XHTML div kept as a string."""
    children = el[:]
    if not children:
        return el.text or ""
    if len(children) == 1 and children[0].tag == XHTML_DIV_TAG and is_blank(el.text):
        if not is_blank(children[0].tail):
            raise XmlCodecError(f"unexpected text next to the XHTML <div> in {where}")
        return xhtml_to_string(children[0])
    raise XmlCodecError(f"{where} must be text or a single XHTML <div>")


def _read_person(el: Any) -> dict:
    out: dict[str, str] = {}
    for child in el:
        name = _ATOM_NAMES.get(child.tag)
        if name == "name":
            out["name"] = _text_of(child, "<author><name>")
        elif name in ("uri", "email"):
            out[name] = _text_of(child, f"<author><{name}>").strip()
        else:
            raise XmlCodecError(f"unsupported element {describe(child.tag)} in Atom <author>")
    return out


def _plain_attributes(el: Any) -> dict[str, str]:
    # Namespaced attributes (xml:base, xml:lang) carry no KT1 data.
    return {k: v for k, v in el.items() if not k.startswith("{")}


def _read_link(el: Any) -> dict:
    attrs = _plain_attributes(el)
    if "href" not in attrs:
        raise XmlCodecError("Atom <link> without @href")
    out = {k: attrs.pop(k) for k in ("rel", "href") if k in attrs}
    out.update(attrs)
    return out


def _read_category(el: Any) -> dict:
    attrs = _plain_attributes(el)
    if "term" not in attrs:
        raise XmlCodecError("Atom <category> without @term")
    out = {k: attrs.pop(k) for k in ("term", "label", "scheme") if k in attrs}
    out.update(attrs)
    return out


# --------------------------------------------------------------------------------------------------
# FHIR resources


def _read_resource(el: Any, depth: int) -> dict:
    check_depth(depth)
    resource_type = el.tag[FHIR_LEN:]
    if resource_type == "Binary":
        return _read_binary(el)
    out: dict[str, Any] = {"resourceType": resource_type}
    _read_into(out, el, resource_type, depth, f"<{resource_type}>", False, el.items())
    return out


def _read_binary(el: Any) -> dict:
    if len(el):
        raise XmlCodecError(f"<Binary> holds base64 text only, found {describe(el[0].tag)}")
    out: dict[str, Any] = {"resourceType": "Binary"}
    for key, value in _plain_attributes(el).items():
        if key not in ("id", "contentType"):
            raise XmlCodecError(f"unexpected attribute @{key} on <Binary>")
        out[key] = value
    out["content"] = "".join((el.text or "").split())
    return out


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


def _to_bool(raw: str) -> Any:
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    return raw


def _to_int(raw: str) -> Any:
    if _INT_RE.match(raw):
        try:
            return int(raw)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits): keep the text
            return raw
    return raw


def _to_dec(raw: str) -> Any:
    if _INT_RE.match(raw):
        return _to_int(raw)
    return float(raw) if _DEC_RE.match(raw) else raw


_CONVERTERS: dict[str, Callable[[str], Any]] = {"bool": _to_bool, "int": _to_int, "dec": _to_dec}
"""Typed JSON value per primitive kind; text that does not fit the type stays a string. Every other
kind (strings, and complex types written with a stray @value) keeps the raw text."""


def _read_into(
    out: dict[str, Any],
    el: Any,
    type_name: str,
    depth: int,
    where: Where,
    allow_url: bool,
    attrs: list[tuple[str, str]],
) -> None:
    """Fill ``out`` with the attributes (``attrs`` = ``el.items()``) and child elements of a complex element.

    ``type_name`` selects the DSTU1 table entry (for a name the table lacks, children convert by shape).

    Two passes, as the mapping needs them: first every child is checked and grouped by name (a repeated
    name becomes a JSON list wherever its members stand), then each group is converted.
    """
    if depth > MAX_DEPTH:
        check_depth(depth)
    for key, value in attrs:
        if key == "id" or (key == "url" and allow_url):
            out[key] = value
        elif not key.startswith("{"):  # xsi:schemaLocation and friends are ignored
            raise XmlCodecError(f"unexpected attribute @{key} on {_where(where)}")
    text = el.text
    if text and not text.isspace():
        raise XmlCodecError(f"unexpected text {snippet(text)!r} inside {_where(where)}: {_TEXT_HINT}")
    if not len(el):
        return
    # Pass 1: check every child, group the children by name in order of first appearance.
    # groups[name] = [field, child, child, ...]
    by_tag = _FIELDS_BY_TAG.get(type_name, _NO_FIELDS)
    groups: dict[str, list[Any]] = {}
    for child in el[:]:  # slicing is cheaper than lxml's child iterator
        tag = child.tag
        field = by_tag.get(tag)
        if field is None:
            field = _unlisted_field(tag, where)
        tail = child.tail
        if tail and not tail.isspace():
            raise XmlCodecError(f"unexpected text {snippet(tail)!r} inside {_where(where)}: {_TEXT_HINT}")
        name = field.name
        group = groups.get(name)
        if group is None:
            groups[name] = [field, child]
        else:
            group.append(child)
    # Pass 2: convert each group.
    for name, group in groups.items():
        if name in out:
            raise XmlCodecError(f"element <{name}> clashes with an attribute of {_where(where)}")
        field = group[0]
        if len(group) == 2:
            item = group[1]
            attrs = item.items()
            if (
                len(attrs) == 1
                and attrs[0][0] == "value"
                and name != "div"
                and not len(item)
                and field.kind != RESOURCE_KIND
                and (not (item_text := item.text) or item_text.isspace())
            ):
                # Fast path for ``<name value="..."/>``, the bulk of every KT1 document; the result is
                # what _read_value -> _read_primitive would return for it.
                convert = _CONVERTERS.get(field.kind)
                value = attrs[0][1] if convert is None else convert(attrs[0][1])
                out[name] = [value] if field.array else value
                continue
            value, meta = _read_value(item, field, depth + 1, where, attrs)
            if field.array:
                if value is not _MISSING:
                    out[name] = [value]
                if meta is not None:
                    out["_" + name] = [meta]
            else:
                if value is not _MISSING:
                    out[name] = value
                if meta is not None:
                    out["_" + name] = meta
            continue
        items = group[1:]
        values: list[Any] = []
        metas: list[Any] = []
        for item in items:
            value, meta = _read_value(item, field, depth + 1, where, item.items())
            values.append(value)
            metas.append(meta)
        if any(v is not _MISSING for v in values):
            out[name] = [None if v is _MISSING else v for v in values]
        if any(m is not None for m in metas):
            out["_" + name] = metas


def _read_value(
    item: Any, field: Field, depth: int, parent: Where, attrs: list[tuple[str, str]]
) -> tuple[Any, Any]:
    """JSON value and optional ``_name`` metadata of one child element (attributes ``attrs``) of ``parent``."""
    name = field.name
    if name == "div" and item.tag == XHTML_DIV_TAG:
        return xhtml_to_string(item), None
    kind = field.kind
    if kind == RESOURCE_KIND:
        return _read_contained(item, depth, (name, parent)), None
    if attrs:
        for key, _ in attrs:
            if key == "value":
                return _read_primitive(item, attrs, kind, depth, name, parent)
    elif not len(item):
        text = item.text
        if not text or text.isspace():
            return {}, None  # an empty element: keep it visible to the validator
    if kind in PRIMITIVE_KINDS:
        for child in item:
            if child.tag != _EXTENSION_TAG:
                break
        else:
            return _read_primitive(item, attrs, kind, depth, name, parent)
    out: dict[str, Any] = {}
    _read_into(out, item, kind, depth, (name, parent), kind == "Extension", attrs)
    return out, None


def _read_primitive(
    item: Any, attrs: list[tuple[str, str]], kind: str, depth: int, name: str, parent: Where
) -> tuple[Any, Any]:
    """``<name value="..." id="..."><extension .../></name>`` -> (JSON value, ``_name`` metadata or None)."""
    meta: dict[str, Any] | None = None
    value: Any = _MISSING
    for key, raw in attrs:
        if key == "value":
            convert = _CONVERTERS.get(kind)
            value = raw if convert is None else convert(raw)
        elif key == "id":
            meta = {"id": raw}
        elif not key.startswith("{"):
            raise XmlCodecError(f"unexpected attribute @{key} on primitive {_where((name, parent))}")
    text = item.text
    if text and not text.isspace():
        raise XmlCodecError(f"unexpected text {snippet(text)!r} inside {_where((name, parent))} (use @value)")
    if len(item):
        here = (name, parent)
        extensions: list[dict] = []
        for child in item:
            if child.tag != _EXTENSION_TAG:
                raise XmlCodecError(
                    f"primitive {_where(here)} may only contain <extension>, found {describe(child.tag)}"
                )
            tail = child.tail
            if tail and not tail.isspace():
                raise XmlCodecError(f"unexpected text {snippet(tail)!r} inside {_where(here)}")
            ext: dict[str, Any] = {}
            _read_into(ext, child, "Extension", depth + 1, ("extension", here), True, child.items())
            extensions.append(ext)
        if meta is None:
            meta = {}
        meta["extension"] = extensions
    return value, meta


def _read_contained(item: Any, depth: int, where: Where) -> dict:
    children = item[:]
    if len(children) != 1 or not is_blank(item.text) or not is_blank(children[0].tail):
        raise XmlCodecError(f"{_where(where)} must wrap exactly one inline resource")
    child = children[0]
    tag = child.tag
    if _is_resource_tag(tag):
        return _read_resource(child, depth + 1)
    raise XmlCodecError(f"{_where(where)} holds {describe(tag)}, which is not a DSTU1 resource")

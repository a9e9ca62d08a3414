"""XML -> JSON half of the DSTU1 codec (see :mod:`ktbench.dstu1.xmlcodec` for the mapping rules).

Elements are matched against the DSTU1 table per context; anything the table does not know is
converted by shape, so nothing a sender wrote is silently dropped -- text where DSTU1 allows none and
unknown attributes are errors instead.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from ktbench.dstu1._xml_common import (
    ATOM,
    ATOM_LEN,
    DELETED_ENTRY_TAG,
    FEED_TAG,
    FHIR,
    FHIR_LEN,
    TOTAL_RESULTS_TAG,
    XHTML_DIV_TAG,
    XmlCodecError,
    check_depth,
    describe,
    is_blank,
    snippet,
    xhtml_to_string,
)
from ktbench.dstu1._xml_schema import PRIMITIVE_KINDS, RESOURCE_KIND, RESOURCE_NAMES, TYPES, Field, guess_field
from ktbench.dstu1.constants import ATOM_NS, FHIR_NS

_MISSING: Any = object()
_TEXT_HINT = (
    "DSTU1 XML carries values in @value attributes, never as text "
    "(an abbreviated example with '...' cannot be converted)"
)


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
    for child in el:
        raise XmlCodecError(f"{where} must contain text only, found element {describe(child.tag)}")
    return el.text or ""


def _read_feed(feed: Any, depth: int) -> dict:
    check_depth(depth)
    if not is_blank(feed.text):
        raise XmlCodecError(f"unexpected text {snippet(feed.text)!r} inside <feed>")
    out: dict[str, Any] = {"resourceType": "Bundle"}
    entries: list[dict] = []
    for child in feed:
        if not is_blank(child.tail):
            raise XmlCodecError(f"unexpected text {snippet(child.tail)!r} inside <feed>")
        tag = child.tag
        if tag == TOTAL_RESULTS_TAG:
            out["totalResults"] = _text_of(child, "<os:totalResults>").strip()
            continue
        if tag == DELETED_ENTRY_TAG:
            entries.append(_read_deleted_entry(child))
            continue
        name = tag[ATOM_LEN:] if isinstance(tag, str) and tag.startswith(ATOM) else None
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
        if not is_blank(child.tail):
            raise XmlCodecError(f"unexpected text {snippet(child.tail)!r} inside <entry>")
        tag = child.tag
        name = tag[ATOM_LEN:] if isinstance(tag, str) and tag.startswith(ATOM) else None
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
    children = list(content)
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
    children = list(el)
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
        name = child.tag[ATOM_LEN:] if isinstance(child.tag, str) and child.tag.startswith(ATOM) else None
        if name == "name":
            out["name"] = _text_of(child, "<author><name>")
        elif name in ("uri", "email"):
            out[name] = _text_of(child, f"<author><{name}>").strip()
        else:
            raise XmlCodecError(f"unsupported element {describe(child.tag)} in Atom <author>")
    return out


def _plain_attributes(el: Any) -> dict[str, str]:
    # Namespaced attributes (xml:base, xml:lang) carry no KT1 data.
    return {k: v for k, v in el.attrib.items() if not k.startswith("{")}


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


def _read_resource(el: Any, depth: int) -> dict:
    check_depth(depth)
    resource_type = el.tag[FHIR_LEN:]
    if resource_type == "Binary":
        return _read_binary(el)
    out: dict[str, Any] = {"resourceType": resource_type}
    _read_into(out, el, TYPES.get(resource_type), depth, f"<{resource_type}>")
    return out


def _read_binary(el: Any) -> dict:
    for child in el:
        raise XmlCodecError(f"<Binary> holds base64 text only, found {describe(child.tag)}")
    out: dict[str, Any] = {"resourceType": "Binary"}
    for key, value in _plain_attributes(el).items():
        if key not in ("id", "contentType"):
            raise XmlCodecError(f"unexpected attribute @{key} on <Binary>")
        out[key] = value
    out["content"] = "".join((el.text or "").split())
    return out


def _read_into(
    out: dict[str, Any],
    el: Any,
    fields: Mapping[str, Field] | None,
    depth: int,
    where: str,
    allow_url: bool = False,
) -> None:
    """Fill ``out`` with the attributes and child elements of a complex FHIR element."""
    check_depth(depth)
    for key, value in el.attrib.items():
        if key == "id" or (key == "url" and allow_url):
            out[key] = value
        elif not key.startswith("{"):  # xsi:schemaLocation and friends are ignored
            raise XmlCodecError(f"unexpected attribute @{key} on {where}")
    if not is_blank(el.text):
        raise XmlCodecError(f"unexpected text {snippet(el.text)!r} inside {where}: {_TEXT_HINT}")
    groups: dict[str, list[Any]] = {}
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            raise XmlCodecError(f"unexpected XML node {tag!r} inside {where}")
        if tag.startswith(FHIR):
            name = tag[FHIR_LEN:]
        elif tag == XHTML_DIV_TAG:
            name = "div"
        else:
            raise XmlCodecError(f"unexpected element {describe(tag)} inside {where}")
        if not is_blank(child.tail):
            raise XmlCodecError(f"unexpected text {snippet(child.tail)!r} inside {where}: {_TEXT_HINT}")
        groups.setdefault(name, []).append(child)
    for name, items in groups.items():
        if name in out:
            raise XmlCodecError(f"element <{name}> clashes with an attribute of {where}")
        field = (fields.get(name) if fields is not None else None) or guess_field(name)
        values: list[Any] = []
        metas: list[Any] = []
        for item in items:
            value, meta = _read_value(item, field, depth + 1, where)
            values.append(value)
            metas.append(meta)
        if field.array or len(items) > 1:
            if any(v is not _MISSING for v in values):
                out[name] = [None if v is _MISSING else v for v in values]
            if any(m is not None for m in metas):
                out["_" + name] = metas
        else:
            if values[0] is not _MISSING:
                out[name] = values[0]
            if metas[0] is not None:
                out["_" + name] = metas[0]


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DEC_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


def _convert(raw: str, kind: str) -> Any:
    """Typed JSON value for a primitive; text that does not fit the type stays a string."""
    if kind == "bool":
        if raw in ("true", "1"):
            return True
        if raw in ("false", "0"):
            return False
        return raw
    if kind == "int":
        return int(raw) if _INT_RE.match(raw) else raw
    if kind == "dec":
        if _INT_RE.match(raw):
            return int(raw)
        return float(raw) if _DEC_RE.match(raw) else raw
    return raw


def _read_value(item: Any, field: Field, depth: int, where: str) -> tuple[Any, Any]:
    """JSON value and optional ``_name`` metadata of one child element."""
    if item.tag == XHTML_DIV_TAG:
        return xhtml_to_string(item), None
    name = field.name
    here = f"<{name}> in {where}"
    attrib = item.attrib
    if field.kind == RESOURCE_KIND:
        return _read_contained(item, depth, here), None
    if "value" in attrib:
        return _read_primitive(item, field, depth, here)
    if not len(attrib) and not len(item) and is_blank(item.text):
        return {}, None  # an empty element: keep it visible to the validator
    if field.kind in PRIMITIVE_KINDS and all(
        isinstance(c.tag, str) and c.tag == FHIR + "extension" for c in item
    ):
        return _read_primitive(item, field, depth, here)
    out: dict[str, Any] = {}
    kind = field.kind
    fields = TYPES.get(kind)
    _read_into(out, item, fields, depth, here, allow_url=(kind == "Extension"))
    return out, None


def _read_primitive(item: Any, field: Field, depth: int, where: str) -> tuple[Any, Any]:
    meta: dict[str, Any] = {}
    value: Any = _MISSING
    for key, raw in item.attrib.items():
        if key == "value":
            value = _convert(raw, field.kind)
        elif key == "id":
            meta["id"] = raw
        elif not key.startswith("{"):
            raise XmlCodecError(f"unexpected attribute @{key} on primitive {where}")
    if not is_blank(item.text):
        raise XmlCodecError(f"unexpected text {snippet(item.text)!r} inside {where} (use @value)")
    extensions: list[dict] = []
    for child in item:
        if child.tag != FHIR + "extension":
            raise XmlCodecError(
                f"primitive {where} may only contain <extension>, found {describe(child.tag)}"
            )
        if not is_blank(child.tail):
            raise XmlCodecError(f"unexpected text {snippet(child.tail)!r} inside {where}")
        ext: dict[str, Any] = {}
        _read_into(ext, child, TYPES["Extension"], depth + 1, f"<extension> in {where}", allow_url=True)
        extensions.append(ext)
    if extensions:
        meta["extension"] = extensions
    return value, (meta or None)


def _read_contained(item: Any, depth: int, where: str) -> dict:
    children = list(item)
    if len(children) != 1 or not is_blank(item.text) or not is_blank(children[0].tail):
        raise XmlCodecError(f"{where} must wrap exactly one inline resource")
    child = children[0]
    tag = child.tag
    if _is_resource_tag(tag):
        return _read_resource(child, depth + 1)
    raise XmlCodecError(f"{where} holds {describe(tag)}, which is not a DSTU1 resource")

"""Shared pieces of the DSTU1 XML codec: the error type, namespaces, the hardened parser, XHTML strings.

Kept apart from the reader and the writer so both use the very same parser settings and the very
same XHTML string convention (see :mod:`ktbench.fhir.dstu1.xmlcodec` for the why).
"""

from __future__ import annotations

import re
import threading
from copy import deepcopy
from typing import Any

from lxml import etree

from ktbench.fhir.dstu1.constants import ATOM_NS, FHIR_NS, XHTML_NS

OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"

MAX_DEPTH = 100
"""Deepest nesting accepted in either direction (real KT1 content stays below 20 levels)."""

FHIR = "{" + FHIR_NS + "}"
ATOM = "{" + ATOM_NS + "}"
FHIR_LEN = len(FHIR)
ATOM_LEN = len(ATOM)
FEED_TAG = ATOM + "feed"
XHTML_DIV_TAG = "{" + XHTML_NS + "}div"
TOTAL_RESULTS_TAG = "{" + OPENSEARCH_NS + "}totalResults"
DELETED_ENTRY_TAG = "{" + TOMBSTONE_NS + "}deleted-entry"


class XmlCodecError(ValueError):
    """The input cannot be converted; the message says why in terms a tester can act on."""


def check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise XmlCodecError(f"content is nested deeper than {MAX_DEPTH} levels")


def describe(tag: Any) -> str:
    """``<name> (namespace ns)`` -- namespace mistakes are the most common XML error, so always show it."""
    if not isinstance(tag, str):
        return repr(tag)
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return f"<{name}> (namespace {ns})"
    return f"<{tag}> (no namespace)"


def is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------------------------------
# Hardened parsing

_local = threading.local()  # lxml parsers must not be shared between threads (server, proxy)


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )
    return parser


def parse_bytes(data: bytes, what: str) -> Any:
    """Parse untrusted bytes; DOCTYPEs are refused before (cheap byte scan) and after (any encoding)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmlCodecError(f"{what}: DOCTYPE/ENTITY declarations are not allowed in KT1 XML")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlCodecError(f"{what} is not well-formed: {exc}") from exc
    except Exception as exc:  # lxml may also raise LookupError (unknown encoding), ValueError, ...
        raise XmlCodecError(f"{what} cannot be parsed: {exc}") from exc
    if root is None:  # pragma: no cover - lxml raises for empty input, kept as a guard
        raise XmlCodecError(f"{what} is empty")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlCodecError(f"{what}: DOCTYPE declarations are not allowed in KT1 XML")
    return root


# --------------------------------------------------------------------------------------------------
# XHTML strings (Narrative.div, Atom summary)

_ROOT_DECLARATION = '<div xmlns="' + XHTML_NS + '"'
_DIV_START_RE = re.compile(r"""<div(?P<attrs>(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*/?>""")
_DEFAULT_NS_DECL_RE = re.compile(r"\sxmlns\s*=")


def xhtml_to_string(div: Any) -> str:
    """Serialise an XHTML div the DSTU1-JSON way: no namespace declaration on the root ``<div>``.

    ``deepcopy`` detaches the div so lxml does not copy unrelated ancestor declarations (``xmlns:os``...).
    """
    text = etree.tostring(deepcopy(div), encoding="unicode", with_tail=False)
    if text.startswith(_ROOT_DECLARATION):
        text = "<div" + text[len(_ROOT_DECLARATION) :]
    return text


def checked_xhtml(text: str, where: str) -> str:
    """Validate an XHTML string from JSON; return it ready to splice, root XHTML namespace declared.

    The string is parsed inside a wrapper whose default namespace is XHTML -- exactly the context the
    spliced text will have in the output -- so what is checked is what is written.
    """
    stripped = text.strip()
    try:
        wrapper = parse_bytes(('<kt-x xmlns="' + XHTML_NS + '">' + stripped + "</kt-x>").encode("utf-8"), "XHTML")
    except XmlCodecError as exc:
        raise XmlCodecError(f"{where}: {exc}") from exc
    except UnicodeError as exc:
        raise XmlCodecError(f"{where}: XHTML contains text that cannot be encoded: {exc}") from exc
    children = list(wrapper)
    if (
        len(children) != 1
        or children[0].tag != XHTML_DIV_TAG
        or not is_blank(wrapper.text)
        or not is_blank(children[0].tail)
    ):
        raise XmlCodecError(f"{where}: XHTML must be exactly one <div> element in {XHTML_NS}")
    match = _DIV_START_RE.match(stripped)
    if match and not _DEFAULT_NS_DECL_RE.search(match.group("attrs")):
        stripped = _ROOT_DECLARATION + stripped[4:]
    return stripped

"""Convert Koppeltaal 1.3 (FHIR DSTU1 0.0.82) messages between their JSON and XML forms.

Why: the bench's canonical model is DSTU1 JSON (plain dicts), but KT1 clients may speak XML -- the
Java connector and older Python code send ``application/xml`` Atom feeds and read ``<feed>`` /
``<Conformance>`` replies. The reference server therefore converts XML requests to JSON on the way in
and JSON replies to XML on the way out, and the validator and the proxy normalise captured XML to the
same JSON model so that one set of rules checks both representations.

Forms handled:

* Atom ``<feed>`` (http://www.w3.org/2005/Atom) <-> ``{"resourceType": "Bundle", ...}`` with
  ``title``, ``id``, ``updated``, ``author[]``, ``totalResults`` (a string, from ``os:totalResults``),
  ``link[]``, ``category[]`` and ``entry[]`` (``title``, ``id``, ``updated``, ``published``,
  ``author[]``, ``link[]``, ``category[]``, ``content``, ``summary``; tombstones ``at:deleted-entry``
  become entries with ``deleted``). The bundle always has an ``entry`` list, possibly empty.
* A bare resource in http://hl7.org/fhir <-> a resource dict with ``resourceType``.

Mapping rules (DSTU1): primitive values live in ``@value`` (an empty ``value=""``, as the real server
writes it, stays ``""``); booleans, integers and decimals become JSON booleans/numbers according to the
DSTU1 element table in :mod:`ktbench.fhir.dstu1._xml_schema`; repeating elements are JSON lists even with one
item; the ``id`` attribute of any element (the connector's ``ref001`` idrefs included) is the JSON
``id`` key; ``extension@url`` is the JSON ``url`` key; ``id``/extensions on a primitive use the DSTU1
``_name`` sibling (``"_given": [null, {"extension": [...]}]``); ``text.div`` and an Atom ``summary`` of
``type="xhtml"`` are XHTML in XML and a string in JSON.

XHTML string convention: in JSON the ``div`` is written the DSTU1 way the real KT1 server writes it --
without the (implied) XHTML namespace declaration on the root ``<div>``; declarations on descendants
are kept as they are. ``to_xml`` accepts the string with or without that declaration and copies it
into the XML unchanged (only adding the declaration), so server JSON survives JSON -> XML -> JSON
byte for byte.

Elements the table does not know (other resources, misplaced elements) are converted by shape: a
repeated sibling name becomes a list, an element with ``@value`` a primitive. The codec converts; it
does not validate -- wrong cardinalities or types survive the trip so the validator can report them.

Safety: XML is parsed by a hardened lxml parser (no DTD loading, no entity resolution, no network,
``huge_tree=False``, comments and processing instructions dropped) and any document with a DOCTYPE is
rejected before and after parsing. Every failure -- malformed, truncated, binary, non-UTF-8 without a
declared encoding, unknown root, text where DSTU1 allows none (e.g. the ``...`` of abbreviated
documentation examples), too deep nesting -- is an :class:`XmlCodecError` whose message a tester can act on.

Speed: both directions are tuned because the validator and the KT1 reference server convert every
XML message (see ``benchmarks/xmlcodec.py``): the reader touches each lxml element as few times as
possible, and the writer produces the text directly, falling back to building an lxml tree for input
it cannot prove it serialises exactly like lxml (details in the two modules' docstrings).

Known limits: decimals become Python floats (``1.50`` -> ``1.5``); an XHTML string is re-serialised by
lxml on XML -> JSON (attribute quoting, ``<p></p>`` -> ``<p/>``); comments inside XHTML are dropped; a
single-item list in JSON at a place the schema says is single (or unknown) comes back as a scalar; XML
digital signatures (``ds:Signature``) and relevance scores (``osr:score``) are not supported.
"""

from __future__ import annotations

from typing import Any, Mapping

from ktbench.fhir.dstu1._xml_common import XmlCodecError, parse_bytes
from ktbench.fhir.dstu1._xml_read import read_document
from ktbench.fhir.dstu1._xml_write import _NOT_XML_RE, write_document

__all__ = ["XmlCodecError", "parse_xml", "to_xml"]


def parse_xml(data: bytes) -> dict:
    """Parse DSTU1 XML: an Atom ``<feed>`` becomes a Bundle dict, a FHIR resource a resource dict.

    Raises :class:`XmlCodecError` (never anything else) for unsafe, malformed or unconvertible input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise XmlCodecError(f"XML input must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data or data.isspace():  # same test as `not data.strip()`, without copying the document
        raise XmlCodecError("XML document is empty")
    root = parse_bytes(data, "XML document")
    try:
        return read_document(root)
    except RecursionError as exc:  # pragma: no cover - bounded by MAX_DEPTH and libxml2's own limit
        raise XmlCodecError("XML document is nested too deeply") from exc


def xml_safe(value: Any) -> Any:
    """A copy with every character XML cannot carry (control characters, lone surrogates) replaced by U+FFFD:
    for answers that echo what a client sent, which must still go out in the XML the client asked for."""
    if isinstance(value, str):
        return _NOT_XML_RE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {k: xml_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [xml_safe(v) for v in value]
    return value


def to_xml(obj: dict) -> bytes:
    """Serialise DSTU1 JSON: a Bundle becomes an Atom feed, anything else a FHIR resource.

    Returns UTF-8 bytes with an XML declaration. Raises :class:`XmlCodecError` when the dict has no
    DSTU1 XML form (unknown resourceType, non-string ids, nested lists, malformed XHTML, keys that
    are not XML names, control characters ...).
    """
    if not isinstance(obj, Mapping):
        raise XmlCodecError(f"expected a JSON object (dict), not {type(obj).__name__}")
    try:
        return write_document(obj)
    except XmlCodecError:
        raise
    except RecursionError as exc:  # pragma: no cover - bounded by MAX_DEPTH
        raise XmlCodecError("JSON object is nested too deeply") from exc
    except (ValueError, TypeError) as exc:
        # lxml refuses invalid element names and characters XML cannot carry with ValueError.
        raise XmlCodecError(f"cannot be written as XML: {exc}") from exc

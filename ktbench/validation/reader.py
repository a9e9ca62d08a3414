"""Turn raw bytes into a JSON model, or explain why that is impossible.

Everything a proxy can capture ends up here: empty bodies, binary uploads,
truncated JSON, XML bombs, 50 MB dumps.  None of it may raise; each problem
becomes one `input.unreadable` finding a tester can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_BYTES = 10 * 1024 * 1024


@dataclass(slots=True)
class Parsed:
    obj: dict | None
    format: str | None  # json | xml
    problem: str | None = None


def sniff_format(data: bytes, content_type: str | None) -> str | None:
    ct = (content_type or "").lower()
    if "json" in ct:
        return "json"
    if "xml" in ct:
        return "xml"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return "json"
    if head[:1] == b"<":
        return "xml"
    return None


def _looks_binary(data: bytes) -> bool:
    sample = data[:4096]
    return b"\x00" in sample


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def read(data: bytes, content_type: str | None = None) -> Parsed:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return Parsed(None, None, f"input must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_BYTES:
        return Parsed(None, None, f"body too large: {len(data):,} bytes (limit {MAX_BYTES:,}); not validated")
    if not data.strip():
        return Parsed(None, None, "empty body: nothing to validate")
    fmt = sniff_format(data, content_type)
    if _looks_binary(data) and fmt != "xml":
        return Parsed(None, fmt, "binary data (contains NUL bytes), not a FHIR JSON or XML document")
    if fmt is None:
        return Parsed(None, None, "neither JSON nor XML (the body starts with neither '{' nor '<')")
    if fmt == "json":
        return _read_json(data)
    return _read_xml(data)


def _read_json(data: bytes) -> Parsed:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Parsed(None, "json", f"not UTF-8 text (byte {exc.start}): FHIR JSON must be UTF-8")
    if text.lstrip()[:1] not in ("{", "["):
        return Parsed(None, "json", "declared as JSON but the body does not start with '{'")
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return Parsed(None, "json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} (truncated body?)")
    except RecursionError:
        return Parsed(None, "json", "JSON nested too deeply to read; not validated")
    except ValueError as exc:
        return Parsed(None, "json", f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return Parsed(None, "json", f"a FHIR document is a JSON object, got a JSON {type(obj).__name__}")
    return Parsed(obj, "json")


def _read_xml(data: bytes) -> Parsed:
    try:
        from ktbench.fhir.dstu1.xmlcodec import XmlCodecError, parse_xml
    except ImportError:  # pragma: no cover - the codec ships with ktbench
        return Parsed(None, "xml", "XML support is not available (ktbench.fhir.dstu1.xmlcodec missing)")
    try:
        obj = parse_xml(data)
    except XmlCodecError as exc:
        return Parsed(None, "xml", f"unreadable XML: {exc}")
    except Exception as exc:  # the codec promises XmlCodecError only; never let a parser bug escape
        return Parsed(None, "xml", f"unreadable XML ({type(exc).__name__}): {exc}")
    return Parsed(obj, "xml")

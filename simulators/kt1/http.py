"""Request/response plumbing of the KT1 server: format negotiation, body limits, authentication.

KT1 speaks JSON and DSTU1 XML (Atom for bundles) on every endpoint, chosen by
`Accept`/`Content-Type` (`_format` also works).  JSON answers are always
`application/json; charset=utf-8` because the Python connector refuses
anything else (`application/fhir+json` included).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ktbench.fhir.dstu1.constants import JSON_CONTENT_TYPE, XML_CONTENT_TYPE
from simulators.common.bodies import read_limited
from simulators.kt1.context import Kt1Context
from simulators.kt1.errors import FhirError, bad_request

_XML_TYPES = ("application/xml", "text/xml", "application/xml+fhir", "application/atom+xml",
              "application/fhir+xml")


def wants_xml(request: Request) -> bool:
    fmt = request.query_params.get("_format", "").lower()
    if fmt:
        return "xml" in fmt
    accept = request.headers.get("accept", "").lower()
    xml_at = min((accept.find(t) for t in _XML_TYPES if t in accept), default=-1)
    json_at = min((accept.find(t) for t in ("json",) if t in accept), default=-1)
    if xml_at < 0 and json_at < 0:
        # no Accept, or one without a preference (`*/*`, as curl and httpx send): answer in the
        # format of the request body, so an XML POST gets an XML reply
        return _is_xml_type(request.headers.get("content-type", ""))
    if xml_at < 0:
        return False
    return json_at < 0 or xml_at < json_at


def _is_xml_type(content_type: str) -> bool:
    return any(t in content_type.lower() for t in _XML_TYPES)


def fhir_response(ctx: Kt1Context, request: Request, body: dict | None, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """Serialise `body` in the negotiated format (JSON also for empty bodies)."""
    headers = dict(headers or {})
    if wants_xml(request) and not ctx.fault("xml-ignored") and body is not None:
        from ktbench.fhir.dstu1.xmlcodec import XmlCodecError, to_xml, xml_safe
        headers["Content-Type"] = XML_CONTENT_TYPE
        try:
            payload = to_xml(body)
        except XmlCodecError:  # an answer echoing characters XML cannot carry (a client's control characters)
            payload = to_xml(xml_safe(body))
        return Response(payload, status_code=status, headers=headers)
    content_type = "application/fhir+json" if ctx.fault("wrong-content-type") else JSON_CONTENT_TYPE
    headers["Content-Type"] = content_type
    payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Response(payload, status_code=status, headers=headers)


def error_response(ctx: Kt1Context, request: Request, error: FhirError) -> Response:
    if ctx.fault("errors-as-text") and not wants_xml(request):
        text = "; ".join(issue.details for issue in error.issues).encode("utf-8")
        return Response(text, status_code=error.status, headers={**error.headers, "Content-Type": "text/plain"})
    return fhir_response(ctx, request, error.outcome(), error.status, error.headers)


async def read_body(ctx: Kt1Context, request: Request) -> dict[str, Any]:
    """The request body as a JSON object, whether it came as JSON or XML."""
    limit = ctx.settings.max_body_bytes
    raw = await read_limited(request, limit,
                             lambda: FhirError.one(413, f"Request body larger than {limit} bytes", "too-costly"))
    if not raw.strip():
        raise bad_request("Request body is empty", "structure")
    content_type = request.headers.get("content-type", "")
    looks_xml = raw.lstrip()[:1] == b"<"
    walk = True
    if _is_xml_type(content_type) or (looks_xml and "json" not in content_type.lower()):
        from ktbench.fhir.dstu1.xmlcodec import XmlCodecError, parse_xml
        try:
            obj = parse_xml(raw)
        except XmlCodecError as exc:
            raise bad_request(f"Malformed XML: {exc}", "structure") from None
    else:
        walk = _json_may_be_refused(raw)
        try:
            obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except RecursionError:
            raise bad_request(f"JSON nested deeper than {MAX_DEPTH} levels", "structure") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad_request(f"Malformed JSON: {exc}", "structure") from None
    if not isinstance(obj, dict):
        raise bad_request("Request body must be a JSON object", "structure")
    if walk:
        find_empty_array_element(obj)
    return obj


MAX_ID = 2**63 - 1  # SQLite INTEGER range; a larger number cannot name anything we store


def whole_number(raw: str | None) -> int | None:
    """`raw` as a non-negative ASCII whole number within SQLite's range, else None (`isdigit` alone
    accepts `²` and numbers SQLite cannot bind)."""
    if raw is None:
        return None
    text = raw.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


MAX_DEPTH = 100  # real KT1 messages nest about 15 levels; far deeper is an attack or garbage


# An array member that is `null`, `{}` or `""` follows `[` or `,` in the JSON text (inside strings these
# characters are escaped or harmless: a match there only costs the exact walk).
_EMPTY_MEMBER = re.compile(rb'[\[,][ \t\n\r]*(?:null|""|\{[ \t\n\r]*\})')
_EMPTY_OBJECT = re.compile(rb'\{[ \t\n\r]*\}')
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _json_may_be_refused(raw: bytes) -> bool:
    """False when the (already parsed) JSON text can hold neither an empty array element nor nesting deeper
    than MAX_DEPTH, so `find_empty_array_element` could not refuse it; scans at C speed instead of walking."""
    # substring tests first: several times faster than the regex, which only runs when one of them hits
    if (b"null" in raw or b'""' in raw or _EMPTY_OBJECT.search(raw)) and _EMPTY_MEMBER.search(raw):
        return True
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # a value MAX_DEPTH + 1 levels down needs that many containers around it
    depth = deepest = 0
    for char in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest > MAX_DEPTH


def find_empty_array_element(obj: Any) -> None:
    """Refuse `null`, `{}` or `""` inside arrays (the real server answers those with a 500, we with a 400)
    and absurd nesting.  Iterative, so no input can exhaust the Python stack."""
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise bad_request(f"JSON nested deeper than {MAX_DEPTH} levels", "structure")
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if item is None or item == {} or item == "":
                    raise bad_request(f"Empty array element at {path}[{i}]", "structure")
            for i in range(len(value) - 1, -1, -1):
                stack.append((value[i], f"{path}[{i}]", depth + 1))

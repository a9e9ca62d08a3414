"""Request/response plumbing of the FHIR endpoints: media types, body limits, JSON parsing, Bearer tokens.

KT2 speaks FHIR R4 JSON only (TOP-KT-002 eis 6-8).  A request body must be labelled `application/fhir+json`
or `application/json` (parameters such as `charset=utf-8` and `fhirVersion=4.0` are allowed, other charsets
and FHIR versions are not: 415); `Accept` must allow JSON (406 otherwise).  Every answer is
`application/fhir+json; charset=utf-8`.  Parsing is defensive: a body over the limit is a 413, bytes that
are not UTF-8 or not JSON a 400, nesting deeper than MAX_DEPTH a 400, and nothing reaches the store
half-parsed.
"""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulators.common.bodies import read_limited
from simulators.kt2.errors import FhirError

FHIR_JSON = "application/fhir+json; charset=utf-8"
MAX_DEPTH = 64
_JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_ACCEPTABLE = _JSON_TYPES | {"*/*", "application/*", "text/json"}
_FHIR_VERSIONS = frozenset({"4.0", "4.0.1"})
_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})


def media_params(value: str) -> tuple[str, dict[str, str]]:
    """`type/subtype; a=b` -> ("type/subtype", {"a": "b"}) with names lower-cased."""
    kind, *rest = value.split(";")
    params = {}
    for part in rest:
        name, _, val = part.partition("=")
        params[name.strip().lower()] = val.strip().strip('"')
    return kind.strip().lower(), params


_ACCEPT_OK: dict[str, bool] = {}


def check_accept(request: Request) -> None:
    """406 unless the client can take JSON (`_format` wins over `Accept`, as FHIR says)."""
    if b"_format" not in request.scope.get("query_string", b""):
        accept = request.headers.get("accept") or ""
        if _ACCEPT_OK.get(accept):
            return
        _check_accept(request)
        if len(_ACCEPT_OK) < 1000:
            _ACCEPT_OK[accept] = True
        return
    _check_accept(request)


def _check_accept(request: Request) -> None:
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in _FORMATS:
            raise FhirError.one(406, f"_format={fmt!r} is not supported: this server speaks FHIR JSON only",
                                "not-supported")
        return
    accept = request.headers.get("accept")
    if not accept or not accept.strip():
        return
    for item in accept.split(","):
        kind, params = media_params(item)
        if params.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        version = params.get("fhirversion")
        if kind in _ACCEPTABLE and (version is None or version in _FHIR_VERSIONS):
            return
    raise FhirError.one(406, f"Accept: {accept[:200]!r} allows no FHIR JSON (application/fhir+json, "
                             "fhirVersion 4.0)", "not-supported")


def check_content_type(request: Request) -> None:
    value = request.headers.get("content-type")
    if not value:
        raise FhirError.one(415, "Content-Type is missing: send application/fhir+json", "not-supported")
    kind, params = media_params(value)
    if kind not in _JSON_TYPES:
        raise FhirError.one(415, f"Content-Type {kind!r} is not supported: send application/fhir+json",
                            "not-supported")
    charset = params.get("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise FhirError.one(415, f"charset {charset!r} is not supported: FHIR JSON is UTF-8", "not-supported")
    version = params.get("fhirversion")
    if version is not None and version not in _FHIR_VERSIONS:
        raise FhirError.one(415, f"fhirVersion {version!r} is not supported: this server speaks 4.0 (R4)",
                            "not-supported")


async def read_raw(request: Request, limit: int) -> bytes:
    return await read_limited(request, limit,
                              lambda: FhirError.one(413, f"Request body larger than {limit} bytes", "too-costly"))


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what is wrong with it."""
    if not raw.strip():
        raise FhirError.one(400, "Request body is empty", "structure")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirError.one(400, f"Request body is not UTF-8 (byte {exc.start})", "structure") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(text):
        raise FhirError.one(400, f"JSON nested deeper than {MAX_DEPTH} levels", "structure")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise FhirError.one(400, f"JSON nested deeper than {MAX_DEPTH} levels", "structure") from None
    except ValueError as exc:
        raise FhirError.one(400, f"Malformed JSON: {exc}", "structure") from None
    if not isinstance(obj, dict):
        raise FhirError.one(400, f"Request body must be a JSON object, not {type(obj).__name__}", "structure")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fhir_response(body: bytes | dict | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = b"" if body is None else body if isinstance(body, bytes) else dumps(body)
    all_headers = {"content-type": FHIR_JSON}
    if headers:
        all_headers.update(headers)
    return Response(payload, status_code=status, headers=all_headers)


def error_response(error: FhirError) -> Response:
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="koppeltaal"')
    return fhir_response(error.outcome(), error.status, headers)


_LAST_DATE: tuple[int | None, str] = (None, "")


def http_date(ms: int) -> str:
    """An HTTP date; the last second's text is reused (one tuple: threads share it, see instants.instant)."""
    global _LAST_DATE
    second = ms // 1000
    cached_second, text = _LAST_DATE
    if cached_second != second:
        text = formatdate(second, usegmt=True)
        _LAST_DATE = (second, text)
    return text


_ROOTS: dict[tuple, str] = {}


def request_root(request: Request) -> str:
    """scheme://host[:port]/root_path of a request (what `request.base_url` gives, at a fraction of its cost)."""
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), None)
    key = (scope.get("scheme"), host, scope.get("root_path", ""), scope.get("server"))
    root = _ROOTS.get(key)
    if root is None:
        root = str(request.base_url).rstrip("/")
        if len(_ROOTS) < 1000:
            _ROOTS[key] = root
    return root


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise FhirError.one(401, "An access token is required (Authorization: Bearer <token>)", "login")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise FhirError.one(401, "Authorization must be 'Bearer <access token>'", "login",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_request"'})
    return token

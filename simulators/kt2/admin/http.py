"""HTTP plumbing shared by the JSON API and the web page: method dispatch, body limits, JSON and form parsing.

Every route is a `Dispatch`: it answers every method itself (405 with `Allow` for the wrong one), so nothing
falls through to Starlette's plain-text answers, and it turns an `AdminError` into the door's own rendering
(JSON or HTML) and any other exception into a logged 500 without internals.  Bodies are capped at 64 KiB
(admin forms are small); JSON must be UTF-8 and an object, and strings with lone surrogates are refused
before they reach SQLite.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from simulators.common.bodies import read_limited
from simulators.kt2.admin.errors import AdminError, bad_request, invalid

log = logging.getLogger("ktbench.kt2.admin")
MAX_BODY = 64 * 1024
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
Handler = Callable[[Request], Awaitable[Response]]
Renderer = Callable[[Request, AdminError], Response]
M = TypeVar("M", bound=BaseModel)
_NUMBER = re.compile(r"^[0-9]{1,9}$")


class Dispatch:
    """An ASGI endpoint for one path: `Dispatch(render_error, GET=handler, POST=handler)`."""

    def __init__(self, render_error: Renderer, **handlers: Handler) -> None:
        self.render_error = render_error
        self.handlers = dict(handlers)
        if "GET" in self.handlers:
            self.handlers.setdefault("HEAD", self.handlers["GET"])
        self.allow = ", ".join(sorted(self.handlers))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        handler = self.handlers.get(request.method)
        try:
            if handler is None:
                raise AdminError(405, "method_not_allowed", f"{request.method} is not allowed here",
                                 {"Allow": self.allow})
            response = await handler(request)
        except AdminError as error:
            response = self.render_error(request, error)
            response.headers.update(error.headers)
        except ClientDisconnect:  # the client left while sending its body: nothing was stored
            response = self.render_error(request, AdminError(400, "incomplete_request",
                                                             "the request body was not received completely"))
        except Exception:  # a bug of ours: log it, answer without internals
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = self.render_error(request, AdminError(500, "server_error", "internal error"))
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        await response(scope, receive, send)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False).encode("utf-8"), status_code=status,
                    headers=headers, media_type="application/json")


def json_error(request: Request, error: AdminError) -> Response:
    return json_response(error.to_json(), error.status)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    return await read_limited(
        request, limit, lambda: AdminError(413, "body_too_large", f"the request body is larger than {limit} bytes"))


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request) -> dict[str, Any]:
    media = _media_type(request)
    if media and media != "application/json" and not media.endswith("+json"):
        raise AdminError(415, "unsupported_media_type", "send the body as application/json")
    body = await read_body(request)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("invalid_json", "the body is not UTF-8") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise bad_request("invalid_json", "the body is nested too deeply") from None
    except ValueError as exc:
        raise bad_request("invalid_json", f"the body is not JSON ({exc.msg} at position {exc.pos})"
                          if isinstance(exc, json.JSONDecodeError) else "the body is not JSON") from None
    if not isinstance(data, dict):
        raise invalid("the body must be a JSON object")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        raise bad_request("invalid_json", "the body contains strings that are not valid Unicode") from None
    return data


async def form_body(request: Request) -> dict[str, list[str]]:
    """An `application/x-www-form-urlencoded` body as name -> values (UTF-8, strictly)."""
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise AdminError(415, "unsupported_media_type", "send the form as application/x-www-form-urlencoded")
    body = await read_body(request)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise bad_request("invalid_form", "the form is not valid UTF-8 form data") from None
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


class Body(BaseModel):
    """Request-body schemas: strict types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def parse_model[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    """The validated body or 422 naming each field and problem (never the submitted value)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise invalid("; ".join(problems)) from None


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _NUMBER.match(raw) or not low <= int(raw) <= high:
        raise invalid(f"query parameter {name} must be a whole number from {low} to {high}")
    return int(raw)

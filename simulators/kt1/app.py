"""The KT1.3 reference server as a Starlette ASGI app.

Routes are thin: authenticate, read the body, call the service module
(mailbox, messages, activities, oauth), and serialise.  Every error is an
OperationOutcome in the negotiated format; nothing escapes as a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ktbench.fhir.dstu1.constants import JSON_CONTENT_TYPE, SUPPORTED_RESOURCE_TYPES
from simulators.kt1 import activities, mailbox, messages, metadata, oauth
from simulators.kt1.authn import authenticate, basic_credentials
from simulators.kt1.context import Kt1Context
from simulators.kt1.data import ServerData, load_data
from simulators.kt1.errors import FhirError, bad_request, not_found
from simulators.kt1.faults import check_faults
from simulators.kt1.http import error_response, fhir_response, read_body
from simulators.kt1.store import Store
from simulators.kt1.webhook import WebhookNotifier

log = logging.getLogger("ktbench.kt1")
# FHIR-base paths that are endpoints but not resource types: a wrong method there is a 405, not a 404
_OTHER_ENDPOINTS = ("Mailbox", "metadata")
Handler = Callable[[Request], Awaitable[Response]]


def create_app(data: ServerData | str | Path | None = None, db: str = ":memory:", faults=(),
               public_base: str | None = None, claim_timeout: float | None = None) -> Starlette:
    """Build a server.  `data` is a ServerData, a data file path, or None for the shipped default."""
    server_data = data if isinstance(data, ServerData) else load_data(data)
    if claim_timeout is not None:
        from dataclasses import replace
        server_data = replace(server_data, settings=replace(server_data.settings,
                                                            claim_timeout_seconds=float(claim_timeout)))
    ctx = Kt1Context(server_data, Store(db), check_faults(list(faults)), public_base)
    activities.seed(ctx)
    notifier = WebhookNotifier(ctx)

    def endpoint(fn: Callable[[Request, str], Awaitable[Response]]) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await fn(request, ctx.base(str(request.base_url)))
            except FhirError as error:
                return error_response(ctx, request, error)
            except Exception:  # a bug of ours: log it, answer without internals
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                return error_response(ctx, request, FhirError.one(500, "Internal server error", "exception"))
        return wrapped

    async def get_metadata(request: Request, base: str) -> Response:
        return fhir_response(ctx, request, metadata.conformance(base, ctx.instant()))

    async def post_mailbox(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request)
        body = await read_body(ctx, request)
        reply, notifications = mailbox.accept(ctx, caller, body, base)
        notifier.schedule(notifications)
        return fhir_response(ctx, request, reply)

    async def search_messages(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request)
        return fhir_response(ctx, request, messages.search(ctx, caller, request.query_params.multi_items(), base))

    async def message_item(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request)
        tail = request.path_params["tail"]
        if request.method == "PUT":
            body = await read_body(ctx, request)
            return fhir_response(ctx, request, messages.acknowledge(ctx, caller, tail, body, base))
        return fhir_response(ctx, request, messages.by_id(ctx, caller, tail, base))

    async def search_other(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request)
        return fhir_response(ctx, request, activities.search(ctx, caller, request.query_params.multi_items(), base))

    async def create_other(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request, allow_bearer=False)
        body = await read_body(ctx, request)
        content, headers = activities.create(ctx, caller, body, base)
        return fhir_response(ctx, request, content, 201, headers)

    async def other_item(request: Request, base: str) -> Response:
        tail = request.path_params["tail"]
        if request.method == "PUT":
            caller = authenticate(ctx, request, allow_bearer=False)
            body = await read_body(ctx, request)
            content, headers = activities.update(ctx, caller, tail, body, base)
            return fhir_response(ctx, request, content, 200, headers)
        caller = authenticate(ctx, request)
        return fhir_response(ctx, request, activities.read(ctx, caller, tail))

    async def unsupported_type(request: Request, base: str) -> Response:
        rtype = request.path_params["rtype"]
        if rtype in SUPPORTED_RESOURCE_TYPES or rtype in _OTHER_ENDPOINTS:
            raise FhirError.one(405, f"{request.method} is not supported on {rtype}", "not-supported")
        raise not_found(f"The resource type '{rtype}' is not supported")

    async def launch(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request, allow_bearer=False)
        location = oauth.launch(ctx, caller, dict(request.query_params), base)
        return RedirectResponse(location, status_code=302)

    async def mobile_launch(request: Request, base: str) -> Response:
        caller = authenticate(ctx, request, allow_bearer=False)
        return _json(oauth.mobile_launch(ctx, caller, dict(request.query_params)))

    async def authorize(request: Request, base: str) -> Response:
        location, body = oauth.authorize(ctx, dict(request.query_params))
        if location is not None:
            return RedirectResponse(location, status_code=302)
        return _json(body)

    async def token(request: Request, base: str) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await _form(ctx, request))
        body = oauth.token(ctx, params, basic_credentials(request))
        return _json(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _json(body: dict, headers: dict[str, str] | None = None) -> Response:
        content_type = "application/fhir+json" if ctx.fault("wrong-content-type") else JSON_CONTENT_TYPE
        return JSONResponse(body, headers={**(headers or {}), "Content-Type": content_type})

    routes = [
        Route("/FHIR/Koppeltaal/metadata", endpoint(get_metadata), methods=["GET"]),
        Route("/FHIR/Koppeltaal/Mailbox", endpoint(post_mailbox), methods=["POST"]),
        Route("/FHIR/Koppeltaal/MessageHeader/_search", endpoint(search_messages), methods=["GET"]),
        Route("/FHIR/Koppeltaal/MessageHeader", endpoint(search_messages), methods=["GET"]),
        Route("/FHIR/Koppeltaal/MessageHeader/{tail:path}", endpoint(message_item), methods=["GET", "PUT"]),
        Route("/FHIR/Koppeltaal/Other/_search", endpoint(search_other), methods=["GET"]),
        Route("/FHIR/Koppeltaal/Other", endpoint(create_other), methods=["POST"]),
        Route("/FHIR/Koppeltaal/Other/{tail:path}", endpoint(other_item), methods=["GET", "PUT"]),
        Route("/FHIR/Koppeltaal/{rtype}", endpoint(unsupported_type), methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/FHIR/Koppeltaal/{rtype}/{rest:path}", endpoint(unsupported_type),
              methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/OAuth2/Koppeltaal/Launch", endpoint(launch), methods=["GET"]),
        Route("/OAuth2/Koppeltaal/MobileLaunch", endpoint(mobile_launch), methods=["GET"]),
        Route("/OAuth2/Koppeltaal/Authorize", endpoint(authorize), methods=["GET"]),
        Route("/OAuth2/Koppeltaal/Token", endpoint(token), methods=["GET", "POST"]),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
        detail = {404: f"No endpoint at {request.url.path}",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return error_response(ctx, request, FhirError.one(exc.status_code, detail, code))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return error_response(ctx, request, FhirError.one(500, "Internal server error", "exception"))

    app = Starlette(
        routes=routes,
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"],
                               expose_headers=["Content-Location", "Location"])],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.ctx = ctx
    app.state.notifier = notifier
    return app


async def _form(ctx: Kt1Context, request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > ctx.settings.max_body_bytes:
        raise FhirError.one(413, "Request body too large", "too-costly")
    if not raw:
        return {}
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type:
        raise FhirError.one(415, "The token endpoint takes application/x-www-form-urlencoded", "not-supported")
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("Malformed form body", "structure") from None

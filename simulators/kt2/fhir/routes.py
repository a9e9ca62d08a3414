"""The FHIR REST endpoints of every domain: dispatch, authentication, AuditEvents and notifications.

One route takes everything under `{root}/api/v1/{domain}/fhir/r4/`; dispatching here (instead of a regex
route per interaction) gives each wrong path its exact answer: unknown type 404, wrong method 405,
operations and whole-system interactions 405 (not part of KT2, TOP-KT-002 eis 10).  Each interaction
writes one AuditEvent, also when refused, with outcome 4 (4xx) or 8 (5xx).
"""

from __future__ import annotations

import functools
import logging
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from simulators.kt2 import urls
from simulators.kt2.context import Kt2Context
from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.errors import FhirError
from simulators.kt2.fhir import rules
from simulators.kt2.fhir.audit import AuditLog, rest_event
from simulators.kt2.fhir.capability import capability_statement
from simulators.kt2.fhir.common import Rest, Result, parse_prefer
from simulators.kt2.fhir.reads import Reader
from simulators.kt2.fhir.subscriptions import Notifier, Trigger
from simulators.kt2.fhir.writes import Writer
from simulators.kt2.http import (
    bearer_token,
    check_accept,
    check_content_type,
    error_response,
    fhir_response,
    media_params,
    parse_json_object,
    read_raw,
    request_root,
)
from simulators.kt2.trace import trace_of

log = logging.getLogger("ktbench.kt2.fhir")


@functools.lru_cache(maxsize=64)
def site_of(root: str) -> str:
    """AuditEvent source.site: the host name of the root URL, without scheme or port."""
    return urlsplit(root).hostname or "ktbench"


def observer_device(domain: str) -> str:
    return f"Device/ktbench-voorziening-{domain}"


class FhirEndpoints:
    def __init__(self, ctx: Kt2Context, reader: Reader, writer: Writer, audit: AuditLog, notifier: Notifier) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.audit = audit
        self.notifier = notifier
        self.domains = {d.name for d in ctx.data.domains}

    async def handle(self, request: Request) -> Response:
        ctx = self.ctx
        domain = request.path_params["domain"]
        if domain not in self.domains:
            return error_response(FhirError.one(404, f"Unknown domain {domain[:64]!r}", "not-found"))
        root = ctx.root(request_root(request))
        trace = trace_of(request)
        rest = Rest(domain, root, urls.fhir_base(root, domain), None, trace, parse_prefer(request.headers.get("prefer")))
        segments = [s for s in request.path_params.get("path", "").split("/")]
        if segments and segments[-1] == "":
            segments.pop()
        interaction = _interaction(request.method, segments)
        try:
            result = await self._dispatch(request, rest, segments)
        except FhirError as error:
            if error.status == 422 and ctx.fault("validation-error-500"):
                error = FhirError.one(500, "Internal server error", "exception")
            self._audit(rest, interaction, error.status, [], segments, error.issues[0].diagnostics if error.issues
                        else None)
            return error_response(error)
        except ClientDisconnect:  # the client left while sending its body: nobody to answer, nothing stored
            self._audit(rest, interaction, 400, [], segments, "The client disconnected before its request was read")
            return error_response(FhirError.one(400, "The request body was not received completely", "incomplete"))
        except Exception:  # a bug of ours: logged, answered without internals
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            self._audit(rest, interaction, 500, [], segments, "Internal server error")
            return error_response(FhirError.one(500, "Internal server error", "exception"))
        self._audit(rest, result.interaction or interaction, result.status, result.entities, segments, None)
        return fhir_response(result.body, result.status, result.headers)

    def _audit(self, rest: Rest, interaction: str | None, status: int, entities: list[dict], segments: list[str],
               diagnostics: str | None) -> None:
        if interaction is None or self.ctx.fault("audit-event-missing"):
            return
        if not entities and segments and segments[0] in RESOURCE_TYPES:
            entities = [{"type": {"system": "http://hl7.org/fhir/resource-types", "code": segments[0],
                                  "display": segments[0]}}]
        event = rest_event(interaction=interaction, requester=rest.device, status=status, entities=entities,
                           site=site_of(rest.root), observer=observer_device(rest.domain),
                           trace=rest.trace, recorded=self.ctx.clock.instant(), diagnostics=diagnostics)
        self.audit.record(rest.domain, event)

    def _authenticate(self, request: Request, rest: Rest) -> None:
        rest.caller = self.ctx.tokens.caller_for(rest.domain, bearer_token(request), root=rest.root)

    async def _body(self, request: Request) -> dict:
        check_content_type(request)
        return parse_json_object(await read_raw(request, self.ctx.settings.max_body_bytes))

    async def _dispatch(self, request: Request, rest: Rest, segments: list[str]) -> Result:
        method = "GET" if request.method == "HEAD" else request.method
        check_accept(request)
        if not segments:
            raise FhirError.one(405, "Whole-system interactions (batch, transaction, system search and history) "
                                     "are not supported in Koppeltaal", "not-supported")
        head = segments[0]
        if head == "metadata" and len(segments) == 1:
            if method != "GET":
                raise FhirError.one(405, f"{method} is not allowed on metadata", "not-supported")
            body = capability_statement(rest.root, rest.domain, self.ctx.clock.instant(),
                                        not self.ctx.fault("capability-without-oauth-uris"))
            return Result(200, body, {}, "capabilities",
                          [{"type": {"system": "http://hl7.org/fhir/resource-types", "code": "CapabilityStatement",
                                     "display": "CapabilityStatement"}}])
        if head not in RESOURCE_TYPES:
            if head.startswith(("$", "_")):
                raise FhirError.one(405, f"{head[:60]!r} is not supported on the FHIR base", "not-supported")
            raise FhirError.one(404, f"Unknown resource type {head[:64]!r}: this voorziening serves "
                                     f"{', '.join(RESOURCE_TYPES)}", "not-supported")
        rtype = head
        if len(segments) == 1:
            if method == "GET":
                self._authenticate(request, rest)
                return self.reader.search(rest, rtype, request.query_params.multi_items(), request.url.query)
            if method == "POST":
                self._authenticate(request, rest)
                result, stored = self.writer.create(rest, rtype, await self._body(request))
                self._changed(rest, stored)
                return result
            raise _not_allowed(method, rtype, "GET, POST")
        second = segments[1]
        if len(segments) == 2 and second == "_search":
            if method not in ("GET", "POST"):
                raise _not_allowed(method, f"{rtype}/_search", "GET, POST")
            self._authenticate(request, rest)
            items = request.query_params.multi_items()
            if method == "POST":
                items = [*items, *(await self._form(request))]
            return self.reader.search(rest, rtype, items, "&".join(f"{k}={v}" for k, v in items))
        if len(segments) == 2 and second == "_history":
            if method != "GET":
                raise _not_allowed(method, f"{rtype}/_history", "GET")
            self._authenticate(request, rest)
            return self.reader.history(rest, rtype, None, request.query_params.multi_items())
        if second.startswith("$"):
            raise FhirError.one(405, f"Operation {second[:60]!r} is not supported", "not-supported")
        if len(segments) == 2:
            return await self._instance(request, rest, rtype, second)
        if segments[2] == "_history" and len(segments) in (3, 4):
            if method != "GET":
                raise _not_allowed(method, "/".join(segments[:3]), "GET")
            self._authenticate(request, rest)
            if len(segments) == 3:
                return self.reader.history(rest, rtype, second, request.query_params.multi_items())
            return self.reader.vread(rest, rtype, second, segments[3])
        raise FhirError.one(404, f"No endpoint at {request.url.path[:200]}", "not-found")

    async def _instance(self, request: Request, rest: Rest, rtype: str, rid: str) -> Result:
        method = "GET" if request.method == "HEAD" else request.method
        if method == "GET":
            self._authenticate(request, rest)
            return self.reader.read(rest, rtype, rid)
        if method == "PUT":
            self._authenticate(request, rest)
            result, stored = self.writer.update(rest, rtype, rid, await self._body(request),
                                                request.headers.get("if-match"))
            self._changed(rest, stored)
            return result
        if method == "DELETE":
            self._authenticate(request, rest)
            cascade = request.query_params.get("_cascade")
            if cascade not in (None, "delete"):
                raise FhirError.one(400, f"_cascade must be 'delete', not {cascade[:40]!r}", "value")
            result = self.writer.delete(rest, rtype, rid, request.headers.get("if-match"), cascade == "delete")
            if rtype == "Subscription":
                self.notifier.forget(rest.domain)
            return result
        raise _not_allowed(method, f"{rtype}/{rid}", "GET, PUT, DELETE")

    async def _form(self, request: Request) -> list[tuple[str, str]]:
        kind, _ = media_params(request.headers.get("content-type", ""))
        raw = await read_raw(request, self.ctx.settings.max_body_bytes)
        if not raw:
            return []
        if kind != "application/x-www-form-urlencoded":
            raise FhirError.one(415, "POST _search takes application/x-www-form-urlencoded", "not-supported")
        try:
            return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise FhirError.one(400, "Malformed form body", "structure") from None

    def _changed(self, rest: Rest, stored: dict) -> None:
        rtype, rid = stored["resourceType"], stored["id"]
        if rtype == "Subscription":
            if rules.origin_reference(stored) in (None, rest.device):
                # the subscriber itself wrote it: notifications are narrowed by the scope it has now
                self.notifier.owner_changed(rest.domain, rid, rest.caller.client_id, rest.caller.scopes.text)
            else:
                # another client changed it (a Beheerportaal may): it still notifies its subscriber, under the
                # subscriber's scope, not the broader one of whoever edited it
                self.notifier.forget(rest.domain)
        self.notifier.changed(Trigger(rest.domain, rtype, rid, int(stored["meta"]["versionId"]), rest.device,
                                      rest.trace, site_of(rest.root)))


def _not_allowed(method: str, where: str, allow: str) -> FhirError:
    return FhirError.one(405, f"{method} is not allowed on {where[:100]}", "not-supported", headers={"Allow": allow})


def _interaction(method: str, segments: list[str]) -> str | None:
    """The restful-interaction code of a request, for its AuditEvent (None: not a FHIR interaction)."""
    method = "GET" if method == "HEAD" else method
    if not segments:
        return None
    if segments == ["metadata"]:
        return "capabilities"
    if segments[0] not in RESOURCE_TYPES:
        return None
    if len(segments) == 1:
        return {"GET": "search-type", "POST": "create"}.get(method)
    if segments[1] == "_search":
        return "search-type"
    if segments[1] == "_history":
        return "history-type"
    if len(segments) == 2:
        return {"GET": "read", "PUT": "update", "DELETE": "delete"}.get(method)
    if len(segments) == 3:
        return "history-instance"
    return "vread"

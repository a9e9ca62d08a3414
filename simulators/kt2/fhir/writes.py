"""create, update (PUT) and delete, with versioning, resource-origin, permissions and write-time rules.

Choices where the spec leaves room (README "Status codes"): an `id` in a POST body is ignored and replaced
by a server UUID (FHIR's own rule); PUT to an unknown id is a 404 (clients may not assign ids); PUT without
If-Match is a 412 and with a stale one a 409 (TOP-KT-012a allows both; HAPI answers 409); a stale If-Match on
DELETE is a 409; updating a deleted resource is a 410; deleting a deleted one is a 200 that says so.
AuditEvents cannot be changed or deleted by anybody: 405.  Devices are written by the voorziening only:
an application gets a 403.  One write = one transaction, so concurrent updates of one version have
exactly one winner and a refusal leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from simulators.kt2.context import Kt2Context
from simulators.kt2.errors import FhirError, operation_outcome
from simulators.kt2.fhir import rules
from simulators.kt2.fhir.common import (
    Interactions,
    Rest,
    Result,
    check_id,
    forbidden,
    parse_if_match,
    versioned,
)
from simulators.kt2.fhir.instants import instant
from simulators.kt2.fhir.repository import NewVersion
from simulators.kt2.http import dumps, http_date
from simulators.kt2.ids import new_uuid

_SERVER_META = ("versionId", "lastUpdated")


def refuse_immutable(ctx: Kt2Context, rtype: str, method: str) -> None:
    if rtype == "AuditEvent" and not ctx.fault("audit-event-mutable"):
        raise FhirError.one(405, f"AuditEvents cannot be changed or deleted ({method} refused)", "not-supported",
                            headers={"Allow": "GET, POST"})
    if rtype == "Device":
        raise forbidden("Devices are managed by the voorziening's domain admin; applications cannot write them")


def _letter(ctx: Kt2Context, rtype: str, letter: str) -> str:
    """The scope letter a change needs; with audit-event-mutable any AuditEvent reader may change them."""
    return "r" if rtype == "AuditEvent" and ctx.fault("audit-event-mutable") else letter


class Writer(Interactions):

    # -- shared -------------------------------------------------------------------------------------------
    def _stamp(self, rtype: str, rid: str, resource: dict, version: int, now_ms: int) -> dict:
        meta = resource.get("meta", {})
        if not isinstance(meta, dict):
            raise rules.unprocessable([rules.issue("meta must be a JSON object", f"{rtype}.meta", "structure")])
        meta = {k: v for k, v in meta.items() if k not in _SERVER_META}
        rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
        return {"resourceType": rtype, "id": rid, "meta": {"versionId": str(version),
                                                           "lastUpdated": instant(now_ms), **meta}, **rest}

    def _check(self, domain: str, rtype: str, resource: dict, self_ref: str | None = None) -> list[str]:
        """All write-time rules; returns the live local references (for the integrity index)."""
        ctx = self.ctx
        issues = rules.profile_issues(resource) + rules.reference_issues(resource, rtype)
        if rtype == "Task":
            issues += rules.task_issues(resource, not ctx.fault("subtask-without-partof-accepted"))
        if rtype == "Subscription":
            issues += rules.subscription_issues(
                resource, allow_http=ctx.fault("http-subscription-allowed"),
                loopback_http=ctx.settings.allow_loopback_http_subscriptions)
        references: list[str] = []
        for where, ref_type, ref_id in rules.local_references(resource, rtype):
            target = f"{ref_type}/{ref_id}"
            if where.startswith("AuditEvent.entity"):
                continue   # an AuditEvent may name what is gone (HAPI exempts AuditEvent.entity.what too)
            if target == self_ref:
                references.append(target)
                continue
            if self.repo.exists(domain, ref_type, ref_id):
                references.append(target)
            elif not ctx.fault("dangling-reference-accepted"):
                issues.append(rules.issue(f"{target} does not exist in this domain (or is deleted): only "
                                          "references to existing resources are stored", where, "not-found"))
        if issues:
            if ctx.fault("validation-error-500"):
                raise FhirError.one(500, "Internal server error", "exception")
            raise rules.unprocessable(issues)
        return [] if rtype == "AuditEvent" else sorted(set(references))

    def _flush_audit_if_named(self, resource: dict, rtype: str) -> None:
        """AuditEvents are stored in batches: one this resource names must be stored before the check, and
        the wait must happen outside the write transaction (the AuditEvent writer needs the write gate)."""
        if self.ctx.audit is not None and any(t == "AuditEvent" for _, t, _ in rules.local_references(resource, rtype)):
            self.ctx.audit.flush()

    def _answer(self, rest: Rest, status: int, rtype: str, rid: str, version: int, now_ms: int, body: bytes,
                interaction: str, message: str) -> Result:
        headers = {"Last-Modified": http_date(now_ms),
                   "Location": f"{rest.base}/{versioned(rtype, rid, version)}"}
        if not self.ctx.fault("etag-missing"):
            headers["ETag"] = f'W/"{version}"'
        prefer = rest.prefer.get("return", "representation")
        content: bytes | dict | None = body
        if prefer == "minimal":
            content = None
        elif prefer == "operationoutcome":
            content = operation_outcome(message)
        return Result(status, content, headers, interaction,
                      [{"what": {"reference": versioned(rtype, rid, version), "type": rtype},
                        "type": {"system": "http://hl7.org/fhir/resource-types", "code": rtype,
                                 "display": rtype}}])

    # -- create -------------------------------------------------------------------------------------------
    def create(self, rest: Rest, rtype: str, resource: dict[str, Any]) -> tuple[Result, dict]:
        ctx, caller = self.ctx, rest.caller
        if rtype == "Device":
            refuse_immutable(ctx, rtype, "POST")
        if not caller.scopes.any(rtype, "c"):
            raise forbidden(f"Your scope does not allow creating {rtype} resources")
        _check_type(resource, rtype)
        if rules.origins_of(resource) and not ctx.fault("resource-origin-client-set-accepted"):
            raise FhirError.one(400, "Not allowed to set extension resource-origin: the voorziening sets it",
                                "business-rule", f"{rtype}.extension")
        if not rules.origins_of(resource) and not ctx.fault("resource-origin-not-injected"):
            rules.set_origin(resource, caller.device)
        rid = new_uuid()
        now_ms = self._now_ms()
        stored = self._stamp(rtype, rid, resource, 1, now_ms)
        if rtype == "Subscription":
            stored["status"] = "active"
            stored.pop("error", None)
        self._flush_audit_if_named(stored, rtype)
        with ctx.store.transaction():
            references = self._check(rest.domain, rtype, stored)
            body = dumps(stored)
            self.repo.write([NewVersion(rest.domain, rtype, rid, 1, now_ms, "POST", body,
                                        rules.origin_reference(stored), stored, tuple(references))])
        return self._answer(rest, 201, rtype, rid, 1, now_ms, body, "create",
                            f"Created {rtype}/{rid}/_history/1"), stored

    # -- update -------------------------------------------------------------------------------------------
    def update(self, rest: Rest, rtype: str, rid: str, resource: dict[str, Any],
               if_match_header: str | None) -> tuple[Result, dict]:
        ctx, caller = self.ctx, rest.caller
        check_id(rid)
        refuse_immutable(ctx, rtype, "PUT")
        if not caller.scopes.any(rtype, _letter(ctx, rtype, "u")):
            raise forbidden(f"Your scope does not allow updating {rtype} resources")
        _check_type(resource, rtype)
        if resource.get("id") != rid:
            raise FhirError.one(400, f"The resource id ({str(resource.get('id'))[:70]!r}) must equal the id in the "
                                     f"URL ({rid!r})", "invalid", f"{rtype}.id")
        if_match = parse_if_match(if_match_header)
        self._flush_audit_if_named(resource, rtype)
        with ctx.store.transaction():
            current = self.repo.current(rest.domain, rtype, rid)
            if current is None:
                raise FhirError.one(404, f"{rtype}/{rid} does not exist; clients cannot choose ids (create with POST)",
                                    "not-found")
            if current.deleted:
                raise FhirError.one(410, f"{rtype}/{rid} is deleted", "deleted")
            if not caller.scopes.allows(rtype, _letter(ctx, rtype, "u"), current.origin):
                raise forbidden(f"Your scope does not allow updating {rtype}/{rid} (resource-origin "
                                f"{current.origin})")
            if if_match is None and not ctx.fault("if-match-not-enforced"):
                raise FhirError.one(412, "If-Match header is required on updates", "conflict")
            if isinstance(if_match, int) and if_match != current.version and not ctx.fault("stale-version-accepted"):
                raise FhirError.one(409, f"Version conflict: If-Match names version {if_match}, the current version "
                                         f"of {rtype}/{rid} is {current.version}", "conflict")
            self._keep_origin(resource, rtype, current.origin)
            version = current.version + 1
            now_ms = self._now_ms()
            stored = self._stamp(rtype, rid, resource, version, now_ms)
            if rtype == "Subscription":
                stored["status"] = "off" if resource.get("status") == "off" else "active"
                stored.pop("error", None)
            references = self._check(rest.domain, rtype, stored, f"{rtype}/{rid}")
            body = dumps(stored)
            self.repo.write([NewVersion(rest.domain, rtype, rid, version, now_ms, "PUT", body,
                                        rules.origin_reference(stored), stored, tuple(references))])
        return self._answer(rest, 200, rtype, rid, version, now_ms, body, "update",
                            f"Updated {rtype}/{rid} to version {version}"), stored

    def _keep_origin(self, resource: dict, rtype: str, stored_origin: str | None) -> None:
        given = rules.origins_of(resource)
        if len(given) > 1:
            raise FhirError.one(400, "More than one resource-origin extension", "business-rule", f"{rtype}.extension")
        if not given:
            if stored_origin:
                rules.set_origin(resource, stored_origin)
            return
        if rules.origin_reference(resource) != stored_origin and not self.ctx.fault("resource-origin-overwritable"):
            raise forbidden(f"resource-origin cannot be changed (it is {stored_origin})")

    # -- delete -------------------------------------------------------------------------------------------
    def delete(self, rest: Rest, rtype: str, rid: str, if_match_header: str | None, cascade: bool) -> Result:
        ctx, caller = self.ctx, rest.caller
        check_id(rid)
        refuse_immutable(ctx, rtype, "DELETE")
        if not caller.scopes.any(rtype, _letter(ctx, rtype, "d")):
            raise forbidden(f"Your scope does not allow deleting {rtype} resources")
        if_match = parse_if_match(if_match_header)
        with ctx.store.transaction():
            current = self.repo.current(rest.domain, rtype, rid)
            if current is None:
                raise FhirError.one(404, f"{rtype}/{rid} does not exist", "not-found")
            if not caller.scopes.allows(rtype, _letter(ctx, rtype, "d"), current.origin):
                raise forbidden(f"Your scope does not allow deleting {rtype}/{rid} (resource-origin {current.origin})")
            if current.deleted:
                return Result(200, operation_outcome(f"{rtype}/{rid} was already deleted"), {}, "delete",
                              [{"type": {"system": "http://hl7.org/fhir/resource-types", "code": rtype}}])
            if isinstance(if_match, int) and if_match != current.version and not ctx.fault("stale-version-accepted"):
                raise FhirError.one(409, f"Version conflict: If-Match names version {if_match}, the current version "
                                         f"of {rtype}/{rid} is {current.version}", "conflict")
            doomed = self._doomed(rest, rtype, rid, cascade)
            now_ms = self._now_ms()
            versions = []
            for dtype, did in doomed:
                cur = self.repo.current(rest.domain, dtype, did)
                versions.append(NewVersion(rest.domain, dtype, did, cur.version + 1, now_ms, "DELETE", None,
                                           cur.origin, None))
            self.repo.write(versions)
        names = ", ".join(f"{t}/{i}" for t, i in doomed[:20])
        text = f"Successfully deleted {len(doomed)} resource(s): {names}"
        return Result(200, operation_outcome(text), {}, "delete",
                      [{"type": {"system": "http://hl7.org/fhir/resource-types", "code": t, "display": t}}
                       for t, _ in doomed])

    def _doomed(self, rest: Rest, rtype: str, rid: str, cascade: bool) -> list[tuple[str, str]]:
        """The resource and, with _cascade=delete, everything that references it (recursively)."""
        doomed = [(rtype, rid)]
        queue = [(rtype, rid)]
        while queue:
            target = "/".join(queue.pop(0))
            referrers = [r for r in self.repo.referrers(rest.domain, target) if r not in doomed]
            if not referrers or self.ctx.fault("delete-ignores-references"):
                continue
            if not cascade:
                listed = ", ".join(f"{t}/{i}" for t, i in referrers[:10])
                raise FhirError.one(409, f"Unable to delete {target}: it is referenced by {listed}"
                                         f"{' and more' if len(referrers) > 10 else ''} (use _cascade=delete)",
                                    "conflict")
            for ref_type, ref_id in referrers:
                cur = self.repo.current(rest.domain, ref_type, ref_id)
                if ref_type in ("AuditEvent", "Device") or \
                        not rest.caller.scopes.allows(ref_type, "d", cur.origin if cur else None):
                    raise forbidden(f"_cascade=delete would delete {ref_type}/{ref_id}, which you may not delete")
                doomed.append((ref_type, ref_id))
                queue.append((ref_type, ref_id))
            if len(doomed) > 1000:
                raise FhirError.one(409, "_cascade=delete would delete more than 1000 resources", "too-costly")
        return doomed


def _check_type(resource: dict, rtype: str) -> None:
    given = resource.get("resourceType")
    if given != rtype:
        raise FhirError.one(400, f"resourceType {str(given)[:60]!r} does not match the URL ({rtype})", "invalid",
                            "resourceType")

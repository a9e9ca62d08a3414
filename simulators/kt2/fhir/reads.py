"""read, vread, _history (instance and type) and search, with permissions and silent narrowing.

Direct access (read, vread, instance history) needs the letter in the scope and a matching resource-origin,
else 403 (KT2-PERM-OWN-DIRECT).  Searches and type history are narrowed silently to the origins the scope
allows (KT2-PERM-NARROWING); a caller without any grant on the type gets a 403.  `_include`d resources
are shown only when the caller may read them.
"""

from __future__ import annotations

from simulators.kt2.errors import FhirError
from simulators.kt2.fhir import bundles, search
from simulators.kt2.fhir.audit import query_entity, resource_entity
from simulators.kt2.fhir.common import (
    Interactions,
    Rest,
    Result,
    check_id,
    forbidden,
    versioned,
)
from simulators.kt2.fhir.instants import parse_instant_ms
from simulators.kt2.http import http_date


class Reader(Interactions):

    def _fresh(self, rtype: str) -> None:
        if rtype == "AuditEvent" and self.ctx.audit is not None:
            self.ctx.audit.flush()

    def _headers(self, version: int, updated_ms: int) -> dict[str, str]:
        headers = {"Last-Modified": http_date(updated_ms)}
        if not self.ctx.fault("etag-missing"):
            headers["ETag"] = f'W/"{version}"'
        return headers

    def _narrowing(self, rest: Rest, rtype: str, letter: str) -> frozenset[str] | None:
        scopes = rest.caller.scopes
        if not scopes.any(rtype, letter):
            raise forbidden(f"Your scope does not allow {'searching' if letter == 's' else 'reading'} {rtype}")
        if self.ctx.fault("narrowing-missing"):
            return None
        return scopes.narrowing(rtype, letter)

    def read(self, rest: Rest, rtype: str, rid: str) -> Result:
        check_id(rid)
        scopes = rest.caller.scopes
        if not scopes.any(rtype, "r"):
            raise forbidden(f"Your scope does not allow reading {rtype}")
        self._fresh(rtype)
        found = self.repo.read_current(rest.domain, rtype, rid)
        if found is None:
            raise FhirError.one(404, f"{rtype}/{rid} is not known", "not-found")
        current, body = found
        if not scopes.allows(rtype, "r", current.origin):
            raise forbidden(f"Your scope does not allow reading {rtype}/{rid}")
        if current.deleted:
            if self.ctx.fault("deleted-read-404"):
                raise FhirError.one(404, f"{rtype}/{rid} is not known", "not-found")
            raise FhirError.one(410, f"{rtype}/{rid} was deleted (version {current.version})", "deleted",
                                headers=self._headers(current.version, current.updated_ms))
        return Result(200, body, self._headers(current.version, current.updated_ms), "read",
                      [resource_entity(rtype, versioned(rtype, rid, current.version))])

    def vread(self, rest: Rest, rtype: str, rid: str, version_text: str) -> Result:
        check_id(rid)
        scopes = rest.caller.scopes
        if not scopes.any(rtype, "r"):
            raise forbidden(f"Your scope does not allow reading {rtype}")
        if not (version_text.isascii() and version_text.isdigit()) or len(version_text) > 18:
            raise FhirError.one(400, f"{version_text[:40]!r} is not a version id", "value")
        self._fresh(rtype)
        current = self.repo.current(rest.domain, rtype, rid)
        if current is None:
            raise FhirError.one(404, f"{rtype}/{rid} is not known", "not-found")
        if not scopes.allows(rtype, "r", current.origin):
            raise forbidden(f"Your scope does not allow reading {rtype}/{rid}")
        row = self.repo.version(rest.domain, rtype, rid, int(version_text))
        if row is None:
            raise FhirError.one(404, f"{rtype}/{rid} has no version {version_text}", "not-found")
        if row["body"] is None:
            raise FhirError.one(410, f"Version {version_text} of {rtype}/{rid} is its deletion", "deleted")
        return Result(200, row["body"], self._headers(row["version"], row["updated_ms"]), "vread",
                      [resource_entity(rtype, versioned(rtype, rid, row["version"]))])

    def history(self, rest: Rest, rtype: str, rid: str | None, items: list[tuple[str, str]]) -> Result:
        settings = self.ctx.settings
        count, offset, since, link_params = settings.default_page_size, 0, None, []
        for key, value in items:
            if key == "_count":
                count = min(search._int(key, value), settings.max_page_size)
            elif key == "_offset":
                offset = search._int(key, value)
            elif key == "_since":
                span = parse_instant_ms(value)
                if span is None:
                    raise search.bad(f"_since: {value[:60]!r} is not a FHIR instant", "_since")
                since = span[0]
            elif key != "_format":
                raise search.bad(f"_history does not support the parameter {key[:60]!r} "
                                 "(_count, _since, _offset)", key)
            if key not in ("_offset", "_format"):
                link_params.append((key, value))
        self._fresh(rtype)
        if rid is not None:
            check_id(rid)
            if not rest.caller.scopes.any(rtype, "r"):
                raise forbidden(f"Your scope does not allow reading {rtype}")
            current = self.repo.current(rest.domain, rtype, rid)
            if current is None:
                raise FhirError.one(404, f"{rtype}/{rid} is not known", "not-found")
            if not rest.caller.scopes.allows(rtype, "r", current.origin):
                raise forbidden(f"Your scope does not allow reading {rtype}/{rid}")
            origins = None
        else:
            origins = self._narrowing(rest, rtype, "r")
        total, rows = self.repo.history(rest.domain, rtype, rid, since, origins, count, offset)
        path = f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history"
        links = bundles.paging_links(rest.base, path, link_params, total, offset, count,
                                     self.ctx.fault("relative-next-links"))
        body = bundles.history(rest.base, rtype, self._now_ms(), total, links, [tuple(r) for r in rows],
                               self.ctx.fault("history-drops-deletes"))
        return Result(200, body, {}, "history-instance" if rid else "history-type",
                      [resource_entity(rtype, f"{rtype}/{rid}" if rid else None)])

    def search(self, rest: Rest, rtype: str, items: list[tuple[str, str]], query_text: str) -> Result:
        settings = self.ctx.settings
        origins = self._narrowing(rest, rtype, "s")
        lenient = rest.prefer.get("handling") == "lenient"
        query = search.parse_query(rtype, items, default_count=settings.default_page_size,
                                   max_count=settings.max_page_size, lenient=lenient, fhir_base=rest.base)
        self._fresh(rtype)
        store = self.ctx.store
        total = search.count(store, rest.domain, query, origins)
        rows = [] if query.summary_count else search.matches(store, rest.domain, query, origins)
        entries = [(rtype, rid, body, "match") for rid, _, body in rows]
        entities = [query_entity(rtype, f"/{rtype}" + (f"?{query_text}" if query_text else ""))]
        entities += [resource_entity(rtype, versioned(rtype, rid, version)) for rid, version, _ in rows]
        for ref in search.included_targets(store, rest.domain, rtype, [r[0] for r in rows], query.includes):
            entries.extend(self._included(rest, ref))
        links = bundles.paging_links(rest.base, rtype, query.link_params, total, query.offset,
                                     0 if query.summary_count else query.count, self.ctx.fault("relative-next-links"))
        body = bundles.searchset(rest.base, self._now_ms(), None if self.ctx.fault("search-total-missing") else total,
                                 links, entries)
        return Result(200, body, {}, "search-type", entities)

    def _included(self, rest: Rest, ref: str) -> list[tuple[str, str, bytes, str]]:
        itype, _, iid = ref.partition("/")
        if itype not in search.PARAMS:
            return []
        self._fresh(itype)
        found = self.repo.read_current(rest.domain, itype, iid)
        if found is None or found[0].deleted or found[1] is None:
            return []
        if not rest.caller.scopes.allows(itype, "r", found[0].origin):
            return []
        return [(itype, iid, found[1], "include")]

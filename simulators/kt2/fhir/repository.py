"""Versioned resource storage in SQLite: every version once, the current state, search index and references.

Why these shapes: versions (large rows) and index rows live in rowid tables, so inserts append, and the index
on (param, value) keeps equal values in insertion order; that keeps the many AuditEvent writes cheap.
`fhir_versions` keeps each version's JSON exactly as it is served (so a read returns stored bytes without
re-serialising) and DELETE entries without a body, which is what `_history` and vread need; `fhir_current`
says which version is current and whether it is deleted; `fhir_index` holds search values of current,
live versions only; `fhir_refs` holds the literal references of current, live versions for referential
integrity on delete.  Callers run writes inside `Store.transaction()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from simulators.kt2.fhir.searchparams import index_rows
from simulators.kt2.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS fhir_versions (
    domain TEXT NOT NULL, rtype TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, method TEXT NOT NULL, body BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS fhir_versions_key ON fhir_versions (domain, rtype, id, version);
CREATE TABLE IF NOT EXISTS fhir_current (
    domain TEXT NOT NULL, rtype TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, deleted INTEGER NOT NULL, origin TEXT,
    PRIMARY KEY (domain, rtype, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fhir_current_time ON fhir_current (domain, rtype, deleted, updated_ms);
CREATE TABLE IF NOT EXISTS fhir_index (
    domain TEXT NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL, val NOT NULL, id TEXT NOT NULL,
    sys TEXT, num INTEGER);
CREATE INDEX IF NOT EXISTS fhir_index_value ON fhir_index (domain, rtype, param, val);
CREATE INDEX IF NOT EXISTS fhir_index_owner ON fhir_index (domain, rtype, id);
CREATE TABLE IF NOT EXISTS fhir_refs (
    domain TEXT NOT NULL, target TEXT NOT NULL, src_type TEXT NOT NULL, src_id TEXT NOT NULL,
    PRIMARY KEY (domain, target, src_type, src_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fhir_refs_source ON fhir_refs (domain, src_type, src_id);
"""


@dataclass(frozen=True)
class Current:
    version: int
    updated_ms: int
    deleted: bool
    origin: str | None


@dataclass(frozen=True)
class NewVersion:
    """One version to write: `body` None for a DELETE; `resource` (the parsed body) feeds the index."""

    domain: str
    rtype: str
    id: str
    version: int
    updated_ms: int
    method: str                      # POST | PUT | DELETE
    body: bytes | None
    origin: str | None
    resource: dict | None
    references: tuple[str, ...] = ()
    index: list | None = None        # precomputed index rows (AuditEvents); None: extract from `resource`


_CACHE_MAX = 20_000


class Repository:
    """Why a read cache: an authenticated read is the most frequent request; its current row and body are kept
    by (domain, type, id) and dropped by every write of that resource (this process is the only writer; the
    AuditEvent writer thread has its own Repository and AuditEvents are never cached)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)
        self._cache: dict[tuple[str, str, str], tuple[Current, bytes | None]] = {}

    # -- reads ---------------------------------------------------------------------------------------
    def current(self, domain: str, rtype: str, rid: str) -> Current | None:
        row = self.store.one("SELECT version, updated_ms, deleted, origin FROM fhir_current "
                             "WHERE domain=? AND rtype=? AND id=?", (domain, rtype, rid))
        return Current(row[0], row[1], bool(row[2]), row[3]) if row else None

    def read_current(self, domain: str, rtype: str, rid: str) -> tuple[Current, bytes | None] | None:
        key = (domain, rtype, rid)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found = self._read_current(domain, rtype, rid)
        if found is not None and rtype != "AuditEvent" and not self.store.in_transaction:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _read_current(self, domain: str, rtype: str, rid: str) -> tuple[Current, bytes | None] | None:
        row = self.store.one(
            "SELECT c.version, c.updated_ms, c.deleted, c.origin, v.body FROM fhir_current c "
            "JOIN fhir_versions v ON v.domain=c.domain AND v.rtype=c.rtype AND v.id=c.id AND v.version=c.version "
            "WHERE c.domain=? AND c.rtype=? AND c.id=?", (domain, rtype, rid))
        if row is None:
            return None
        return Current(row[0], row[1], bool(row[2]), row[3]), row[4]

    def version(self, domain: str, rtype: str, rid: str, version: int) -> sqlite3.Row | None:
        return self.store.one("SELECT version, updated_ms, method, body FROM fhir_versions "
                              "WHERE domain=? AND rtype=? AND id=? AND version=?", (domain, rtype, rid, version))

    def last_live_body(self, domain: str, rtype: str, rid: str) -> bytes | None:
        row = self.store.one("SELECT body FROM fhir_versions WHERE domain=? AND rtype=? AND id=? "
                             "AND body IS NOT NULL ORDER BY version DESC LIMIT 1", (domain, rtype, rid))
        return row[0] if row else None

    def exists(self, domain: str, rtype: str, rid: str) -> bool:
        return self.store.one("SELECT 1 FROM fhir_current WHERE domain=? AND rtype=? AND id=? AND deleted=0",
                              (domain, rtype, rid)) is not None

    def bodies(self, domain: str, rtype: str, ids: Iterable[str]) -> dict[str, tuple[int, bytes]]:
        """Current live bodies of several resources: id -> (version, body)."""
        ids = list(ids)
        found: dict[str, tuple[int, bytes]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.store.all(
                    "SELECT c.id, c.version, v.body FROM fhir_current c JOIN fhir_versions v ON v.domain=c.domain "
                    "AND v.rtype=c.rtype AND v.id=c.id AND v.version=c.version "
                    f"WHERE c.domain=? AND c.rtype=? AND c.deleted=0 AND c.id IN ({marks})",
                    (domain, rtype, *chunk)):
                found[row[0]] = (row[1], row[2])
        return found

    def referrers(self, domain: str, target: str) -> list[tuple[str, str]]:
        """(type, id) of live resources that reference `target` ("Type/id"), AuditEvents excluded."""
        rows = self.store.all("SELECT DISTINCT src_type, src_id FROM fhir_refs WHERE domain=? AND target=? "
                              "AND src_type != 'AuditEvent' ORDER BY src_type, src_id", (domain, target))
        return [(r[0], r[1]) for r in rows]

    def history(self, domain: str, rtype: str, rid: str | None, since_ms: int | None, origins: frozenset | None,
                limit: int, offset: int) -> tuple[int, list[sqlite3.Row]]:
        where = ["v.domain=?", "v.rtype=?"]
        args: list = [domain, rtype]
        if rid is not None:
            where.append("v.id=?")
            args.append(rid)
        if since_ms is not None:
            where.append("v.updated_ms>=?")
            args.append(since_ms)
        if origins is not None:
            marks = ",".join("?" * len(origins))
            where.append(f"(c.origin IS NULL OR c.origin IN ({marks}))")
            args.extend(sorted(origins))
        sql = (" FROM fhir_versions v JOIN fhir_current c ON c.domain=v.domain AND c.rtype=v.rtype AND c.id=v.id "
               "WHERE " + " AND ".join(where))
        total = self.store.one("SELECT COUNT(*)" + sql, args)[0]
        rows = self.store.all("SELECT v.id, v.version, v.updated_ms, v.method, v.body" + sql +
                              " ORDER BY v.updated_ms DESC, v.id, v.version DESC LIMIT ? OFFSET ?",
                              [*args, limit, offset])
        return total, rows

    # -- writes (inside a transaction) -------------------------------------------------------------------
    def write(self, versions: list[NewVersion]) -> None:
        """Store versions and move `fhir_current`, the index and the references along (batched)."""
        if not versions:
            return
        for v in versions:   # dropped before the write: a rolled-back transaction cannot leave a stale entry
            self._cache.pop((v.domain, v.rtype, v.id), None)
        store = self.store
        store.executemany("INSERT INTO fhir_versions (domain, rtype, id, version, updated_ms, method, body) "
                          "VALUES (?,?,?,?,?,?,?)",
                          [(v.domain, v.rtype, v.id, v.version, v.updated_ms, v.method, v.body) for v in versions])
        store.executemany("INSERT INTO fhir_current (domain, rtype, id, version, updated_ms, deleted, origin) "
                          "VALUES (?,?,?,?,?,?,?) ON CONFLICT (domain, rtype, id) DO UPDATE SET "
                          "version=excluded.version, updated_ms=excluded.updated_ms, deleted=excluded.deleted, "
                          "origin=excluded.origin",
                          [(v.domain, v.rtype, v.id, v.version, v.updated_ms, int(v.body is None), v.origin)
                           for v in versions])
        stale = [(v.domain, v.rtype, v.id) for v in versions if v.version > 1]
        if stale:
            store.executemany("DELETE FROM fhir_index WHERE domain=? AND rtype=? AND id=?", stale)
            store.executemany("DELETE FROM fhir_refs WHERE domain=? AND src_type=? AND src_id=?", stale)
        index: list[tuple] = []
        refs: list[tuple] = []
        for v in versions:
            if v.resource is None:
                continue
            rows = v.index if v.index is not None else index_rows(v.rtype, v.resource)
            index.extend((v.domain, v.rtype, v.id, p, "" if s is None else s, val, n) for p, s, val, n in rows)
            refs.extend((v.domain, v.rtype, v.id, target) for target in v.references)
        if index:
            store.executemany("INSERT INTO fhir_index (domain, rtype, id, param, sys, val, num) "
                              "VALUES (?,?,?,?,?,?,?)", index)
        if refs:
            store.executemany("INSERT OR IGNORE INTO fhir_refs (domain, src_type, src_id, target) VALUES (?,?,?,?)",
                              refs)

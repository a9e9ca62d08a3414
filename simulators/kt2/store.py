"""SQLite state of the voorziening: one connection, one lock, one transaction per unit of work.

Each component (FHIR store, authorisation server, domain admin) declares its own tables with `ensure_schema`;
a request that changes state runs in one `transaction()`, so a refused write leaves nothing half-stored.
A file database (WAL) survives restarts; `:memory:` is for tests.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from simulators.common.sqlite import connect


class Store:
    def __init__(self, path: str = ":memory:", write_gate: threading.Lock | None = None) -> None:
        """`write_gate`: a lock shared with another connection to the same file, taken around every write
        transaction, so two writers queue in Python instead of in SQLite's busy handler (which sleeps up to
        100 ms at a time)."""
        self.path = path
        self.write_gate = write_gate
        self._lock = threading.RLock()
        self._conn = connect(path)  # WAL, synchronous=OFF for a file
        if path != ":memory:":
            # a 32 MB page cache (the default is 2 MB): index inserts land on cached pages
            self._conn.execute("PRAGMA cache_size=-32768")
            self._conn.execute("PRAGMA wal_autocheckpoint=4000")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self._owner: int | None = None

    @property
    def in_transaction(self) -> bool:
        """Is the calling thread inside a transaction of this store?"""
        return self._depth > 0 and self._owner == threading.get_ident()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ensure_schema(self, sql: str) -> None:
        with self._lock:
            if self.write_gate is not None:
                with self.write_gate:
                    self._conn.executescript(sql)
                return
            self._conn.executescript(sql)

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All-or-nothing unit of work (re-entrant: nested calls join the outer transaction)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            if self.write_gate is not None:
                self.write_gate.acquire()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                self._owner = threading.get_ident()
                try:
                    yield self
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                else:
                    self._conn.execute("COMMIT")
                finally:
                    self._depth = 0
            finally:
                if self.write_gate is not None:
                    self.write_gate.release()

    def _gated(self, sql: str) -> bool:
        """Must this statement take the write gate?  Writes outside a transaction (autocommit) on a store that
        shares its file: without the gate they would meet the other connection's write transaction in SQLite's
        busy handler (sleeping, and `database is locked` after its timeout).  Inside a transaction the gate
        is held already (the caller holds `_lock`, so `_depth` is its own)."""
        return self.write_gate is not None and not self._depth and \
            sql.lstrip()[:6].upper() not in ("SELECT", "PRAGMA")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            if self._gated(sql):
                with self.write_gate:
                    return self._conn.execute(sql, params)
            return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            if self._gated(sql):
                with self.write_gate:
                    self._conn.executemany(sql, rows)
                return
            self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

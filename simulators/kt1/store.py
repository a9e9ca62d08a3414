"""SQLite state of the KT1 server: resources, queued messages, ActivityDefinitions, OAuth grants.

One connection guarded by a lock; every request that changes state runs in
one `transaction()`, so a refused Mailbox POST leaves nothing behind.  A file
database (WAL) survives restarts; `:memory:` is for tests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from simulators.common.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    domain TEXT NOT NULL, url TEXT NOT NULL, rtype TEXT NOT NULL, version TEXT NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (domain, url));
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain TEXT NOT NULL, recipient TEXT NOT NULL, sender TEXT NOT NULL,
    event TEXT NOT NULL, patient TEXT, focal TEXT NOT NULL, identifier TEXT NOT NULL,
    status TEXT NOT NULL, exception TEXT, last_changed TEXT NOT NULL, version TEXT NOT NULL,
    claim_expiries INTEGER NOT NULL DEFAULT 0, claimed_at REAL, created REAL NOT NULL,
    header TEXT NOT NULL, entries TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_mailbox ON messages (domain, recipient, status, id);
CREATE INDEX IF NOT EXISTS messages_focal ON messages (domain, recipient, focal, status);
-- newest-first summary pages without sorting the whole mailbox; claim expiry without a table scan
CREATE INDEX IF NOT EXISTS messages_recipient ON messages (domain, recipient, id);
CREATE INDEX IF NOT EXISTS messages_claims ON messages (status, claimed_at);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, domain TEXT NOT NULL, identifier TEXT NOT NULL,
    version TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0, content TEXT NOT NULL,
    UNIQUE (domain, identifier));
CREATE TABLE IF NOT EXISTS launches (
    launch_id TEXT PRIMARY KEY, kind TEXT NOT NULL, domain TEXT NOT NULL, client_id TEXT NOT NULL,
    launcher TEXT NOT NULL, patient TEXT NOT NULL, user TEXT NOT NULL, resource TEXT, intent TEXT,
    activation_code TEXT UNIQUE, expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, launch_id TEXT NOT NULL, client_id TEXT NOT NULL, redirect_uri TEXT,
    expires REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
    access_token TEXT PRIMARY KEY, refresh_token TEXT UNIQUE, code TEXT, launch_id TEXT NOT NULL,
    client_id TEXT NOT NULL, expires REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
"""


class Store:
    """Thin SQL layer; the protocol rules live in the service modules that call it."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        # WAL, synchronous=OFF: NORMAL would fsync at every WAL checkpoint, stalling the single-threaded server
        # for milliseconds every few dozen messages
        self._conn = connect(path)
        self._conn.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """All-or-nothing unit of work (re-entrant: nested calls join the outer transaction)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException as exc:
                # An error may ask for its side effects to stay (e.g. revoking tokens of a replayed code).
                self._conn.execute("COMMIT" if getattr(exc, "commit_side_effects", False) else "ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # -- resources ----------------------------------------------------------------------------
    def resource(self, domain: str, url: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM resources WHERE domain = ? AND url = ?", (domain, url))

    def put_resource(self, domain: str, url: str, rtype: str, version: str, content: dict) -> None:
        self.execute(
            "INSERT INTO resources(domain, url, rtype, version, content) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(domain, url) DO UPDATE SET rtype = excluded.rtype, version = excluded.version, "
            "content = excluded.content",
            (domain, url, rtype, version, dumps(content)))

    # -- messages -----------------------------------------------------------------------------
    def insert_message(self, **fields: Any) -> int:
        # header and entries: objects, or their JSON text when the caller already serialised them
        fields = {k: dumps(v) if k in ("header", "entries") and not isinstance(v, str) else v
                  for k, v in fields.items()}
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.execute(f"INSERT INTO messages ({cols}) VALUES ({marks})", tuple(fields.values()))
        return int(cur.lastrowid)

    def message(self, message_id: int) -> sqlite3.Row | None:
        return self.one("SELECT * FROM messages WHERE id = ?", (message_id,))

    def update_message(self, message_id: int, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*fields.values(), message_id))


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> Any:
    return json.loads(text)

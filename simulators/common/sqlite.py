"""Opening a simulator's SQLite database: the settings every reference simulator wants.

Autocommit mode (the stores open their own transactions), rows by name, and for a file database WAL with
`synchronous=OFF`: commits survive a crash or kill of the server process (the data is with the OS); only an
OS crash could lose the last ones, which a simulator can afford, and no fsync stalls the event loop.
"""

from __future__ import annotations

import sqlite3


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
    return conn

"""The domain admin's tables in the voorziening's SQLite file (all prefixed `admin_`, next to the FHIR store's).

What is configuration (account definitions, applications, domains, roles) is read from the data file at every
start; what is state lives here and survives a restart of a file database: the lock-out counters, sessions,
application instances with their status history, connection requests and the sent e-mails.  Passwords are
never stored (they are compared with the data file's); session tokens only as SHA-256 hashes.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_accounts (
    username        TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    blocked_at      REAL
);
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_hash  TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS admin_sessions_expiry ON admin_sessions (expires_at);
CREATE TABLE IF NOT EXISTS admin_instances (
    client_id     TEXT PRIMARY KEY,
    application   TEXT NOT NULL,
    domain        TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'maintenance', 'closed')),
    name          TEXT NOT NULL,
    jwks_url      TEXT,
    jwks          TEXT,
    redirect_uris TEXT NOT NULL,
    launch_url    TEXT,
    origin        TEXT NOT NULL,
    request_id    TEXT,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS admin_instances_domain ON admin_instances (domain);
CREATE TABLE IF NOT EXISTS admin_instance_history (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id   TEXT NOT NULL REFERENCES admin_instances (client_id),
    at          REAL NOT NULL,
    by          TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS admin_connection_requests (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    application   TEXT NOT NULL,
    domain        TEXT NOT NULL,
    name          TEXT NOT NULL,
    jwks_uri      TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    launch_url    TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    filed_by      TEXT NOT NULL,
    filed_at      REAL NOT NULL,
    decided_by    TEXT,
    decided_at    REAL,
    role          TEXT,
    client_id     TEXT,
    reason        TEXT
);
CREATE TABLE IF NOT EXISTS admin_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at    REAL NOT NULL,
    recipients TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL
);
"""

"""Pending HTI launches (authorize -> IdP -> callback) and authorization codes, in the database.

Codes are stored by their SHA-256 only; a code is single use and lives `authorization_code_seconds`; a
login session lives `login_session_seconds`.  The IdP marks a session logged in with the user's identifier
and a one-time `idp_code` that the callback must present, so nobody can skip the IdP by calling the
callback with a guessed session id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from simulators.kt2.context import Kt2Context

SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_sessions (
    id TEXT PRIMARY KEY, domain TEXT NOT NULL, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
    state TEXT NOT NULL, code_challenge TEXT NOT NULL, claims TEXT NOT NULL, idp TEXT NOT NULL,
    expires REAL NOT NULL, user_identifier TEXT, username TEXT, idp_code TEXT);
CREATE TABLE IF NOT EXISTS auth_codes (
    code_hash TEXT PRIMARY KEY, domain TEXT NOT NULL, session TEXT NOT NULL, expires REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0);
"""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoginSession:
    id: str
    domain: str
    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    claims: dict[str, Any]
    idp: str
    expires: float
    user_identifier: str | None
    username: str | None
    idp_code: str | None

    def public(self) -> dict[str, Any]:
        return {"domain": self.domain, "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                "state": self.state, "code_challenge": self.code_challenge, "claims": self.claims,
                "idp": self.idp, "username": self.username}


class Sessions:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx
        ctx.store.ensure_schema(SCHEMA)

    def purge(self) -> None:
        """Forget login sessions and codes that expired more than an hour ago."""
        cutoff = self.ctx.clock.now() - 3600
        self.ctx.store.execute("DELETE FROM auth_sessions WHERE expires < ?", (cutoff,))
        self.ctx.store.execute("DELETE FROM auth_codes WHERE expires < ?", (cutoff,))

    def start(self, domain: str, client_id: str, redirect_uri: str, state: str, code_challenge: str,
              claims: dict, idp: str) -> str:
        sid = secrets.token_urlsafe(24)
        expires = self.ctx.clock.now() + self.ctx.settings.login_session_seconds
        self.ctx.store.execute("INSERT INTO auth_sessions (id, domain, client_id, redirect_uri, state, code_challenge, "
                               "claims, idp, expires) VALUES (?,?,?,?,?,?,?,?,?)",
                               (sid, domain, client_id, redirect_uri, state, code_challenge, json.dumps(claims), idp,
                                expires))
        return sid

    def get(self, sid: str) -> LoginSession | None:
        if not isinstance(sid, str) or len(sid) > 100:
            return None
        row = self.ctx.store.one("SELECT * FROM auth_sessions WHERE id=?", (sid,))
        if row is None or row["expires"] < self.ctx.clock.now():
            return None
        return LoginSession(row["id"], row["domain"], row["client_id"], row["redirect_uri"], row["state"],
                            row["code_challenge"], json.loads(row["claims"]), row["idp"], row["expires"],
                            row["user_identifier"], row["username"], row["idp_code"])

    def logged_in(self, sid: str, username: str, identifier: str) -> str:
        """The IdP's verdict: returns the one-time code the callback must present."""
        code = secrets.token_urlsafe(24)
        self.ctx.store.execute("UPDATE auth_sessions SET username=?, user_identifier=?, idp_code=? WHERE id=?",
                               (username, identifier, digest(code), sid))
        return code

    def finish(self, sid: str) -> None:
        self.ctx.store.execute("DELETE FROM auth_sessions WHERE id=?", (sid,))

    def issue_code(self, session: LoginSession) -> str:
        code = secrets.token_urlsafe(32)
        expires = self.ctx.clock.now() + self.ctx.settings.authorization_code_seconds
        self.ctx.store.execute("INSERT INTO auth_codes (code_hash, domain, session, expires) VALUES (?,?,?,?)",
                               (digest(code), session.domain, json.dumps(session.public()), expires))
        return code

    def redeem(self, domain: str, code: str) -> tuple[dict | None, str]:
        """(the session a code belongs to, "") or (None, why not); marks the code used."""
        store = self.ctx.store
        with store.transaction():
            row = store.one("SELECT session, expires, used FROM auth_codes WHERE code_hash=? AND domain=?",
                            (digest(code), domain))
            if row is None:
                return None, "the authorization code is unknown"
            if row["used"]:
                return None, "the authorization code was used before"
            if row["expires"] < self.ctx.clock.now():
                return None, "the authorization code has expired"
            store.execute("UPDATE auth_codes SET used=1 WHERE code_hash=?", (digest(code),))
        return json.loads(row["session"]), ""

"""Log-in sessions of admin accounts: opaque random tokens, stored only as SHA-256 hashes, with a fixed lifetime.

One session serves both doors: the JSON API takes the token as `Authorization: Bearer <token>`, the web page as
an HttpOnly, SameSite=Strict cookie.  A session lasts `settings.admin_session_seconds` from the log-in
(absolute, not sliding: predictable for a test suite that checks expiry).  The CSRF token of the web forms is
an HMAC of the session token, so it needs no storage and dies with the session.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from simulators.kt2.admin.accounts import Account, Accounts
from simulators.kt2.admin.errors import unauthorized
from simulators.kt2.context import Kt2Context

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_CSRF_LABEL = b"kt2-mgmt-csrf"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


class Sessions:
    def __init__(self, ctx: Kt2Context, accounts: Accounts) -> None:
        self.ctx = ctx
        self.accounts = accounts

    @property
    def lifetime(self) -> int:
        return self.ctx.settings.admin_session_seconds

    def open(self, account: Account) -> str:
        token = secrets.token_urlsafe(32)
        now = self.ctx.clock.now()
        with self.ctx.store.transaction():
            self.ctx.store.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", (now,))
            self.ctx.store.execute("INSERT INTO admin_sessions (token_hash, username, created_at, expires_at) "
                                   "VALUES (?, ?, ?, ?)", (_hash(token), account.username, now, now + self.lifetime))
        return token

    def account(self, token: str) -> Account:
        """The account a session token belongs to, or 401 (unknown, malformed, expired or logged out)."""
        if not well_formed(token):
            raise unauthorized("not a session token")
        row = self.ctx.store.one("SELECT username, expires_at FROM admin_sessions WHERE token_hash = ?",
                                 (_hash(token),))
        if row is None:
            raise unauthorized("unknown session (never opened, logged out or expired)")
        if row["expires_at"] <= self.ctx.clock.now():
            with self.ctx.store.transaction():
                self.ctx.store.execute("DELETE FROM admin_sessions WHERE token_hash = ?", (_hash(token),))
            raise unauthorized("the session has expired; log in again")
        account = self.accounts.get(row["username"])
        if account is None:
            raise unauthorized("the session's account no longer exists")
        return account

    def close(self, token: str) -> None:
        if well_formed(token):
            with self.ctx.store.transaction():
                self.ctx.store.execute("DELETE FROM admin_sessions WHERE token_hash = ?", (_hash(token),))

    @staticmethod
    def csrf_token(token: str) -> str:
        return hmac.new(token.encode("ascii"), _CSRF_LABEL, hashlib.sha256).hexdigest()

    @classmethod
    def csrf_ok(cls, token: str, submitted: str) -> bool:
        return hmac.compare_digest(cls.csrf_token(token).encode(), submitted.encode("utf-8", "replace"))

"""Admin accounts (seed 001 ch. 3-5): who they are, what they may manage, and logging in with lock-out.

Two kinds, as in the Itzos beheerapplicatie: a domain admin ("Domeinbeheerder") manages the application
instances and connection requests of their domains; an application admin ("Applicatiebeheerder") sees their
applications, their instances and connection requests, and files new requests.

The data file defines the accounts (and holds their passwords: it is test data); the database keeps their
lock-out state, so a restart does not unblock anyone.  After `settings.login_attempts` consecutive wrong
passwords an account is blocked, and then even the right password is refused (423 Locked) until a domain admin
unblocks it (`POST /api/accounts/{username}/unblock`, standing in for support@itzos.com).  Passwords are
compared as SHA-256 digests with `hmac.compare_digest` (constant time, independent of the length), also for
unknown usernames, and are never stored, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from simulators.kt2.admin.errors import (
    AdminError,
    blocked,
    forbidden,
    not_found,
    unauthorized,
)
from simulators.kt2.context import Kt2Context

DOMAIN_ADMIN = "domain-admin"
APPLICATION_ADMIN = "application-admin"
KIND_LABELS = {DOMAIN_ADMIN: "Domeinbeheerder", APPLICATION_ADMIN: "Applicatiebeheerder"}
_DUMMY = hashlib.sha256(b"no such account").digest()
WRONG_CREDENTIALS = "wrong username or password"


@dataclass(frozen=True)
class Account:
    username: str
    kind: str
    email: str
    name: str
    domains: frozenset[str]
    applications: frozenset[str]

    @property
    def is_domain_admin(self) -> bool:
        return self.kind == DOMAIN_ADMIN

    @property
    def is_application_admin(self) -> bool:
        return self.kind == APPLICATION_ADMIN

    def manages_domain(self, domain: str) -> bool:
        return self.is_domain_admin and domain in self.domains

    def manages_application(self, application: str) -> bool:
        return self.is_application_admin and application in self.applications

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "kind": self.kind, "kind_label": KIND_LABELS[self.kind],
                "name": self.name, "email": self.email, "domains": sorted(self.domains),
                "applications": sorted(self.applications)}


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()


class Accounts:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx
        self._accounts = {a.username: Account(a.username, a.kind, a.email, a.name or a.username,
                                              frozenset(a.domains), frozenset(a.applications))
                          for a in ctx.data.admins}
        self._digests = {a.username: _digest(a.password) for a in ctx.data.admins}

    def seed(self) -> None:
        """Bring the definitions of the data file into the table, keeping every account's lock-out state."""
        store = self.ctx.store
        with store.transaction():
            for account in self._accounts.values():
                store.execute(
                    "INSERT INTO admin_accounts (username, kind, email, name) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (username) DO UPDATE SET kind = excluded.kind, email = excluded.email, "
                    "name = excluded.name", (account.username, account.kind, account.email, account.name))
            known = list(self._accounts)
            marks = ",".join("?" * len(known))
            # accounts the data file no longer has cannot log in: drop them and their sessions
            store.execute(f"DELETE FROM admin_sessions WHERE username NOT IN ({marks})", known)
            store.execute(f"DELETE FROM admin_accounts WHERE username NOT IN ({marks})", known)

    # -- lookups ----------------------------------------------------------------------------------------
    def get(self, username: str) -> Account | None:
        return self._accounts.get(username)

    def all(self) -> list[Account]:
        return list(self._accounts.values())

    def domain_admin_emails(self, domain: str) -> list[str]:
        return sorted({a.email for a in self._accounts.values() if a.manages_domain(domain)})

    def application_admin_emails(self, application: str) -> list[str]:
        return sorted({a.email for a in self._accounts.values() if a.manages_application(application)})

    def state(self, username: str) -> dict[str, Any]:
        row = self.ctx.store.one("SELECT failed_attempts, blocked_at FROM admin_accounts WHERE username = ?",
                                 (username,))
        if row is None:
            raise not_found(f"no account {username!r}")
        return {"username": username, "failed_attempts": row["failed_attempts"],
                "blocked": row["blocked_at"] is not None,
                "blocked_at": None if row["blocked_at"] is None else self.ctx.clock.instant(row["blocked_at"])}

    # -- logging in -------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Account:
        """The account, or 401 (wrong username or password) or 423 (blocked); counts wrong passwords."""
        account = self._accounts.get(username)
        right = hmac.compare_digest(_digest(password), self._digests.get(username, _DUMMY))
        if account is None:
            raise unauthorized(WRONG_CREDENTIALS)
        if self.ctx.fault("login-any-password"):
            right = True
        limit = self.ctx.settings.login_attempts
        refusal: AdminError | None = None
        store = self.ctx.store
        with store.transaction():   # decide inside, raise outside: a refusal must still store the count
            row = store.one("SELECT failed_attempts, blocked_at FROM admin_accounts WHERE username = ?",
                            (username,))
            if row is None:
                refusal = unauthorized(WRONG_CREDENTIALS)
            elif row["blocked_at"] is not None:
                refusal = blocked(f"account {username!r} is blocked after too many wrong passwords; "
                                  "a domain admin can unblock it")
            elif right:
                store.execute("UPDATE admin_accounts SET failed_attempts = 0 WHERE username = ?", (username,))
            else:
                failed = row["failed_attempts"] + 1
                if failed >= limit and not self.ctx.fault("no-lockout"):
                    store.execute("UPDATE admin_accounts SET failed_attempts = ?, blocked_at = ? "
                                  "WHERE username = ?", (failed, self.ctx.clock.now(), username))
                    refusal = blocked(f"account {username!r} is now blocked after {failed} wrong passwords "
                                      "in a row; a domain admin can unblock it")
                else:
                    store.execute("UPDATE admin_accounts SET failed_attempts = ? WHERE username = ?",
                                  (failed, username))
                    refusal = unauthorized(WRONG_CREDENTIALS)
        if refusal is not None:
            raise refusal
        return account

    def unblock(self, actor: Account, username: str) -> dict[str, Any]:
        if not actor.is_domain_admin:
            raise forbidden("only a domain admin can unblock an account")
        if username not in self._accounts:
            raise not_found(f"no account {username!r}")
        with self.ctx.store.transaction():
            self.ctx.store.execute("UPDATE admin_accounts SET failed_attempts = 0, blocked_at = NULL "
                                   "WHERE username = ?", (username,))
        return self.state(username)

"""The simulated outbox: the e-mails the domain admin sends (seed 001 §4.6, §5.5, §5.6), kept in the database.

Nothing leaves the machine.  A test suite (or a person on the web page) reads the mails addressed to the
logged-in account over `GET /api/outbox`, as the real admins read their mailbox.  Implements
`context.Outbox`, so other components of the voorziening could send through it as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from simulators.kt2.context import Kt2Context


@dataclass(frozen=True)
class Mail:
    seq: int
    sent_at: float
    to: tuple[str, ...]
    subject: str
    body: str


class AdminOutbox:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx

    def send(self, to: list[str], subject: str, body: str) -> None:
        """Store one plain-text e-mail; a mail without recipients is not sent at all."""
        recipients = sorted({address.strip() for address in to if address.strip()})
        if not recipients:
            return
        with self.ctx.store.transaction():
            self.ctx.store.execute("INSERT INTO admin_outbox (sent_at, recipients, subject, body) VALUES (?, ?, ?, ?)",
                                   (self.ctx.clock.now(), json.dumps(recipients), subject, body))

    def addressed_to(self, address: str, limit: int = 100) -> list[Mail]:
        """The newest `limit` mails with `address` among the recipients (case-insensitive), newest first."""
        rows = self.ctx.store.all(
            "SELECT * FROM admin_outbox WHERE EXISTS (SELECT 1 FROM json_each(admin_outbox.recipients) "
            "WHERE lower(json_each.value) = lower(?)) ORDER BY seq DESC LIMIT ?", (address, limit))
        return [_mail(row) for row in rows]

    def count_to(self, address: str) -> int:
        row = self.ctx.store.one(
            "SELECT count(*) FROM admin_outbox WHERE EXISTS (SELECT 1 FROM json_each(admin_outbox.recipients) "
            "WHERE lower(json_each.value) = lower(?))", (address,))
        return int(row[0]) if row else 0

    def all(self) -> list[Mail]:
        """Every mail sent, oldest first (tests and diagnostics)."""
        return [_mail(row) for row in self.ctx.store.all("SELECT * FROM admin_outbox ORDER BY seq")]

    def to_json(self, mail: Mail) -> dict[str, Any]:
        return {"id": mail.seq, "to": list(mail.to), "subject": mail.subject, "body": mail.body,
                "sent_at": self.ctx.clock.instant(mail.sent_at)}


def _mail(row: Any) -> Mail:
    return Mail(row["seq"], row["sent_at"], tuple(json.loads(row["recipients"])), row["subject"], row["body"])

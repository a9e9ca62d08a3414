"""Webhook notifications: tell an application that a message waits in its mailbox.

KT1.3 calls the application's configured URL with an empty POST whose
headers carry the event (`Category`), the message's correlation id
(`KoppeltaalMessageIdentifier`) and the shared secret (`X-Koppeltaal-Secret`);
an application is signalled at most five times.  Delivery runs in the
background so a slow receiver never slows down the Mailbox POST.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx

from simulators.kt1.context import Kt1Context

log = logging.getLogger("ktbench.kt1.webhook")


@dataclass
class Delivery:
    app: str
    url: str
    message_id: int
    attempts: int = 0
    delivered: bool = False
    statuses: list[int | str] = field(default_factory=list)


class WebhookNotifier:
    def __init__(self, ctx: Kt1Context) -> None:
        self.ctx = ctx
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task] = set()
        # One client for all deliveries: building an httpx client costs tens of milliseconds of the event loop.
        self._client: httpx.AsyncClient | None = None

    def schedule(self, notifications: list[dict]) -> None:
        for note in notifications:
            task = asyncio.get_running_loop().create_task(self._deliver(note))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, note: dict) -> None:
        app = self.ctx.data.by_id(note["app"])
        if app is None or not app.webhook_url:
            return
        record = Delivery(app.id, app.webhook_url, note["message_id"])
        self.deliveries.append(record)
        headers = {"Category": note["event"], "KoppeltaalMessageIdentifier": note["identifier"]}
        if app.webhook_secret:
            headers["X-Koppeltaal-Secret"] = app.webhook_secret
        settings = self.ctx.settings
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        client = self._client
        for attempt in range(1, settings.webhook_attempts + 1):
            record.attempts = attempt
            try:
                response = await client.post(app.webhook_url, headers=headers, content=b"")
                record.statuses.append(response.status_code)
                if response.is_success:
                    record.delivered = True
                    return
            except httpx.HTTPError as exc:
                record.statuses.append(type(exc).__name__)
            if attempt < settings.webhook_attempts:
                await asyncio.sleep(settings.webhook_retry_delay_seconds * attempt)
        log.warning("webhook for %s gave up after %d attempts", app.id, record.attempts)

"""The mailbox round both simulated KT1 applications make on a `process-mailbox` action.

Claim with GetNextNewAndClaim until the mailbox is empty (or `max_messages`), handing each message to the
application's own handler.  The `search_instead_of_claim` defect - a realistic shortcut: read the New
messages with a plain search and never claim them - is shared too, so both roles' suites see the same wrong
traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ktbench.driver.contract import Reply, reply_for
from simulators.kt1.actors import DeliveredMessage
from simulators.kt1.actors.kt1_messages import header_summaries


def process_mailbox(kt1: Any, action: dict[str, Any], handle: Callable[[DeliveredMessage], None], *,
                    search_instead_of_claim: bool = False) -> Reply:
    limit = int(action["params"].get("max_messages", 100))
    handled = 0
    if search_instead_of_claim:
        answer = kt1.search(status="New", count=limit)
        for header in (header_summaries(answer.body) if isinstance(answer.body, dict) else [])[:limit]:
            _, message = kt1.message(header.entry_id)
            if message is not None:
                handle(message)
                handled += 1
        return reply_for(action, "done", f"processed {handled} message(s)")
    while handled < limit:
        _, message = kt1.claim()
        if message is None:
            break
        handled += 1
        handle(message)
    return reply_for(action, "done", f"processed {handled} message(s)")

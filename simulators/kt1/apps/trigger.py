"""The driver contract's HTTP trigger endpoint, as a vendor would implement it, for the simulated applications.

`POST /ktbench/trigger` takes one action (ktbench/driver/action.schema.json), checks it with the same
`contract` module the bench uses (a malformed action is a 400 with every problem listed, never a 500), runs it
and answers the reply JSON.  Actions run one at a time (an application under test handles one instruction
after the other, like a tester clicking through it).  Two switches exist for the bench's own tests of the
driver machinery: `silent` answers `done` and does nothing (the scenario must come out BROKEN: no traffic),
`unsupported` answers `unsupported` for the named actions (the scenario must be skipped).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ktbench.driver.contract import Reply, reply_for, schema_problems

log = logging.getLogger("ktbench.kt1.apps")
TRIGGER_PATH = "/ktbench/trigger"
MAX_ACTION_BYTES = 64_000
Handler = Callable[[dict[str, Any]], Reply]


def trigger_routes(handlers: dict[str, Handler], *, role: str, name: str, silent: bool = False,
                   unsupported: frozenset[str] = frozenset()) -> list[Route]:
    lock = threading.Lock()

    def run(action: dict[str, Any]) -> Reply:
        if action["generation"] != "kt1" or action["role"] != role:
            return reply_for(action, "unsupported", f"this is a KT1 {role}, not a {action['generation']} "
                             f"{action['role']}")
        if action["action"] == "ping":
            return reply_for(action, "done", name)
        handler = handlers.get(action["action"])
        if handler is None or action["action"] in unsupported:
            return reply_for(action, "unsupported", f"the simulated {role} does not do {action['action']!r}")
        if silent:
            return reply_for(action, "done", "pretended to act (silent mode)")
        with lock:
            try:
                return handler(action)
            except Exception as exc:  # the application failed to act: say so in the reply, never a 500
                log.warning("action %s failed: %s", action["action"], exc)
                return reply_for(action, "refused", f"the {role} could not {action['action']}: "
                                 f"{type(exc).__name__}: {str(exc)[:300]}")

    async def trigger(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_ACTION_BYTES:
            return JSONResponse({"error": "action too large"}, status_code=413)
        try:
            action = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        problems = schema_problems(action, "action")
        if problems:
            return JSONResponse({"error": "the action breaks action.schema.json", "problems": problems},
                                status_code=400)
        reply = await run_in_threadpool(run, action)
        return JSONResponse(reply.to_json())

    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"application": name, "role": role, "generation": "kt1", "trigger": TRIGGER_PATH})

    return [Route(TRIGGER_PATH, trigger, methods=["POST"]), Route("/", home, methods=["GET"])]

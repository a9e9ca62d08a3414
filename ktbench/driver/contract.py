"""The driver contract's messages: building actions, and checking actions and replies against the schemas.

Both sides use this module: the bench before it sends an action (a malformed one is a bench error, never the
application's fault) and when it reads a reply (a malformed reply is the application's driver being wrong: a
configuration verdict for the run, so the scenario is broken with the schema's complaint, not failed).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator

from ktbench.core.errors import BenchError

CONTRACT_VERSION = 1
HERE = Path(__file__).resolve().parent
ACTION_SCHEMA = HERE / "action.schema.json"
REPLY_SCHEMA = HERE / "reply.schema.json"
ReplyStatus = Literal["done", "accepted", "unsupported", "refused"]


class DriverError(BenchError):
    """The driver could not deliver an action or its reply broke the contract: the scenario is broken."""


@cache
def _validator(path: Path) -> Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(message: Any, which: Literal["action", "reply"]) -> list[str]:
    """Every way `message` breaks its schema, each as `location: complaint` (empty: it conforms)."""
    validator = _validator(ACTION_SCHEMA if which == "action" else REPLY_SCHEMA)
    problems = []
    for error in sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path)):
        location = "/".join(str(p) for p in error.absolute_path) or "(root)"
        problems.append(f"{location}: {error.message}")
    return problems


def action_names() -> tuple[str, ...]:
    schema = json.loads(ACTION_SCHEMA.read_text(encoding="utf-8"))
    return tuple(schema["properties"]["action"]["enum"])


def make_action(action: str, *, generation: str, role: str, instruction: str,
                params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new action message; raises BenchError when the bench itself would send a malformed one."""
    message = {"ktbench_driver": CONTRACT_VERSION, "id": f"act-{uuid.uuid4().hex}", "action": action,
               "generation": generation, "role": role, "params": dict(params or {}), "instruction": instruction}
    problems = schema_problems(message, "action")
    if problems:
        raise BenchError(f"the bench built a driver action that breaks its own schema: {'; '.join(problems)}")
    return message


@dataclass(frozen=True)
class Reply:
    id: str
    status: ReplyStatus
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ktbench_driver": CONTRACT_VERSION, "id": self.id, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        return body


def parse_reply(raw: str | bytes, action: dict[str, Any], source: str) -> Reply:
    """The application's reply to `action`, checked; DriverError naming `source` when it breaks the contract."""
    try:
        message = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise DriverError(f"{source} did not answer with JSON (got {text[:120]!r})") from None
    problems = schema_problems(message, "reply")
    if problems:
        raise DriverError(f"{source} answered with a reply that breaks reply.schema.json: {'; '.join(problems)}")
    if message["id"] != action["id"]:
        raise DriverError(f"{source} answered action {action['id']} with the reply of {message['id']}")
    return Reply(id=message["id"], status=message["status"], detail=message.get("detail", ""))


def reply_for(action: dict[str, Any], status: ReplyStatus, detail: str = "") -> Reply:
    return Reply(id=str(action.get("id", "")), status=status, detail=detail)

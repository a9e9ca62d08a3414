"""Three interchangeable ways to deliver an action to the application under test.

- `HttpTrigger`: POST the action as JSON to a URL the vendor implements; the 200 body is the reply.
- `CommandHook`: run a command with the action as JSON on stdin; its stdout is the reply.
- `Interactive`: print the instruction for a person (and the action as one machine-readable line, so a
  script can stand in for the person) and answer `accepted`: the scenario then waits for the traffic.

Whatever the driver, the verdict comes from the traffic the action causes at the bench's servers, never from
the reply: a reply only says whether the application took the action on (`unsupported` skips the scenario).
Delivery problems raise `DriverError` (a bench/configuration problem: the scenario is broken, not failed).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ktbench.driver.contract import DriverError, Reply, parse_reply, reply_for

PROMPT_PREFIX = "ktbench-action: "   # the machine-readable line of an interactive prompt


class Driver(Protocol):
    description: str

    def perform(self, action: dict[str, Any]) -> Reply: ...

    def close(self) -> None: ...


@dataclass
class HttpTrigger:
    url: str
    timeout: float = 30.0
    client: httpx.Client | None = None     # the session's one client; one of its own when not given
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._own = self.client is None
        if self.client is None:
            self.client = httpx.Client(timeout=self.timeout)

    @property
    def description(self) -> str:
        return f"the trigger endpoint {self.url}"

    def perform(self, action: dict[str, Any]) -> Reply:
        assert self.client is not None
        try:
            answer = self.client.post(self.url, json=action, headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DriverError(f"{self.description} could not be reached ({type(exc).__name__}: {exc})") from None
        if answer.status_code != 200:
            raise DriverError(f"{self.description} answered action {action['action']!r} with HTTP "
                              f"{answer.status_code} (the contract wants 200 and a reply)")
        return parse_reply(answer.content, action, self.description)

    def close(self) -> None:
        if self._own and self.client is not None:
            self.client.close()


@dataclass
class CommandHook:
    command: Sequence[str]
    timeout: float = 60.0
    cwd: str | None = None

    @property
    def description(self) -> str:
        return f"the command hook {shlex.join(self.command)}"

    def perform(self, action: dict[str, Any]) -> Reply:
        try:
            done = subprocess.run(list(self.command), input=json.dumps(action), capture_output=True, text=True,
                                  timeout=self.timeout, cwd=self.cwd, check=False)
        except FileNotFoundError:
            raise DriverError(f"{self.description}: no such command") from None
        except PermissionError:
            raise DriverError(f"{self.description}: not executable") from None
        except subprocess.TimeoutExpired:
            raise DriverError(f"{self.description} did not finish action {action['action']!r} within "
                              f"{self.timeout:g} s") from None
        if done.returncode != 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or [""]
            raise DriverError(f"{self.description} exited with {done.returncode} on action {action['action']!r}"
                              + (f": {tail[0][:200]}" if tail[0] else ""))
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if not lines:
            raise DriverError(f"{self.description} printed no reply for action {action['action']!r}")
        return parse_reply(lines[-1], action, self.description)

    def close(self) -> None:
        pass


@dataclass
class Interactive:
    """A person carries the action out; `say` prints (the runner passes one that bypasses pytest's capture)."""

    say: Callable[[str], None]

    description: str = "the person at the console (interactive mode)"

    def perform(self, action: dict[str, Any]) -> Reply:
        if action["action"] == "ping":
            return reply_for(action, "done")
        self.say(f"\n>>> Please make the {action['generation'].upper()} {action['role']} act now: "
                 f"{action['instruction']}\n{PROMPT_PREFIX}{json.dumps(action, separators=(',', ':'))}\n")
        return reply_for(action, "accepted", "instructed a person; waiting for the traffic")

    def close(self) -> None:
        pass


def driver_for(settings: object, say: Callable[[str], None], client: httpx.Client | None = None) -> Driver:
    """The driver a target's settings (an `AppTargetSettings`) ask for."""
    kind = getattr(settings, "driver", "interactive")
    timeout = float(getattr(settings, "action_timeout_seconds", 30.0))
    if kind == "http":
        return HttpTrigger(str(getattr(settings, "trigger_url")), timeout=timeout, client=client)
    if kind == "command":
        return CommandHook(tuple(getattr(settings, "command")), timeout=timeout)
    return Interactive(say=say)

"""One scenario's view of the application-under-test session: ask the application to act, wait for its
traffic, publish what arrived, and find the application's own requests among the recorded ones.

The bench never sleeps waiting for a vendor's application: `wait` blocks on the recording until the
expected exchange arrives or `traffic_timeout_seconds` pass (then `NoTraffic`: the scenario is broken, not
failed).  Every step publishes what arrived since the last one (`flush`), so the exchanges land on the step
in the report, and live validation judges the FHIR resources the application sent (sender: the target).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from ktbench.core.errors import PreconditionFailed
from ktbench.driver.contract import make_action
from ktbench.http.client import validation_event
from ktbench.http.inbound import InboundExchange, InboundLog, publish
from steps.kt2_apps.bench import BENCH_HEADER, AppBench

FHIR_TYPES = ("application/fhir+json", "application/json")


@dataclass
class AppWorld:
    bench: AppBench
    faker: Any
    events: Any
    state: Any                                   # the run state (redactor, validator, policy)
    server_mark: int = 0
    actors_mark: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    _published: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.server_mark = self.bench.server_log.mark()
        self.actors_mark = self.bench.actors_log.mark()
        self._published = {"server": self.server_mark, "actors": self.actors_mark}

    @property
    def settings(self) -> Any:
        return self.bench.settings

    # -- the driver -------------------------------------------------------------------------------------
    def act(self, action: str, instruction: str, **params: Any) -> None:
        """Ask the application to do `action`; `unsupported` skips the scenario (naming the action)."""
        message = make_action(action, generation="kt2", role=self.bench.role, instruction=instruction,
                              params=params)
        reply = self.bench.driver.perform(message)
        if reply.status == "unsupported":
            pytest.skip(f"the application does not support the driver action {action!r}"
                        + (f": {reply.detail}" if reply.detail else ""))
        self.notes.setdefault("replies", []).append((action, reply.status, reply.detail))

    # -- the recording ------------------------------------------------------------------------------------
    def is_app(self, item: InboundExchange) -> bool:
        return item.header(BENCH_HEADER) is None

    def wait(self, predicate: Callable[[InboundExchange], bool], what: str, *, log: str = "server",
             after: int | None = None) -> InboundExchange:
        logged: InboundLog = self.bench.server_log if log == "server" else self.bench.actors_log
        start = after if after is not None else (self.server_mark if log == "server" else self.actors_mark)
        try:
            return logged.wait_for(lambda i: self.is_app(i) and predicate(i),
                                   timeout=self.settings.traffic_timeout_seconds, what=what, after=start)
        finally:
            self.flush()

    def created(self, rtype: str, what: str) -> InboundExchange:
        """The application's create of a `rtype` at the FHIR base (POST <base>/<rtype>), waited for."""
        return self.wait(lambda i: is_fhir(i, "POST", rtype) and urlsplit(i.path).path.endswith(f"/fhir/r4/{rtype}"),
                         what)

    def app_requests(self, predicate: Callable[[InboundExchange], bool] = lambda i: True, *, log: str = "server",
                     since: int | None = None) -> list[InboundExchange]:
        logged = self.bench.server_log if log == "server" else self.bench.actors_log
        start = since if since is not None else (self.server_mark if log == "server" else self.actors_mark)
        return [i for i in logged.since(start) if self.is_app(i) and predicate(i)]

    def flush(self) -> None:
        """Publish (and validate) what arrived since the last flush, from this step's thread."""
        for name, logged, base in (("server", self.bench.server_log, self.bench.server_url),
                                   ("actors", self.bench.actors_log, self.bench.host.base_url)):
            items = logged.since(self._published[name])
            if not items:
                continue
            self._published[name] += len(items)
            publish(items, self.events, self.state.redactor, base=base, role=self.bench.role)
            if name == "server":
                for item in items:
                    if self.is_app(item):
                        self._validate(item)

    def _validate(self, item: InboundExchange) -> None:
        validator = self.state.validator
        content_type = item.header("content-type") or ""
        if validator is None or not item.request_body or not any(t in content_type for t in FHIR_TYPES):
            return
        if "/fhir/r4" not in item.path:
            return
        subject = f"request {item.method} {item.path}"
        try:
            result = validator(item.request_body, content_type)
        except Exception:  # noqa: BLE001  (a validator crash must not break the step)
            return
        self.events.emit(validation_event(subject, content_type, result, self.state.redactor,
                                          direction="request", sender="target"))


def given_ok(condition: Any, req_id: str, message: str) -> None:
    """A Given step's check: when the application did not get there the scenario is BROKEN (it could not reach
    what it verifies), even when it carries `req_id`; the requirement's own scenarios judge it."""
    if not condition:
        raise PreconditionFailed(req_id, message)


# -- reading recorded exchanges --------------------------------------------------------------------------------
def form_of(item: InboundExchange) -> dict[str, str]:
    try:
        return dict(parse_qsl(item.request_body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return {}


def query_of(item: InboundExchange) -> dict[str, str]:
    return dict(parse_qsl(item.query, keep_blank_values=True))


def json_of(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fhir_path(item: InboundExchange) -> str:
    """The path under the FHIR base ("Patient", "Task/12"), or "" for other endpoints."""
    marker = "/fhir/r4/"
    path = urlsplit(item.path).path
    return path.split(marker, 1)[1] if marker in path else ""


def is_fhir(item: InboundExchange, method: str, rtype: str) -> bool:
    path = fhir_path(item)
    return item.method == method and (path == rtype or path.startswith(rtype + "/"))

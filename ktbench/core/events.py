"""The one event stream of a run; every report writer is a subscriber.

Following Schemathesis' engine -> events -> writers design, nothing in the bench
writes a report directly: the pytest plugin and the HTTP client *emit* small
immutable events, and writers (Allure attachments, the console summary, the
JSON summary, the xdist relay) *subscribe*.  A new output format is one more
subscriber; no step or client code changes.

Events are plain frozen dataclasses holding only built-in values (str, int,
float, tuples), already redacted, so they can be logged, serialised to JSON or
shipped from an xdist worker to the controller (`to_dict` / `event_from_dict`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar

Outcome = Literal["passed", "failed", "broken", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "broken", "skipped")


def _now() -> float:
    return time.time()


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base class; `at` is the wall-clock time the event was created."""

    at: float = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    suite: str
    target_name: str
    target_url: str
    target_kind: str
    embedded: bool = False


@dataclass(frozen=True, kw_only=True)
class ScenarioStarted(Event):
    nodeid: str
    name: str
    feature: str
    tags: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    nodeid: str
    keyword: str
    text: str


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    nodeid: str
    keyword: str
    text: str
    outcome: Outcome
    message: str = ""
    duration: float = 0.0


@dataclass(frozen=True, kw_only=True)
class HttpExchange(Event):
    """One request/response pair as sent on the wire; headers, URL and bodies are already redacted."""

    method: str
    url: str
    status: int | None  # None: no response (transport error, see `error`)
    request_headers: tuple[tuple[str, str], ...] = ()
    request_body: str = ""
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str = ""
    elapsed: float = 0.0
    role: str | None = None
    error: str | None = None

    def header(self, name: str, *, response: bool = True) -> str | None:
        headers = self.response_headers if response else self.request_headers
        lname = name.lower()
        return next((v for k, v in headers if k.lower() == lname), None)


@dataclass(frozen=True, kw_only=True)
class Finding:
    severity: str  # "error" | "warning" | "information" (after the run's validation policy)
    rule: str
    location: str
    message: str
    original_severity: str | None = None  # the validator's severity, when the policy changed it


@dataclass(frozen=True, kw_only=True)
class ValidationReported(Event):
    """The validator's verdict on one message (the request or the response of the preceding HttpExchange).

    `direction` says which side of the exchange was validated ("request" or "response", or "" for a check
    a step made on its own); `sender` says who sent that message.  Verdicts key on the sender, not the
    direction: when the bench tests a server its requests are its own and the answers the target's; when it
    tests an application (and plays the server) it is the other way round.
    """

    subject: str  # e.g. "response to GET http://.../metadata"
    content_type: str | None
    ok: bool
    findings: tuple[Finding, ...] = ()
    direction: str = ""
    # who sent the validated message: "target" (its findings can fail a scenario) or "bench" (its findings
    # make a scenario broken: the bench built a bad message); "" for a check a step made on its own
    sender: str = ""

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity in ("error", "fatal"))


@dataclass(frozen=True, kw_only=True)
class ScenarioFinished(Event):
    nodeid: str
    name: str
    feature: str
    outcome: Outcome
    requirements: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    message: str = ""
    error_type: str | None = None  # exception class name for failed/broken scenarios
    duration: float = 0.0
    http_exchanges: int = 0
    validation_errors: int = 0
    # the one requirement a failed scenario's failing check names (one of `requirements`, or the suite's
    # profile requirement); None for other outcomes
    failed_requirement: str | None = None
    # requirements at least one check of this scenario verified before it ended (a failed or broken
    # scenario does not blame, nor credit, the requirements it never got to)
    checked_requirements: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    duration: float
    counts: tuple[tuple[str, int], ...]  # ((outcome, n), ...) in OUTCOMES order


EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (RunStarted, ScenarioStarted, StepStarted, StepFinished, HttpExchange, ValidationReported,
                ScenarioFinished, RunFinished)
}


def to_dict(event: Event) -> dict[str, Any]:
    """A JSON/execnet-friendly dict (tuples become lists) tagged with the event type."""
    data = asdict(event)
    data["event"] = type(event).__name__
    return _lists(data)


def _lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of `to_dict`."""
    data = dict(data)
    cls = EVENT_TYPES[data.pop("event")]
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "findings":
            value = tuple(Finding(**item) for item in value)
        else:
            value = _tuples(value)
        kwargs[f.name] = value
    return cls(**kwargs)


E = TypeVar("E", bound=Event)
Subscriber = Callable[[Any], None]


class EventStream:
    """Synchronous publish/subscribe: `emit` hands the event to each subscriber, in subscription order.

    Delivery is synchronous on purpose: an Allure attachment must land on the
    step that is running *now*.  A subscriber that raises propagates its error
    to the emitter - a broken writer is a bench bug and must not go unnoticed.
    """

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, tuple[type[Event], ...]]] = []

    def subscribe(self, callback: Subscriber, *types: type[Event]) -> Callable[[], None]:
        """Deliver events (only those of `types`, if given) to `callback`; returns an unsubscribe function."""
        entry = (callback, tuple(types))
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for callback, types in list(self._subscribers):
            if not types or isinstance(event, types):
                callback(event)

    def __len__(self) -> int:
        return len(self._subscribers)

    def __repr__(self) -> str:
        return f"<EventStream subscribers={len(self._subscribers)}>"


class EventRecorder:
    """A subscriber that keeps every event; handy in tests and for the xdist relay."""

    def __init__(self, stream: EventStream | None = None, *types: type[Event]) -> None:
        self.events: list[Event] = []
        if stream is not None:
            stream.subscribe(self, *types)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

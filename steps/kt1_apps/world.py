"""One scenario of an application-under-test suite: ask the application to act, wait for and read its traffic.

The world delivers driver actions (an `unsupported` reply skips the scenario, naming the action), waits for
the application's requests at the bench's server (NoTraffic: the scenario is BROKEN, the application was not
tested), publishes every request the application sent on the scenario's event stream - redacted, and with
its FHIR bodies validated as the target's messages - and parses recorded exchanges for the checks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ktbench.driver.contract import Reply, make_action
from ktbench.fhir.dstu1.constants import (
    CLAIM_QUERY,
    DOMAIN_TAG_PREFIX,
    EXT_PATIENT,
    EXT_PROCESSING_STATUS,
    EXT_PS_EXCEPTION,
    EXT_PS_STATUS,
    MAILBOX_PATH,
    MESSAGE_HEADER_PATH,
)
from ktbench.fhir.dstu1.links import entry_self_link, strip_history, version_of
from ktbench.http.client import validation_event
from ktbench.http.inbound import InboundExchange, NoTraffic, publish
from simulators.kt1.actors import People
from steps.kt1_apps.bench import AppBench

GRACE_AFTER_DONE = 0.5   # a `done`/`refused` reply: the application has finished; wait this long for stragglers


def parse_body(raw: bytes, content_type: str | None) -> Any:
    if not raw.strip():
        return None
    try:
        if "xml" in (content_type or "").lower() or raw.lstrip()[:1] == b"<":
            from ktbench.fhir.dstu1.xmlcodec import parse_xml
            return parse_xml(raw)
        return json.loads(raw)
    except Exception:
        return None


def basic_user(item: InboundExchange) -> str | None:
    value = item.header("authorization") or ""
    if not value.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(value[6:]).decode("utf-8").partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class Message:
    """A Mailbox POST as recorded: what the application sent and what the server answered."""

    item: InboundExchange
    bundle: dict[str, Any]
    answer: Any

    @classmethod
    def of(cls, item: InboundExchange) -> Message | None:
        bundle = parse_body(item.request_body, item.header("content-type"))
        if not isinstance(bundle, dict):
            return None
        return cls(item, bundle, parse_body(item.response_body, item.header("content-type", response=True)))

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [e for e in self.bundle.get("entry") or [] if isinstance(e, dict)]

    @property
    def header(self) -> dict[str, Any]:
        first = self.entries[0].get("content") if self.entries else None
        return first if isinstance(first, dict) and first.get("resourceType") == "MessageHeader" else {}

    @property
    def event(self) -> str | None:
        event = self.header.get("event")
        return event.get("code") if isinstance(event, dict) else None

    @property
    def data_ref(self) -> str | None:
        data = self.header.get("data")
        ref = data[0].get("reference") if isinstance(data, list) and data and isinstance(data[0], dict) else None
        return ref if isinstance(ref, str) else None

    @property
    def focal_url(self) -> str | None:
        return strip_history(self.data_ref) if self.data_ref else None

    def entry(self, url: str | None) -> dict[str, Any] | None:
        if not url:
            return None
        for entry in self.entries[1:]:
            link = entry_self_link(entry) or ""
            if entry.get("id") == url or strip_history(link) == url:
                return entry
        return None

    @property
    def focal(self) -> dict[str, Any]:
        entry = self.entry(self.focal_url)
        content = entry.get("content") if entry else None
        return content if isinstance(content, dict) else {}

    @property
    def focal_version(self) -> str | None:
        """The version the message quotes for its focal resource (self link, else MessageHeader.data)."""
        entry = self.entry(self.focal_url)
        link = entry_self_link(entry) if entry else None
        return version_of(link) if link else (version_of(self.data_ref) if self.data_ref else None)

    @property
    def patient_extension(self) -> str | None:
        for ext in self.header.get("extension") or []:
            if isinstance(ext, dict) and ext.get("url") == EXT_PATIENT:
                ref = (ext.get("valueResource") or {}).get("reference")
                return strip_history(ref) if isinstance(ref, str) else None
        return None

    @property
    def domains(self) -> list[str]:
        return [c.get("term", "")[len(DOMAIN_TAG_PREFIX):] for c in self.bundle.get("category") or []
                if isinstance(c, dict) and str(c.get("term", "")).startswith(DOMAIN_TAG_PREFIX)]

    @property
    def accepted(self) -> bool:
        return self.item.status == 200

    def minted(self) -> dict[str, str]:
        """History-less URL -> version, from the server's reply."""
        found: dict[str, str] = {}
        if not isinstance(self.answer, dict):
            return found
        for entry in self.answer.get("entry") or []:
            content = entry.get("content") if isinstance(entry, dict) else None
            if isinstance(content, dict) and content.get("resourceType") == "MessageHeader":
                for ref in content.get("data") or []:
                    ref = ref.get("reference") if isinstance(ref, dict) else None
                    if isinstance(ref, str) and version_of(ref):
                        found[strip_history(ref)] = version_of(ref) or ""
        return found

    def refusal(self) -> str:
        details = []
        if isinstance(self.answer, dict):
            details = [str(i.get("details", "")) for i in self.answer.get("issue") or [] if isinstance(i, dict)]
        return f"HTTP {self.item.status}" + (f": {'; '.join(details)}" if details else "")


def ack_status(body: Any) -> tuple[str | None, str | None]:
    """(ProcessingStatus, exception) of an ack body."""
    if not isinstance(body, dict):
        return None, None
    for ext in body.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == EXT_PROCESSING_STATUS:
            values = {s.get("url"): s.get("valueCode") or s.get("valueString") for s in ext.get("extension") or []
                      if isinstance(s, dict)}
            return values.get(EXT_PS_STATUS), values.get(EXT_PS_EXCEPTION)
    return None, None


def query(item: InboundExchange) -> dict[str, str]:
    values = {k: v[0] for k, v in parse_qs(item.query, keep_blank_values=True).items()}
    if item.method == "POST" and "form" in (item.header("content-type") or ""):
        values.update({k: v[0] for k, v in parse_qs(item.request_body.decode("utf-8", "replace")).items()})
    return values


@dataclass
class AppWorld:
    bench: AppBench
    driver: Any
    people: People
    events: Any
    state: Any                         # the runner's RunState (redactor, validator, policy)
    published: set[int] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)
    mark: int = 0
    last_reply: Reply | None = None

    @property
    def settings(self) -> Any:
        return self.bench.target.settings

    @property
    def role(self) -> str:
        return self.bench.role

    # -- the application's traffic -----------------------------------------------------------------
    def from_app(self, item: InboundExchange) -> bool:
        return basic_user(item) in (self.bench.creds.username, self.bench.creds.app_id)

    def app_items(self, after: int | None = None) -> list[InboundExchange]:
        return [i for i in self.bench.log.since(self.mark if after is None else after) if self.from_app(i)]

    def act(self, action: str, instruction: str, **params: Any) -> Reply:
        """Ask the application to act; the traffic it causes is looked for from here on."""
        self.sync()
        self.mark = self.bench.log.mark()
        message = make_action(action, generation="kt1", role=self.role, instruction=instruction, params=params)
        reply = self.driver.perform(message)
        if reply.status == "unsupported":
            pytest.skip(f"the {self.role} does not support the driver action {action!r}"
                        + (f" ({reply.detail})" if reply.detail else ""))
        self.last_reply = reply
        return reply

    def wait(self, predicate: Callable[[InboundExchange], bool], what: str, *, grace: bool = False) -> InboundExchange:
        """The first request of the application since the action that matches; NoTraffic when none comes.

        `grace`: a follow-up the application may legitimately have left out (a resend, an ack): wait only a
        moment after a `done` reply, and answer NoTraffic for the check to turn into a failure.
        """
        timeout = float(self.settings.traffic_timeout_seconds)
        if grace and self.last_reply is not None and self.last_reply.status != "accepted":
            timeout = min(timeout, GRACE_AFTER_DONE)
        try:
            return self.bench.log.wait_for(lambda i: self.from_app(i) and predicate(i), timeout=timeout,
                                           what=what, after=self.mark)
        finally:
            self.sync()

    def maybe(self, predicate: Callable[[InboundExchange], bool], what: str) -> InboundExchange | None:
        try:
            return self.wait(predicate, what, grace=True)
        except NoTraffic:
            return None

    def sync(self) -> None:
        """Publish (and validate) every request of the application not published yet."""
        fresh = [i for i in self.bench.log.since(0) if i.seq not in self.published and self.from_app(i)]
        if not fresh:
            return
        self.published.update(i.seq for i in fresh)
        publish(fresh, self.events, self.state.redactor, base=self.bench.server_url,
                role=f"{self.role} under test")
        if self.state.validator is None:
            return
        policy = self.state.policy.review if self.state.policy.overrides else None
        for item in fresh:
            ctype = item.header("content-type")
            if "/FHIR/" not in item.path or not item.request_body or not any(
                    t in (ctype or "").lower() for t in ("json", "xml")):
                continue
            subject = f"request {item.method} {self.bench.server_url}{item.path} (sent by the {self.role})"
            try:
                result = self.state.validator(item.request_body, ctype)
            except Exception:   # a validator crash must not hide the scenario's own verdict
                continue
            self.events.emit(validation_event(subject, ctype, result, self.state.redactor, policy=policy,
                                              direction="request", sender="target"))

    # -- recorded exchanges --------------------------------------------------------------------------
    def messages(self, event: str, after: int | None = None) -> list[Message]:
        found = []
        for item in self.app_items(after):
            if item.method == "POST" and item.path.endswith(MAILBOX_PATH):
                message = Message.of(item)
                if message is not None and message.event == event:
                    found.append(message)
        return found

    def wait_message(self, event: str, what: str) -> Message:
        item = self.wait(lambda i: i.method == "POST" and i.path.endswith(MAILBOX_PATH)
                         and (Message.of(i) or _NONE).event == event, what)
        message = Message.of(item)
        assert message is not None
        return message

    def delivered_copies(self, identifier: str, after: int | None = None) -> list[tuple[InboundExchange, str, str | None]]:
        """Where the application received message `identifier`: (exchange, history-less URL path, self link)."""
        found = []
        for item in self.app_items(after):
            if item.method != "GET" or "/MessageHeader/_search" not in item.path:
                continue
            body = parse_body(item.response_body, item.header("content-type", response=True))
            for entry in (body.get("entry") or []) if isinstance(body, dict) else []:
                content = entry.get("content") if isinstance(entry, dict) else None
                if isinstance(content, dict) and content.get("identifier") == identifier:
                    link = entry_self_link(entry)
                    found.append((item, urlsplit(strip_history(str(entry.get("id") or link or ""))).path, link))
        return found

    @staticmethod
    def is_claim(item: InboundExchange) -> bool:
        return query(item).get("_query") == CLAIM_QUERY

    def ack_of(self, identifier: str) -> tuple[InboundExchange | None, list]:
        """The application's ack of message `identifier` (waiting a moment), and where it received it."""
        def matches(item: InboundExchange) -> bool:
            if item.method != "PUT" or MESSAGE_HEADER_PATH + "/" not in item.path:
                return False
            paths = {path for _, path, _ in self.delivered_copies(identifier)}
            body = parse_body(item.request_body, item.header("content-type"))
            return strip_history(item.path) in paths or (isinstance(body, dict)
                                                         and body.get("identifier") == identifier)
        self.wait(lambda i: MESSAGE_HEADER_PATH in i.path, "read its mailbox")
        ack = self.maybe(matches, f"ack message {identifier}")
        return ack, self.delivered_copies(identifier)


class _None:
    event = None


_NONE = _None()

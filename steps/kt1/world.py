"""One KT1 scenario's world: the simulated applications and what they have sent, claimed and seen.

A fresh `Kt1World` per scenario (fixture `kt1`) keeps scenarios independent
under pytest-xdist: each one creates its own patient, names its resources
with URLs unique to the run, and filters every claim and search by that
patient, so two scenarios never touch each other's messages even against one
shared server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ktbench.core.errors import BenchError
from ktbench.core.secret import Secret
from ktbench.targets.model import Target
from simulators.kt1.actors import DeliveredMessage, Kt1Application, Kt1Module, Kt1Portal, LocalResource, People
from simulators.kt1.actors.kt1_application import Answer, SendResult, TokenSet

# How steps name the simulated applications -> target roles (ktbench/targets.py KNOWN_ROLES).
ACTOR_ROLES = {
    "portal": "portal",
    "module": "module",
    "observer": "observer",
    "other domain's portal": "other-domain-portal",
    "other domain's module": "other-domain-module",
}
ACTOR = r"(?P<actor>portal|module|observer|other domain's portal|other domain's module)"
PORTAL_ROLES = ("portal", "observer", "other-domain-portal")
DOCUMENTED_MAX_CLAIM_EXPIRIES = 5  # 003 "Bericht ophalen": MaximumRetriesExceeded after at most 5 attempts
MAX_WAIT_SECONDS = 10.0            # the longest timer a suite run waits for ...
SLOW_MAX_WAIT_SECONDS = 1800.0     # ... and with --slow (real servers' claim timeouts are minutes)


@dataclass(frozen=True)
class Kt1Options:
    """What the target declares beyond URL and credentials; None = not offered (scenarios skip)."""

    claim_timeout: float | None
    max_claim_expiries: int
    webhook_receiver_url: str | None
    webhook_role: str | None
    code_seconds: float | None
    token_seconds: float | None


def target_options(target: Target) -> Kt1Options:
    """What the target declares in its settings (ktbench.generations.kt1.settings); None where it does not."""
    return Kt1Options(
        claim_timeout=target.setting("claim_timeout_seconds"),
        max_claim_expiries=int(target.setting("max_claim_expiries", DOCUMENTED_MAX_CLAIM_EXPIRIES)),
        webhook_receiver_url=target.setting("webhook_receiver_url"),
        webhook_role=target.setting("webhook_role"),
        code_seconds=target.setting("authorization_code_seconds"),
        token_seconds=target.setting("access_token_seconds"),
    )


@dataclass
class SsoState:
    launch: Answer | None = None
    launch_ref: str | None = None           # launch id or activation code
    redirect_uri: str = "https://module.ktbench.test/after-auth"
    state: str | None = None
    authorize: Answer | None = None
    code: Secret | None = field(default=None, repr=False)
    tokens: TokenSet | None = None
    old_tokens: TokenSet | None = None
    token_attempt: TokenSet | None = None
    mobile: Answer | None = None

    def __repr__(self) -> str:
        return f"<SsoState tokens={'yes' if self.tokens else 'no'}>"


@dataclass
class Kt1World:
    target: Target
    http: Any
    people: People
    options: Kt1Options
    actors: dict[str, Kt1Application] = field(default_factory=dict)
    # the scenario's people and care plan
    patient: LocalResource | None = None
    other_patient: LocalResource | None = None
    practitioner: LocalResource | None = None
    careplan: LocalResource | None = None
    activity_id: str | None = None
    module_careplan: LocalResource | None = None
    portal_change: str | None = None
    sender_of_patient: str | None = None
    # messages
    sends: dict[str, list[SendResult]] = field(default_factory=dict)   # by purpose: careplan, user message, ...
    last_send: SendResult | None = None
    last_sender: str | None = None
    rejected: SendResult | None = None
    claim_answer: Answer | None = None
    claimed: DeliveredMessage | None = None
    ack_answer: Answer | None = None
    claimed_careplan: DeliveredMessage | None = None
    original_header: dict[str, Any] | None = None
    answers: list[Answer] = field(default_factory=list)
    lookup: DeliveredMessage | None = None
    page_size: int | None = None
    new_name: str | None = None
    # ActivityDefinitions
    activity_definition: dict[str, Any] | None = None
    activity_links: list[str] = field(default_factory=list)
    other_activity_identifier: str | None = None
    listed: list[dict[str, Any]] = field(default_factory=list)
    sso: SsoState = field(default_factory=SsoState)
    slow: bool = False                       # --slow: wait for long timers too

    def __repr__(self) -> str:  # step parameters end up in reports: keep this short and secret-free
        return f"<Kt1World target={self.target.name!r}>"

    # -- actors -----------------------------------------------------------------------------------
    def actor(self, name: str) -> Kt1Application:
        role = ACTOR_ROLES.get(name, name)
        if role not in self.actors:
            cls = Kt1Portal if role in PORTAL_ROLES else Kt1Module
            creds = self.target.role(role)
            if not creds.domain:  # a role without its own domain belongs to the target's
                creds = creds.model_copy(update={"domain": self.target.setting("domain", "")})
            self.actors[role] = cls(self.http, self.target.url, creds)
        return self.actors[role]

    @property
    def portal(self) -> Kt1Portal:
        return self.actor("portal")  # type: ignore[return-value]

    @property
    def module(self) -> Kt1Module:
        return self.actor("module")  # type: ignore[return-value]

    # -- what the target declares -------------------------------------------------------------------
    def setting_key(self, *names: str) -> str:
        """How a skip reason names the targets-file keys that would let the scenario run."""
        return " and ".join(f"[targets.{self.target.name}] {name}" for name in names)

    @property
    def max_wait(self) -> float:
        return SLOW_MAX_WAIT_SECONDS if self.slow else MAX_WAIT_SECONDS

    def skip_unless_timer(self, seconds: float | None, key: str, what: str) -> None:
        """Skip (naming the key, or --slow) unless the target declares a timer short enough to wait for."""
        if seconds is None:
            pytest.skip(f"the target declares no {what}: set {self.setting_key(key)} to observe it")
        if seconds > self.max_wait:
            pytest.skip(f"the target's {what} ({seconds:g} s) is longer than a suite run waits "
                        f"({self.max_wait:g} s); run with --slow to wait for it")

    # -- bookkeeping ------------------------------------------------------------------------------
    def remember(self, purpose: str, result: SendResult) -> SendResult:
        self.sends.setdefault(purpose, []).append(result)
        self.last_send = result
        return result

    def sent(self, purpose: str, index: int = 0) -> SendResult:
        results = self.sends.get(purpose) or []
        if not results:
            raise BenchError(f"the scenario has not sent a {purpose} message yet (check the Given steps)")
        return results[index]

    def need(self, value: Any, what: str) -> Any:
        if value is None:
            raise BenchError(f"this step needs {what}, which no earlier step provided")
        return value

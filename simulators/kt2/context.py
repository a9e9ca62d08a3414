"""What one running voorziening shares, and the narrow interfaces its components use to talk to each other.

The FHIR store, the authorisation server and the domain admin are separate packages (simulators/kt2/fhir,
auth, admin); they meet only through the services named here, wired together by `app.create_app`.  That
keeps each one testable alone and makes the seams visible:

- the store asks the authorisation server who a Bearer token belongs to (`BearerVerifier`);
- the authorisation server and the domain admin read and create resources as the voorziening itself
  (`SystemFhir`: Devices on approval, the Patient an HTI `sub` names), write AuditEvents (`AuditSink`);
- the authorisation server asks the domain admin about application instances (`Registry`);
- the domain admin sends e-mails to the simulated `Outbox`.

Several voorzieningen (one per fault, one per test) can live in one process: nothing is global.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from simulators.kt2.data import ServerData, Settings
from simulators.kt2.scopes import ScopeSet
from simulators.kt2.store import Store


@dataclass(frozen=True)
class Caller:
    """Who is calling the FHIR store: an application instance of a domain, with the scopes of its token."""

    domain: str
    client_id: str
    scopes: ScopeSet
    token_id: str = ""               # the access token's jti (for AuditEvents and logs; not a secret)

    @property
    def device(self) -> str:
        return f"Device/{self.client_id}"


@dataclass(frozen=True)
class InstanceRecord:
    """An application instance as the domain admin knows it (data file or accepted connection request)."""

    client_id: str
    application: str                 # application id
    domain: str
    role: str
    status: str                      # active | maintenance | closed
    name: str
    jwks_url: str | None
    jwks: dict[str, Any] | None
    redirect_uris: tuple[str, ...]
    launch_url: str | None

    @property
    def device(self) -> str:
        return f"Device/{self.client_id}"


class BearerVerifier(Protocol):
    def caller_for(self, domain: str, token: str, *, root: str | None = None) -> Caller:
        """The caller a Bearer token on `domain`'s FHIR base belongs to; raises errors.FhirError(401).

        `root` is the public root URL the request came in on: the token's `iss`/`aud` must name that
        domain's URLs under it (None: only the domain part of the URLs is compared)."""


class SystemFhir(Protocol):
    """The store as the voorziening's own components use it: no permission checks, no resource-origin."""

    def create(self, domain: str, resource: dict[str, Any], *, resource_id: str | None = None) -> dict[str, Any]:
        ...

    def read(self, domain: str, reference: str) -> dict[str, Any] | None:
        """`reference` like "Patient/123"; None when absent or deleted."""

    def update(self, domain: str, resource: dict[str, Any]) -> dict[str, Any]:
        ...


class AuditSink(Protocol):
    def record(self, domain: str, event: dict[str, Any]) -> str | None:
        """Store an AuditEvent (a KT2AuditEvent resource without id/meta) written by the voorziening; may
        queue it (the store writes AuditEvents in batches); returns its id."""

    def flush(self) -> None:
        """Store the queued AuditEvents now (before anything reads AuditEvents)."""


class Registry(Protocol):
    def instance(self, domain: str, client_id: str) -> InstanceRecord | None:
        ...

    def instances(self, domain: str) -> list[InstanceRecord]:
        ...


class Outbox(Protocol):
    def send(self, to: list[str], subject: str, body: str) -> None:
        ...


class Clock:
    """Time in one place so tests can move it; `now()` is POSIX seconds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def instant(self, ts: float | None = None) -> str:
        """FHIR instant in UTC with millisecond precision (AuditEvent searches compare milliseconds)."""
        moment = datetime.fromtimestamp(self.now() if ts is None else ts, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def now_ms(self) -> int:
        return int(self.now() * 1000)


@dataclass
class Kt2Context:
    data: ServerData
    store: Store
    faults: frozenset[str] = frozenset()
    public_base: str | None = None
    clock: Clock = field(default_factory=Clock)
    # wired by app.create_app
    fhir: SystemFhir | None = None
    audit: AuditSink | None = None
    tokens: BearerVerifier | None = None
    registry: Registry | None = None
    outbox: Outbox | None = None

    @property
    def settings(self) -> Settings:
        return self.data.settings

    def fault(self, name: str) -> bool:
        return name in self.faults

    def root(self, request_base: str) -> str:
        """Root URL of minted links: --public-base if given, else where the request came in."""
        return (self.public_base or request_base).rstrip("/")

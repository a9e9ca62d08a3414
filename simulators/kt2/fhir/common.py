"""What every FHIR interaction shares: the request's context, the result it hands back, small checks.

A handler returns a `Result` (status, body, headers) plus what its AuditEvent needs (interaction and
entities); routes.py turns it into the HTTP answer and the AuditEvent, so no interaction forgets either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulators.kt2.context import Caller, Kt2Context
from simulators.kt2.errors import FhirError
from simulators.kt2.trace import TraceIds

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")   # \Z: `$` would let a trailing newline through
_ETAG_RE = re.compile(r'^(?:W/)?"?(?P<v>[0-9]{1,18})"?$')


@dataclass
class Rest:
    """One FHIR request: which domain, where minted URLs start, who calls and with which trace ids."""

    domain: str
    root: str
    base: str                          # the domain's FHIR base under the public root
    caller: Caller | None
    trace: TraceIds
    prefer: dict[str, str] = field(default_factory=dict)

    @property
    def device(self) -> str | None:
        return self.caller.device if self.caller else None


@dataclass
class Result:
    status: int
    body: bytes | dict | None
    headers: dict[str, str] = field(default_factory=dict)
    interaction: str = ""
    entities: list[dict] = field(default_factory=list)


class Interactions:
    """Base of the readers and writers: the context and the repository they work on."""

    def __init__(self, ctx: Kt2Context, repo) -> None:
        self.ctx = ctx
        self.repo = repo

    def _now_ms(self) -> int:
        return self.ctx.clock.now_ms()


def check_id(rid: str) -> None:
    if not ID_RE.match(rid):
        raise FhirError.one(400, f"{rid[:80]!r} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})", "value")


def forbidden(diagnostics: str) -> FhirError:
    return FhirError.one(403, diagnostics, "forbidden")


def parse_if_match(value: str | None) -> int | None | str:
    """None (absent), "*" or the version number the client expects; 400 for anything else."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return "*"
    match = _ETAG_RE.match(value)
    if not match:
        raise FhirError.one(400, f'If-Match must be W/"<versionId>", not {value[:60]!r}', "value")
    return int(match["v"])


def parse_prefer(header: str | None) -> dict[str, str]:
    prefer: dict[str, str] = {}
    for part in (header or "").replace(";", ",").split(","):
        name, _, value = part.partition("=")
        if name.strip():
            prefer[name.strip().lower()] = value.strip().strip('"').lower()
    return prefer


def versioned(rtype: str, rid: str, version: int) -> str:
    return f"{rtype}/{rid}/_history/{version}"

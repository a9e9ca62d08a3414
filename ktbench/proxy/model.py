"""Plain, picklable records that travel between the proxy and its validation workers.

The validation work runs in other processes (or threads), so everything handed
to a worker and back is a small frozen dataclass of builtins: no mitmproxy
objects, no locks, nothing that ties a result to the event loop.  The secrets a
flow carried stay in the proxy process: a `FlowInfo` keeps the Authorization
header only so the findings writer can learn (and then blank) the token; it is
excluded from `repr()` so it cannot leak into a log line by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUEST = "request"
RESPONSE = "response"

# BodyVerdict.status values
VALIDATED = "validated"
SKIPPED = "skipped"
CRASHED = "crashed"
DROPPED = "dropped"  # not validated: the backlog was full

CRASH_RULE = "validator.crash"


@dataclass(frozen=True, slots=True)
class BodyJob:
    """One message body to validate, exactly as it crossed the wire (still content-encoded)."""

    direction: str
    raw: bytes
    content_type: str | None
    content_encoding: str | None = None


@dataclass(frozen=True, slots=True)
class FlowJob:
    """All bodies of one flow: one task per flow keeps the per-task overhead low."""

    flow_id: str
    bodies: tuple[BodyJob, ...]
    kt: int | None = None


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """A validator finding reduced to builtins (see ktbench.validation.findings.Finding)."""

    severity: str
    rule: str
    location: str
    message: str
    suppressed_reason: str | None = None

    def to_dict(self) -> dict:
        data = {"severity": self.severity, "rule": self.rule, "location": self.location, "message": self.message}
        if self.suppressed_reason is not None:
            data["suppressed_reason"] = self.suppressed_reason
        return data


@dataclass(frozen=True, slots=True)
class BodyVerdict:
    """What happened to one body: validated (with findings), skipped (with a reason) or crashed."""

    direction: str
    status: str
    findings: tuple[FindingRecord, ...] = ()
    reason: str | None = None
    kt: int | None = None
    format: str | None = None
    ok: bool | None = None
    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """What the report needs to know about a flow, captured when the flow was handed off."""

    flow_id: str
    method: str
    url: str
    status: int | None
    authorization: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    """The validation outcome of one FHIR flow: one `BodyVerdict` per direction."""

    info: FlowInfo
    bodies: tuple[BodyVerdict, ...]

    @property
    def findings(self) -> list[tuple[str, FindingRecord]]:
        return [(body.direction, f) for body in self.bodies for f in body.findings]


def crash_verdict(direction: str, exc: BaseException, elapsed_ms: float = 0.0) -> BodyVerdict:
    """A body whose validation blew up: recorded as an error finding, never raised into the proxy."""
    message = f"the validator failed on this body: {type(exc).__name__}: {exc}"
    finding = FindingRecord("error", CRASH_RULE, "", message[:2000])
    return BodyVerdict(direction, CRASHED, (finding,), elapsed_ms=elapsed_ms)


# -- the wire format between the proxy and its worker processes ---------------------------------------
# Plain tuples: pickling slotted dataclasses is several times slower, and the proxy side of the pipe
# runs on the event loop.
def job_to_wire(job: FlowJob) -> tuple:
    return (job.flow_id, job.kt, tuple((b.direction, b.raw, b.content_type, b.content_encoding) for b in job.bodies))


def job_from_wire(data: tuple) -> FlowJob:
    flow_id, kt, bodies = data
    return FlowJob(flow_id, tuple(BodyJob(*b) for b in bodies), kt)


def verdicts_to_wire(verdicts: tuple[BodyVerdict, ...]) -> tuple:
    return tuple(
        (v.direction, v.status,
         tuple((f.severity, f.rule, f.location, f.message, f.suppressed_reason) for f in v.findings),
         v.reason, v.kt, v.format, v.ok, v.elapsed_ms)
        for v in verdicts
    )


def verdicts_from_wire(data: tuple) -> tuple[BodyVerdict, ...]:
    return tuple(
        BodyVerdict(direction, status, tuple(FindingRecord(*f) for f in findings), reason, kt, fmt, ok, elapsed)
        for direction, status, findings, reason, kt, fmt, ok, elapsed in data
    )

"""The code that runs inside a validation worker (a process, or a thread in tests).

Kept apart from the addons so a spawned worker process imports only this module,
the validation engine and mitmproxy's small content-decoding helper - not the
proxy server.  Everything here turns failures into findings: whatever a body
or the validator does, the worker answers with a `BodyVerdict` and never raises
(a raising worker would leave the proxy not knowing what happened to a flow).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from ktbench.proxy.model import (
    SKIPPED,
    VALIDATED,
    BodyJob,
    BodyVerdict,
    FindingRecord,
    FlowJob,
    crash_verdict,
)

DEFAULT_VALIDATOR = "ktbench.validation:validate_bytes"

_resolved: dict[str, Callable[..., Any]] = {}
_suppressions: dict[str, Any] = {}


def resolve_validator(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """`"package.module:function"` -> the function (cached per worker)."""
    if callable(spec):
        return spec
    fn = _resolved.get(spec)
    if fn is None:
        module_name, _, attr = spec.partition(":")
        fn = getattr(importlib.import_module(module_name), attr or "validate_bytes")
        _resolved[spec] = fn
    return fn


def _load_suppressions(path: str | None) -> Any:
    if not path:
        return None
    if path not in _suppressions:
        from ktbench.validation.suppressions import load_suppressions

        _suppressions[path] = load_suppressions(path)
    return _suppressions[path]


def warm_up(validator: str | Callable[..., Any] = DEFAULT_VALIDATOR, suppressions: str | None = None) -> bool:
    """Import the validator (and parse the suppression file) before traffic arrives."""
    fn = resolve_validator(validator)
    _load_suppressions(suppressions)
    try:
        fn(b"{}", "application/json")  # makes the engine load (and cache) its profiles now
    except Exception:  # a validator bug shows up as validator.crash on real traffic, not here
        pass
    return True


def _decode(body: BodyJob) -> bytes:
    encoding = (body.content_encoding or "").strip().lower()
    if not encoding or encoding == "identity":
        return body.raw
    from mitmproxy.net import encoding as mitm_encoding

    return mitm_encoding.decode(body.raw, encoding)


def _records(result: Any) -> tuple[FindingRecord, ...]:
    out = []
    for f in getattr(result, "findings", None) or ():
        out.append(
            FindingRecord(
                str(getattr(f, "severity", "error")),
                str(getattr(f, "rule", "")),
                str(getattr(f, "location", "")),
                str(getattr(f, "message", "")),
                getattr(f, "suppressed_reason", None),
            )
        )
    return tuple(out)


def validate_body(body: BodyJob, kt: int | None, validator: Callable[..., Any], suppressions: Any) -> BodyVerdict:
    started = time.perf_counter()
    try:
        data = _decode(body)
    except Exception as exc:  # a broken gzip stream is a transport defect worth reporting
        finding = FindingRecord("error", "input.content-encoding", "",
                                f"cannot decode Content-Encoding {body.content_encoding!r}: {exc}")
        return BodyVerdict(body.direction, VALIDATED, (finding,), ok=False,
                           elapsed_ms=(time.perf_counter() - started) * 1000)
    if not data.strip():
        return BodyVerdict(body.direction, SKIPPED, reason="empty body")
    try:
        result = validator(data, body.content_type, kt=kt, suppressions=suppressions)
        records = _records(result)
        ok = getattr(result, "ok", None)
        return BodyVerdict(
            body.direction,
            VALIDATED,
            records,
            kt=getattr(result, "kt", None),
            format=getattr(result, "format", None),
            ok=bool(ok) if ok is not None else None,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
    except Exception as exc:  # the validator's bug must not become the proxy's bug
        return crash_verdict(body.direction, exc, (time.perf_counter() - started) * 1000)


def validate_flow(job: FlowJob, validator: str | Callable[..., Any] = DEFAULT_VALIDATOR,
                  suppressions: str | None = None) -> tuple[BodyVerdict, ...]:
    """Validate every body of one flow; the entry point submitted to the worker pool."""
    try:
        fn = resolve_validator(validator)
        sup = _load_suppressions(suppressions)
    except Exception as exc:
        return tuple(crash_verdict(body.direction, exc) for body in job.bodies)
    return tuple(validate_body(body, job.kt, fn, sup) for body in job.bodies)


# -- the worker process ------------------------------------------------------------------------------
# The proxy talks to each worker process over its stdin/stdout: frames of a 4-byte big-endian length
# followed by a pickle.  Request: (sequence number, job in wire form).  Answer: (sequence number,
# verdicts in wire form); see `ktbench.proxy.model`.  Pipes instead of multiprocessing queues: the
# proxy side is then plain asyncio I/O on the event loop, with no feeder or manager threads in the
# proxy process competing with the loop for the GIL.  The worker answers everything it has read
# before it writes, so a burst of jobs costs one wake-up and one write on each side.
FRAME_HEADER = 4


def encode_frame(obj: Any) -> bytes:
    import pickle

    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(payload).to_bytes(FRAME_HEADER, "big") + payload


def _complete_frames(buffer: bytearray) -> list[bytes]:
    """Cut the complete frames off the front of `buffer`."""
    frames = []
    offset = 0
    while len(buffer) - offset >= FRAME_HEADER:
        size = int.from_bytes(buffer[offset:offset + FRAME_HEADER], "big")
        if len(buffer) - offset - FRAME_HEADER < size:
            break
        start = offset + FRAME_HEADER
        frames.append(bytes(buffer[start:start + size]))
        offset = start + size
    del buffer[:offset]
    return frames


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve(validator: str, suppressions: str | None, nice: int) -> int:
    """Worker process main loop: answer every job until stdin closes."""
    import pickle
    import sys

    from ktbench.proxy.model import job_from_wire, verdicts_to_wire

    # The protocol owns the original stdout; anything the validator prints goes to stderr instead.
    out_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    in_fd = sys.stdin.fileno()
    if nice and hasattr(os, "nice"):
        try:
            os.nice(nice)  # validation is background work: the proxy's own traffic goes first
        except OSError:
            pass
    try:
        fn = resolve_validator(validator)
        sup = _load_suppressions(suppressions)
        warm_up(fn)
        setup_error: Exception | None = None
    except Exception as exc:  # reported per job, so every flow still gets a verdict
        fn, sup, setup_error = None, None, exc
    buffer = bytearray()
    while True:
        chunk = os.read(in_fd, 1 << 20)
        if not chunk:
            return 0
        buffer += chunk
        answers = []
        for frame in _complete_frames(buffer):
            seq, wire_job = pickle.loads(frame)
            job = job_from_wire(wire_job)
            if setup_error is not None:
                verdicts = tuple(crash_verdict(body.direction, setup_error) for body in job.bodies)
            else:
                verdicts = tuple(validate_body(body, job.kt, fn, sup) for body in job.bodies)
            answers.append(encode_frame((seq, verdicts_to_wire(verdicts))))
        if answers:
            _write_all(out_fd, b"".join(answers))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="ktbench proxy validation worker (internal)")
    parser.add_argument("--validator", default=DEFAULT_VALIDATOR)
    parser.add_argument("--suppressions", default=None)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(args.validator, args.suppressions, args.nice)


if __name__ == "__main__":
    raise SystemExit(main())

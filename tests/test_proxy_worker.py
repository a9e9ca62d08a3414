"""The validation worker: its pipe protocol, content decoding, and failures turned into findings.

This module also holds the small validators that the other proxy tests load
*inside worker processes* (by import path): its imports are kept light so a
worker starts quickly.
"""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field

from ktbench.proxy import worker
from ktbench.proxy.model import (
    CRASHED,
    SKIPPED,
    VALIDATED,
    BodyJob,
    FlowJob,
    job_to_wire,
    verdicts_from_wire,
)


@dataclass
class _Finding:
    severity: str
    rule: str
    location: str
    message: str
    suppressed_reason: str | None = None


@dataclass
class _Result:
    findings: list = field(default_factory=list)
    kt: int | None = 1
    format: str | None = "json"

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def flag_bad(data: bytes, content_type: str | None = None, kt: int | None = None, suppressions=None):
    """Flags bodies containing BAD; prints to stdout (which must not corrupt the worker's pipe)."""
    print("a chatty validator")
    if b"BAD" in data:
        return _Result([_Finding("error", "kt1.binding", "Bundle.entry[0]", f"bad ({content_type}, kt={kt})")])
    return _Result([])


def die_on_marker(data: bytes, content_type: str | None = None, kt: int | None = None, suppressions=None):
    """Takes its worker process down (as a segfault or the OOM killer would) on DIE."""
    if b"DIE" in data:
        os._exit(3)
    return _Result([])


def _frames(data: bytes) -> list:
    buffer = bytearray(data)
    return [pickle.loads(frame) for frame in worker._complete_frames(buffer)]


def test_frames_are_cut_only_when_complete():
    one, two = worker.encode_frame(("a", 1)), worker.encode_frame(("b", 2))
    buffer = bytearray(one + two[:3])
    assert [pickle.loads(f) for f in worker._complete_frames(buffer)] == [("a", 1)]
    assert bytes(buffer) == two[:3]  # the partial frame waits for its rest
    buffer += two[3:]
    assert [pickle.loads(f) for f in worker._complete_frames(buffer)] == [("b", 2)]
    assert buffer == bytearray()


def test_worker_process_answers_every_job_over_its_pipes():
    jobs = [
        (1, job_to_wire(FlowJob("f1", (BodyJob("request", b'{"id":"BAD"}', "application/json"),), kt=1))),
        (2, job_to_wire(FlowJob("f2", (BodyJob("response", gzip.compress(b'{"id":"ok"}'), "application/json",
                                               "gzip"),)))),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "ktbench.proxy.worker", "--validator", f"{__name__}:flag_bad"],
        input=b"".join(worker.encode_frame(job) for job in jobs), capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    answers = dict(_frames(proc.stdout))  # stdout carries frames only: the validator's print went to stderr
    assert b"a chatty validator" in proc.stderr
    assert set(answers) == {1, 2}
    (first,) = verdicts_from_wire(answers[1])
    assert first.status == VALIDATED and first.ok is False
    assert [(f.rule, f.message) for f in first.findings] == [("kt1.binding", "bad (application/json, kt=1)")]
    (second,) = verdicts_from_wire(answers[2])
    assert second.status == VALIDATED and second.ok is True and second.findings == ()


def test_worker_that_cannot_load_its_validator_still_answers():
    job = (7, job_to_wire(FlowJob("f", (BodyJob("request", b"{}", "application/json"),))))
    proc = subprocess.run([sys.executable, "-m", "ktbench.proxy.worker", "--validator", "no_such_module:validate"],
                          input=worker.encode_frame(job), capture_output=True, timeout=60)
    assert proc.returncode == 0
    ((seq, wire),) = _frames(proc.stdout)
    (verdict,) = verdicts_from_wire(wire)
    assert seq == 7 and verdict.status == CRASHED
    assert "ModuleNotFoundError" in verdict.findings[0].message and "no_such_module" in verdict.findings[0].message


def test_content_encoding_is_decoded_and_a_broken_stream_is_a_finding():
    seen = []

    def remember(data, content_type=None, kt=None, suppressions=None):
        seen.append(data)
        return _Result([])

    good = worker.validate_body(BodyJob("response", gzip.compress(b'{"a":1}'), "application/json", "gzip"),
                                None, remember, None)
    assert good.status == VALIDATED and seen == [b'{"a":1}']
    broken = worker.validate_body(BodyJob("response", b"not gzip at all", "application/json", "gzip"),
                                  None, remember, None)
    assert broken.ok is False and [f.rule for f in broken.findings] == ["input.content-encoding"]
    blank = worker.validate_body(BodyJob("request", b"  \n", "application/json"), None, remember, None)
    assert blank.status == SKIPPED and blank.reason == "empty body"

"""Findings as JSON Lines: one line per finding, greppable and streamable.

A tester tails this file while a partner's client talks through the proxy, so
each line is self-contained: which flow (its mitmproxy id, also the id in the
flow file), which direction, method, URL and status, and the finding itself.
Everything that could carry a secret goes through `ktbench.core.redact` first: the
URL (tokens, codes, passwords in query strings), and the message and location
texts (a validator may quote a value it did not like).  Lines reach the disk
within `flush_interval` (0.2 s).  The writer also learns the credentials of
each flow's Authorization header, so a token or password echoed anywhere in a
finding is blanked too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from pathlib import Path
from typing import IO

from ktbench.proxy.model import FlowVerdict
from ktbench.core.redact import Redactor


def learn_authorization(redactor: Redactor, value: str | None) -> None:
    """Teach the redactor the secret parts of an Authorization header (Bearer token, Basic password)."""
    if not value:
        return
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return
    redactor.learn(credentials)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        _user, sep, password = decoded.partition(":")
        if sep:
            redactor.learn(password)


class FindingsWriter:
    """Appends every finding of every validated flow to a JSONL file."""

    def __init__(self, path: str | Path, redactor: Redactor | None = None, flush_interval: float = 0.2) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self._flush_handle: asyncio.TimerHandle | None = None
        self.redactor = redactor or Redactor()
        self._fh: IO[str] | None = None
        self.lines_written = 0
        # Redaction runs on the event loop; the same texts recur on every similar flow, so cache them
        # (the cache is dropped whenever the redactor learns a new secret).
        self._texts: dict[str, str] = {}
        self._known_count = 0
        self._last_authorization: str | None = None

    def _file(self) -> IO[str]:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        return self._fh

    def running(self) -> None:
        self._file()  # the file exists (possibly empty) as soon as the proxy runs

    def _text(self, text: str) -> str:
        redacted = self._texts.get(text)
        if redacted is None:
            if len(self._texts) > 10_000:
                self._texts.clear()
            redacted = self._texts[text] = self.redactor.text(text)
        return redacted

    def _learn(self, authorization: str | None) -> None:
        if authorization and authorization != self._last_authorization:
            self._last_authorization = authorization
            learn_authorization(self.redactor, authorization)
            known = len(self.redactor.known_secrets)
            if known != self._known_count:
                self._known_count = known
                self._texts.clear()

    def _url(self, url: str) -> str:
        key = "url:" + url
        redacted = self._texts.get(key)
        if redacted is None:
            redacted = self._texts[key] = self.redactor.url(url)
        return redacted

    def records(self, verdict: FlowVerdict) -> list[dict]:
        """The JSONL records of one verdict (redacted), one per finding."""
        return [json.loads(line) for line in self.lines(verdict)]

    def lines(self, verdict: FlowVerdict) -> list[str]:
        """The JSONL lines of one verdict (redacted), one per finding, without line ends.

        Built as a per-flow JSON prefix plus per-finding JSON fields: this runs on the
        event loop, and one `json.dumps` per finding is half the work of two.
        """
        if not any(body.findings for body in verdict.bodies):
            return []
        info = verdict.info
        self._learn(info.authorization)
        flow_part = json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "flow_id": info.flow_id,
            "method": info.method,
            "url": self._url(info.url),
            "status": info.status,
        }, ensure_ascii=False)[:-1]
        out = []
        for body in verdict.bodies:
            if not body.findings:
                continue
            body_part = json.dumps({"direction": body.direction, "kt": body.kt, "format": body.format})[1:-1]
            for finding in body.findings:
                fields = {
                    "severity": finding.severity,
                    "rule": finding.rule,
                    "location": self._text(finding.location),
                    "message": self._text(finding.message),
                }
                if finding.suppressed_reason is not None:
                    fields["suppressed_reason"] = self._text(finding.suppressed_reason)
                out.append(f"{flow_part}, {body_part}, {json.dumps(fields, ensure_ascii=False)[1:]}")
        return out

    def ktbench_flow_validated(self, verdict: FlowVerdict) -> None:
        lines = self.lines(verdict)
        if not lines:
            return
        fh = self._file()
        fh.write("\n".join(lines) + "\n")
        self.lines_written += len(lines)
        if self._flush_handle is None:  # at most one flush (a syscall on the event loop) per interval
            self._flush_handle = asyncio.get_running_loop().call_later(self.flush_interval, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._fh is not None:
            self._fh.flush()

    def done(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._file()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

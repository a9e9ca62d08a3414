"""The session summary: was every FHIR exchange validated, and what was found.

A validating proxy that silently skips flows gives false confidence, so the
summary counts independently of the validating addon: it sees every finished
flow itself (via the classification the filter stored in the flow's metadata)
and every verdict (via `ktbench_flow_validated`), and reports the difference as
`lost_flows`.  Together with `dropped_flows` (backlog full) that is
`unvalidated_flows`, which must be 0 for a trustworthy session.  The summary is
printed and written as JSON when the proxy shuts down; `snapshot()` gives the
same numbers at any time.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mitmproxy import http

from ktbench.proxy.fhir_filter import is_fhir
from ktbench.proxy.model import CRASHED, DROPPED, SKIPPED, VALIDATED, FlowVerdict

_MAX_LISTED_IDS = 50


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Summary:
    """Counts flows, verdicts and findings; writes summary.json at shutdown."""

    def __init__(self, path: str | Path | None = None, echo: Callable[[str], None] | None = _stderr) -> None:
        self.path = Path(path) if path else None
        self.echo = echo
        self.started = time.time()
        self.flows_seen = 0
        self.fhir_flows = 0
        self.failed_flows = 0  # no response: upstream unreachable, client gone...
        self._awaiting: set[str] = set()  # FHIR flows seen without a verdict yet
        self._early: set[str] = set()  # verdicts that arrived before the flow was counted
        self.verdicts = 0
        self.flows_validated = 0
        self.dropped_flows = 0
        self.bodies: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.invalid_bodies = 0
        self.by_severity: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.suppressed = 0
        self.formats: Counter[str] = Counter()
        self._elapsed: list[float] = []
        self.written: dict | None = None

    # -- counting -------------------------------------------------------------------------------
    def _seen(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get("ktbench.summary.seen"):
            return  # `error` after `response` for the same flow
        flow.metadata["ktbench.summary.seen"] = True
        self.flows_seen += 1
        if flow.response is None:
            self.failed_flows += 1
        if is_fhir(flow):
            self.fhir_flows += 1
            if flow.id in self._early:
                self._early.discard(flow.id)
            else:
                self._awaiting.add(flow.id)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._seen(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._seen(flow)

    def ktbench_flow_validated(self, verdict: FlowVerdict) -> None:
        flow_id = verdict.info.flow_id
        if flow_id in self._awaiting:
            self._awaiting.discard(flow_id)
        else:
            self._early.add(flow_id)
        self.verdicts += 1
        statuses = {body.status for body in verdict.bodies}
        if VALIDATED in statuses or CRASHED in statuses:
            self.flows_validated += 1
        if DROPPED in statuses:
            self.dropped_flows += 1
        for body in verdict.bodies:
            self.bodies[body.status] += 1
            if body.status == SKIPPED and body.reason:
                self.skip_reasons[body.reason.split(":")[0]] += 1
            if body.status == VALIDATED:
                self._elapsed.append(body.elapsed_ms)
                if body.format:
                    self.formats[f"KT{body.kt or '?'} {body.format}"] += 1
            if body.ok is False or body.status == CRASHED:
                self.invalid_bodies += 1
            for finding in body.findings:
                self.by_rule[finding.rule] += 1
                if finding.suppressed_reason is not None:
                    self.suppressed += 1
                else:
                    self.by_severity[finding.severity] += 1

    # -- reporting ------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        lost = sorted(self._awaiting)
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(time.time() - self.started, 3),
            "flows_seen": self.flows_seen,
            "flows_without_response": self.failed_flows,
            "fhir_flows": self.fhir_flows,
            "non_fhir_flows": self.flows_seen - self.fhir_flows,
            "flows_validated": self.flows_validated,
            "bodies": {
                "validated": self.bodies[VALIDATED],
                "invalid": self.invalid_bodies,
                "skipped": self.bodies[SKIPPED],
                "crashed": self.bodies[CRASHED],
                "dropped": self.bodies[DROPPED],
                "skip_reasons": dict(self.skip_reasons.most_common()),
                "formats": dict(self.formats.most_common()),
            },
            "findings": {
                "total": sum(self.by_rule.values()),
                "by_severity": dict(self.by_severity.most_common()),
                "suppressed": self.suppressed,
                "by_rule": dict(self.by_rule.most_common()),
            },
            "validator_crashes": self.bodies[CRASHED],
            "validation_ms": {
                "p50": _percentile(self._elapsed, 50),
                "p99": _percentile(self._elapsed, 99),
                "max": round(max(self._elapsed), 3) if self._elapsed else None,
            },
            "lost_flows": len(lost),
            "lost_flow_ids": lost[:_MAX_LISTED_IDS],
            "dropped_flows": self.dropped_flows,
            "unvalidated_flows": len(lost) + self.dropped_flows,
        }

    @staticmethod
    def format_text(data: dict) -> str:
        sev = data["findings"]["by_severity"]
        lines = [
            "ktbench proxy summary",
            f"  flows seen: {data['flows_seen']} (FHIR: {data['fhir_flows']}, other: {data['non_fhir_flows']}, "
            f"without response: {data['flows_without_response']})",
            f"  bodies validated: {data['bodies']['validated']} (invalid: {data['bodies']['invalid']}), "
            f"skipped: {data['bodies']['skipped']}, validator crashes: {data['validator_crashes']}",
            f"  findings: {data['findings']['total']} (errors: {sev.get('error', 0)}, "
            f"warnings: {sev.get('warning', 0)}, information: {sev.get('information', 0)}, "
            f"suppressed: {data['findings']['suppressed']})",
        ]
        for rule, count in list(data["findings"]["by_rule"].items())[:10]:
            lines.append(f"    {count:6d}  {rule}")
        verdict = "OK" if data["unvalidated_flows"] == 0 else "INCOMPLETE"
        lines.append(f"  unvalidated FHIR flows: {data['unvalidated_flows']} (lost: {data['lost_flows']}, "
                     f"dropped: {data['dropped_flows']}) -> {verdict}")
        return "\n".join(lines)

    def done(self) -> None:
        data = self.snapshot()
        self.written = data
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        if self.echo is not None:
            self.echo(self.format_text(data))

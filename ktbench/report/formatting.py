"""Human-readable renderings of events, shared by the Allure writer and anything else that shows them.

An exchange is rendered like an HTTP message (request line, headers, blank
line, body) with JSON bodies pretty-printed, because testers read these next to
the Koppeltaal documentation, which shows messages the same way.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from ktbench.core.events import HttpExchange, ValidationReported


def _pretty(body: str) -> str:
    stripped = body.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            return body
    return body


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"


def exchange_title(exchange: HttpExchange) -> str:
    who = f"{exchange.role}: " if exchange.role else ""
    result = str(exchange.status) if exchange.status is not None else "no response"
    return f"{who}{exchange.method} {_path(exchange.url)} -> {result} ({exchange.elapsed * 1000:.0f} ms)"


def format_exchange(exchange: HttpExchange) -> str:
    lines = [f"{exchange.method} {exchange.url}"]
    if exchange.role:
        lines.append(f"# sent as simulated role: {exchange.role}")
    lines += [f"{name}: {value}" for name, value in exchange.request_headers]
    if exchange.request_body:
        lines += ["", _pretty(exchange.request_body)]
    lines += ["", "-" * 72, ""]
    if exchange.status is None:
        lines.append(f"NO RESPONSE after {exchange.elapsed * 1000:.0f} ms: {exchange.error or 'unknown error'}")
    else:
        lines.append(f"HTTP {exchange.status}  ({exchange.elapsed * 1000:.1f} ms)")
        lines += [f"{name}: {value}" for name, value in exchange.response_headers]
        if exchange.response_body:
            lines += ["", _pretty(exchange.response_body)]
    return "\n".join(lines) + "\n"


def validation_title(report: ValidationReported) -> str:
    """`validation: response, 2 error(s), 1 other finding(s)` - which side of the exchange, and how bad."""
    side = f" {report.direction}," if report.direction else ""
    errors = len(report.errors)
    others = len(report.findings) - errors
    if not report.findings:
        return f"validation:{side} no findings"
    return f"validation:{side} {errors} error(s), {others} other finding(s)"


def format_findings(report: ValidationReported) -> str:
    lines = [f"Validated: {report.subject}"]
    if report.direction:
        sender = report.sender or ("bench" if report.direction == "request" else "target")
        verdict = ("its findings can fail the scenario" if sender == "target"
                   else "its findings make the scenario broken")
        lines.append(f"Side: {report.direction}, sent by the {sender} ({verdict})")
    lines += [f"Content-Type: {report.content_type or '-'}",
              f"Verdict: {'valid' if report.ok else 'NOT valid'}", ""]
    if not report.findings:
        lines.append("No findings.")
    for f in report.findings:
        changed = f" (policy; validator said {f.original_severity})" if f.original_severity else ""
        lines.append(f"[{f.severity.upper()}]{changed} {f.rule} at {f.location or '(document)'}")
        lines.append(f"    {f.message}")
    return "\n".join(lines) + "\n"

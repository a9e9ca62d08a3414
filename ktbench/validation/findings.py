"""Findings and the validation result: what a tester reads.

Kept free of any engine logic so that the proxy addon, the suite and the CLI can
import it cheaply and build their own findings (e.g. `input.unreadable`).
Every finding carries a stable rule id so that a suppression file, an Allure
report or a test can refer to it without parsing message texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "error"
WARNING = "warning"
INFORMATION = "information"
SEVERITIES = (ERROR, WARNING, INFORMATION)

# OperationOutcome.issue.code per rule family (FHIR R4 issue-type codes).
_ISSUE_CODES = {
    "input": "structure",
    "cardinality": "required",
    "structure": "structure",
    "type": "value",
    "value": "value",
    "fixed": "value",
    "pattern": "value",
    "binding": "code-invalid",
    "extension-url": "extension",
    "extension-context": "extension",
    "extension-type": "extension",
    "reference": "invalid",
    "invariant": "invariant",
    "feed": "structure",
    "message": "business-rule",
    "profile": "not-supported",
    "suppressed": "informational",
}


@dataclass(slots=True)
class Finding:
    """One issue found in a message or resource.

    `location` is a FHIRPath-style path with 0-based indexes into the parsed
    document, e.g. ``Bundle.entry[1].content.extension[3].valueCode``.
    `suppressed_reason` is set when a suppression rule matched: the finding then
    no longer counts against `ValidationResult.ok` but stays visible.
    """

    severity: str
    rule: str
    location: str
    message: str
    suppressed_reason: str | None = None

    @property
    def effective_severity(self) -> str:
        return INFORMATION if self.suppressed_reason is not None else self.severity

    def to_dict(self) -> dict:
        data = {"severity": self.severity, "rule": self.rule, "location": self.location, "message": self.message}
        if self.suppressed_reason is not None:
            data["suppressed_reason"] = self.suppressed_reason
        return data


def _issue_code(rule: str) -> str:
    parts = rule.split(".")
    for part in parts[1:] + parts[:1]:
        if part in _ISSUE_CODES:
            return _ISSUE_CODES[part]
    return "processing"


@dataclass(slots=True)
class ValidationResult:
    """The verdict on one document: its findings plus what was detected about it."""

    findings: list[Finding] = field(default_factory=list)
    kt: int | None = None
    format: str | None = None
    profiles: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR and f.suppressed_reason is None for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR and f.suppressed_reason is None]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING and f.suppressed_reason is None]

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def to_operation_outcome(self) -> dict:
        """The findings as a FHIR R4 OperationOutcome (JSON).

        A suppressed finding is reported with severity `information`, its
        original severity and the suppression reason in the diagnostics, so that
        nothing silently disappears from a report.
        """
        issues = []
        for f in self.findings:
            issue: dict = {
                "severity": f.effective_severity,
                "code": "informational" if f.suppressed_reason is not None else _issue_code(f.rule),
                "details": {"coding": [{"system": "urn:ktbench:validation-rule", "code": f.rule}], "text": f.message},
                "expression": [f.location],
            }
            if f.suppressed_reason is not None:
                issue["diagnostics"] = f"suppressed {f.severity}: {f.suppressed_reason}"
            issues.append(issue)
        if not issues:
            issues.append({"severity": "information", "code": "informational", "details": {"text": "No issues found"}})
        return {"resourceType": "OperationOutcome", "issue": issues}

    def to_text(self) -> str:
        """Plain text, one finding per line, then a verdict line."""
        lines = []
        for f in self.findings:
            if f.suppressed_reason is not None:
                lines.append(f"information [{f.rule}] {f.location}: {f.message} (suppressed {f.severity}: {f.suppressed_reason})")
            else:
                lines.append(f"{f.severity} [{f.rule}] {f.location}: {f.message}")
        n_err = len(self.errors)
        n_warn = len(self.warnings)
        n_sup = sum(1 for f in self.findings if f.suppressed_reason is not None)
        what = f"KT{self.kt}" if self.kt else "unknown"
        unreadable = any(f.rule in ("input.unreadable", "input.unsupported") and f.suppressed_reason is None for f in self.findings)
        verdict = "UNREADABLE" if unreadable else ("VALID" if self.ok else "INVALID")
        summary = f"{verdict} ({what} {self.format or '?'}): {n_err} error(s), {n_warn} warning(s)"
        if n_sup:
            summary += f", {n_sup} suppressed"
        lines.append(summary)
        return "\n".join(lines)

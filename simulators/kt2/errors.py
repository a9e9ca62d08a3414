"""Errors the voorziening answers with: an OperationOutcome on FHIR endpoints, OAuth error JSON on OAuth ones.

Handlers raise; the app turns the exception into the response, so every refusal has one shape and nothing
escapes as a traceback or a 500 (an unexpected exception is logged and answered as a 500 OperationOutcome
without internals; the bench's own tests treat any 500 as a defect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    severity: str            # fatal | error | warning | information
    code: str                # FHIR issue-type code: invalid, structure, required, value, processing, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass
class FhirError(Exception):
    status: int
    issues: list[Issue]
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.diagnostics for i in self.issues)

    @classmethod
    def one(cls, status: int, diagnostics: str, code: str = "processing", expression: str | None = None,
            headers: dict[str, str] | None = None) -> FhirError:
        return cls(status, [Issue("error", code, diagnostics, (expression,) if expression else ())],
                   dict(headers or {}))

    def outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in self.issues]}


def operation_outcome(diagnostics: str, severity: str = "information", code: str = "informational") -> dict:
    """A one-issue OperationOutcome for successful answers (DELETE, Prefer: return=OperationOutcome)."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


@dataclass
class OAuthError(Exception):
    """RFC 6749 §5.2 error: `{"error": ..., "error_description": ...}`."""

    status: int
    error: str               # invalid_request | invalid_client | invalid_grant | unauthorized_client |
                             # unsupported_grant_type | invalid_scope | access_denied | server_error
    description: str
    headers: dict[str, str] = field(default_factory=dict)
    audited: bool = field(default=False, compare=False)   # its user-authentication AuditEvent is written already

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.description}"

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}

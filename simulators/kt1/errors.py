"""Errors the KT1 server answers with: an HTTP status plus a DSTU1 OperationOutcome.

Handlers raise `FhirError`; the app turns it into a response in the format the
client asked for.  Anything else that escapes a handler is a server bug and is
answered with a 500 OperationOutcome without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ktbench.fhir.dstu1.constants import EXT_ISSUE_RESOURCE, ISSUE_TYPE_SYSTEM


@dataclass
class Issue:
    details: str
    code: str = "invalid"          # http://hl7.org/fhir/issue-type
    severity: str = "error"
    resource: str | None = None    # reference of the resource the issue is about

    def to_json(self) -> dict:
        issue: dict = {
            "severity": self.severity,
            "type": {"system": ISSUE_TYPE_SYSTEM, "code": self.code},
            "details": self.details,
        }
        if self.resource:
            issue["extension"] = [{"url": EXT_ISSUE_RESOURCE, "valueResource": {"reference": self.resource}}]
        return issue


@dataclass
class FhirError(Exception):
    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def one(cls, status: int, details: str, code: str = "invalid", resource: str | None = None,
            headers: dict[str, str] | None = None) -> "FhirError":
        return cls(status, [Issue(details, code, resource=resource)], dict(headers or {}))

    def outcome(self) -> dict:
        return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in self.issues]}

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(i.details for i in self.issues)


def bad_request(details: str, code: str = "invalid") -> FhirError:
    return FhirError.one(400, details, code)


def not_found(details: str) -> FhirError:
    return FhirError.one(404, details, "not-found")


def forbidden(details: str) -> FhirError:
    return FhirError.one(403, details, "forbidden")


def unauthorized(details: str) -> FhirError:
    return FhirError.one(401, details, "security",
                         headers={"WWW-Authenticate": 'Basic realm="Koppeltaal", Bearer realm="Koppeltaal"'})


def conflict(details: str, resource: str | None = None) -> FhirError:
    return FhirError.one(409, details, "conflict", resource=resource)

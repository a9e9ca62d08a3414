"""Refusals of the domain admin: one exception, rendered as `{"error", "detail"}` JSON on the API and as an
HTML page for people.

The services (accounts, connection requests, instances) raise it; the HTTP layers only render it, so the API
and the web page refuse the same things with the same status codes.  Details never carry a secret (password,
session or CSRF token): they name fields and ids, never echo a submitted value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_BEARER = 'Bearer realm="kt2-mgmt"'


@dataclass
class AdminError(Exception):
    status: int
    error: str               # machine-readable code: invalid_request, unauthorized, forbidden, not_found, ...
    detail: str              # one sentence for a person, in English (the API's language)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}


def invalid(detail: str) -> AdminError:
    return AdminError(422, "invalid_request", detail)


def bad_request(error: str, detail: str) -> AdminError:
    return AdminError(400, error, detail)


def unauthorized(detail: str) -> AdminError:
    return AdminError(401, "unauthorized", detail, {"WWW-Authenticate": _BEARER})


def forbidden(detail: str) -> AdminError:
    return AdminError(403, "forbidden", detail)


def not_found(detail: str) -> AdminError:
    return AdminError(404, "not_found", detail)


def conflict(detail: str) -> AdminError:
    return AdminError(409, "conflict", detail)


def blocked(detail: str) -> AdminError:
    return AdminError(423, "account_blocked", detail)

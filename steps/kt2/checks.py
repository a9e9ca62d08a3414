"""Small judgments the KT2 steps share: a status among those the spec allows, a JSON body, an OAuth error.

Each names the requirement it verifies (`require`): in a Then step that is the scenario's own requirement;
in a Given/When step a failure is a precondition (the scenario is BROKEN, naming what the target broke).
Messages say what was sent and what came back, never a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from ktbench.core.requirements import require


def describe(answer: httpx.Response) -> str:
    request = answer.request
    path = urlsplit(str(request.url)).path
    return f"{request.method} {path} answered {answer.status_code}"


def outcome_text(answer: httpx.Response) -> str:
    """The first issue's text of an OperationOutcome answer, or the OAuth error, for failure messages."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:160]
    if not isinstance(body, dict):
        return ""
    if body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or [{}]
        first = issues[0] if isinstance(issues[0], dict) else {}
        return str(first.get("diagnostics") or (first.get("details") or {}).get("text") or first.get("code") or "")
    if "error" in body:
        return f"{body.get('error')}: {body.get('error_description', '')}".strip(": ")
    return ""


def expect_status(answer: httpx.Response, allowed: int | Iterable[int], req: str, what: str) -> None:
    codes = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    text = " or ".join(str(c) for c in codes)
    detail = outcome_text(answer) if answer.status_code not in codes else ""
    require(answer.status_code in codes, req,
            f"{what}: expected {text}, but {describe(answer)}" + (f" ({detail})" if detail else ""))


def json_object(answer: httpx.Response, req: str, what: str) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    require(isinstance(body, dict), req, f"{what}: {describe(answer)} without a JSON object "
                                         f"(Content-Type {answer.headers.get('content-type')!r})")
    return body  # type: ignore[return-value]


def oauth_error(answer: httpx.Response, req: str, allowed: Iterable[int], errors: Iterable[str], what: str) -> None:
    """An OAuth refusal: one of the statuses and an `error` code among `errors` (RFC 6749 §5.2)."""
    expect_status(answer, allowed, req, what)
    body = json_object(answer, req, what)
    wanted = tuple(errors)
    require(body.get("error") in wanted, req, f"{what}: expected error {' or '.join(wanted)}, got "
                                              f"{body.get('error')!r}")


def is_outcome(answer: httpx.Response) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"


def etag_version(answer: httpx.Response) -> str | None:
    """The version in a weak ETag (W/"3" -> "3"), or None."""
    etag = answer.headers.get("etag")
    if not etag:
        return None
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None

"""Write-time rules: profile validation, the KT business rules and referential integrity.

Order matters only for the message a client sees first; every refusal is a 422 OperationOutcome with one
issue per problem and its location in `expression`:
- profile validation with ktbench.validation (error findings; warnings do not refuse);
- Task with code `view` needs `partOf` (HAPI ValidSubTaskInterceptor, kt2-protocol.md §3.3);
- Subscription: rest-hook, https endpoint, no payload, usable criteria and headers (TOP-KT-006);
- every literal reference `Type/id` to a KT2 type must name a live resource of the domain (TOP-KT-003).
  Chosen status: 422 (a business rule on a well-formed resource), not HAPI's 400/404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ktbench.validation import validate_resource
from simulators.kt2.data import RESOURCE_TYPES
from simulators.kt2.errors import FhirError, Issue
from simulators.kt2.fhir.search import parse_query
from simulators.kt2.fhir.searchparams import ORIGIN_URL

TASK_CODE_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code"
_LOCAL_REF = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?\Z")
# `Name: value` with an RFC 9110 token as name and a value of visible ASCII, spaces and tabs: what every HTTP
# client can send (httpx refuses non-ASCII header values, so a stored one could never be delivered)
_HEADER_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*[\x20-\x7e\t]*\Z")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection",
                               "x-request-id", "x-correlation-id", "x-trace-id"})


def unprocessable(issues: list[Issue]) -> FhirError:
    return FhirError(422, issues)


def issue(diagnostics: str, expression: str, code: str = "business-rule") -> Issue:
    return Issue("error", code, diagnostics, (expression,))


def profile_issues(resource: dict) -> list[Issue]:
    result = validate_resource(resource, kt=2)
    return [Issue("error", _code(f.rule), f"{f.message} [{f.rule}]", (f.location,)) for f in result.errors]


def _code(rule: str) -> str:
    family = rule.split(".")[-1]
    return {"cardinality": "required", "structure": "structure", "type": "value", "value": "value",
            "fixed": "value", "pattern": "value", "binding": "code-invalid", "reference": "invalid",
            "invariant": "invariant"}.get(family, "invalid") if not family.startswith("extension") else "extension"


def task_issues(resource: dict, check_subtask: bool) -> list[Issue]:
    if not check_subtask:
        return []
    codings = resource.get("code", {}).get("coding", []) if isinstance(resource.get("code"), dict) else []
    is_view = any(isinstance(c, dict) and c.get("system") == TASK_CODE_SYSTEM and c.get("code") == "view"
                  for c in (codings if isinstance(codings, list) else []))
    if is_view and not resource.get("partOf"):
        return [issue("A Task with code 'view' (koppeltaal-task-code) is a sub-task and must have partOf",
                      "Task.partOf")]
    return []


def subscription_issues(resource: dict, *, allow_http: bool, loopback_http: bool) -> list[Issue]:
    issues: list[Issue] = []
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        return issues  # the profile check names the missing channel
    if channel.get("type") != "rest-hook":
        issues.append(issue(f"Subscription.channel.type must be rest-hook, not {channel.get('type')!r}",
                            "Subscription.channel.type"))
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str) or not _endpoint_allowed(endpoint, allow_http, loopback_http):
        issues.append(issue("Subscription.channel.endpoint must start with https://", "Subscription.channel.endpoint"))
    else:
        problem = _endpoint_problem(endpoint)
        if problem:
            issues.append(issue(f"Subscription.channel.endpoint {problem}", "Subscription.channel.endpoint"))
    if "payload" in channel or "_payload" in channel:
        issues.append(issue("Subscription.channel.payload must not be set: notifications have an empty body",
                            "Subscription.channel.payload"))
    headers = channel.get("header", [])
    for i, header in enumerate(headers if isinstance(headers, list) else []):
        if not isinstance(header, str) or not _HEADER_RE.match(header) or len(header) > 4096:
            issues.append(issue("channel.header entries must look like 'Name: value'",
                                f"Subscription.channel.header[{i}]"))
        elif header.split(":", 1)[0].strip().lower() in _RESERVED_HEADERS:
            issues.append(issue(f"channel.header may not set {header.split(':', 1)[0]!r}",
                                f"Subscription.channel.header[{i}]"))
    criteria = resource.get("criteria")
    if isinstance(criteria, str):
        problem = criteria_problem(criteria)
        if problem:
            issues.append(issue(problem, "Subscription.criteria"))
    return issues


def _endpoint_allowed(endpoint: str, allow_http: bool, loopback_http: bool) -> bool:
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme == "http":
        return allow_http or (loopback_http and parts.hostname in ("127.0.0.1", "localhost", "::1"))
    return False


def _endpoint_problem(endpoint: str) -> str | None:
    """What makes an https endpoint undeliverable or unsafe to log (None: fine)."""
    if not endpoint.isascii() or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in endpoint):
        return "must be an ASCII URL without spaces or control characters (percent-encode the rest)"
    parts = urlsplit(endpoint)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is no number from 0 to 65535)
    except ValueError:
        return "has no valid port (0-65535)"
    if parts.username is not None or parts.password is not None:
        return ("must not carry credentials (user:password@): they would show in every transmit AuditEvent; "
                "send them in channel.header")
    return None


def split_criteria(criteria: str) -> tuple[str, list[tuple[str, str]]]:
    rtype, _, query = criteria.strip().partition("?")
    return rtype, parse_qsl(query, keep_blank_values=True)


def criteria_problem(criteria: str) -> str | None:
    rtype, items = split_criteria(criteria)
    if rtype not in RESOURCE_TYPES:
        return f"Subscription.criteria must search a KT2 type (Type?params), not {rtype[:60]!r}"
    try:
        parse_query(rtype, items, default_count=1, max_count=1, criteria=True)
    except FhirError as error:
        return f"Subscription.criteria is not a usable search: {error.issues[0].diagnostics}"
    return None


def _reference_strings(resource: Any, root: str) -> Iterator[tuple[str, str]]:
    """(expression, text) of every `reference` string (iterative: any depth is safe)."""
    stack: list[tuple[Any, str]] = [(resource, root)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str):
                yield where, ref
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    stack.append((item, f"{where}.{key}"))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, (dict, list)):
                    stack.append((item, f"{where}[{i}]"))


def local_references(resource: Any, root: str) -> Iterator[tuple[str, str, str]]:
    """(expression, type, id) of every literal reference to a KT2 type."""
    for where, ref in _reference_strings(resource, root):
        match = _LOCAL_REF.match(ref)
        if match and match["type"] in RESOURCE_TYPES:
            yield where, match["type"], match["id"]


def reference_issues(resource: Any, root: str) -> list[Issue]:
    """A reference with whitespace or control characters is no literal reference (TOP-KT-003): without this
    rule `Patient/x<newline>` would be stored as it is, outside referential integrity and search."""
    return [issue(f"{where}.reference {ref[:80]!r} contains whitespace or control characters: literal "
                  "references look like Type/id", f"{where}.reference", "value")
            for where, ref in _reference_strings(resource, root)
            if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in ref)]


def origins_of(resource: dict) -> list[Any]:
    extensions = resource.get("extension")
    if not isinstance(extensions, list):
        return []
    return [e for e in extensions if isinstance(e, dict) and e.get("url") == ORIGIN_URL]


def origin_reference(resource: dict) -> str | None:
    found = origins_of(resource)
    if len(found) != 1:
        return None
    value = found[0].get("valueReference")
    ref = value.get("reference") if isinstance(value, dict) else None
    return ref if isinstance(ref, str) else None


def set_origin(resource: dict, device: str) -> None:
    extensions = resource.get("extension")
    if extensions is not None and not isinstance(extensions, list):
        return   # not an array: left as it is, so validation names it
    kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == ORIGIN_URL)] \
        if isinstance(extensions, list) else []
    kept.append({"url": ORIGIN_URL, "valueReference": {"reference": device, "type": "Device"}})
    resource["extension"] = kept

"""Generic steps every suite can use: send a request as a simulated role, check status, headers and JSON.

State of one scenario lives in a `ScenarioContext` (fixture `kt_context`, see
steps/conftest.py), never in module globals, so scenarios stay independent
under pytest-xdist.  A failed check names the one requirement it verifies:
these generic steps serve scenarios that carry exactly one @req: tag (they
say which otherwise, via `kt_requirements.pick`).  Problems of the bench
itself raise BenchError (BROKEN).

Step texts (use them verbatim in .feature files)::

    When the <role> requests <GET|DELETE|HEAD> <path>
    When an anonymous client requests <GET|HEAD> <path>
    Then the response status is <code>
    Then the response header "<name>" is "<value>"
    Then the response header "<name>" starts with "<prefix>"
    Then the response body is a FHIR "<resourceType>" resource
    Then the response JSON at "<path>" is "<value>"          (path like rest[0].mode)
    Then the response body passes the Koppeltaal <1|2> validator
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from pytest_bdd import parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.requirements import ScenarioRequirements, fail
from ktbench.http.client import RecordingClient
from ktbench.targets.model import Target

MISSING = object()
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass
class ScenarioContext:
    """What one scenario has seen so far (the last response, parsed JSON)."""

    requirements: ScenarioRequirements = field(default_factory=lambda: ScenarioRequirements(()))
    response: httpx.Response | None = None
    _json: Any = field(default=MISSING, repr=False)

    def __repr__(self) -> str:  # shown as a step parameter in Allure: keep it short and secret-free
        status = self.response.status_code if self.response is not None else None
        return f"<ScenarioContext last_status={status}>"

    def remember(self, response: httpx.Response) -> httpx.Response:
        self.response = response
        self._json = MISSING
        return response

    def fail(self, message: str) -> AssertionError:
        """The failure of a generic check: it names the scenario's one requirement."""
        try:
            fail(self.requirements.only(), message)
        except AssertionError as exc:
            return exc
        raise AssertionError(message)  # pragma: no cover - fail() always raises

    def last_response(self) -> httpx.Response:
        if self.response is None:
            raise BenchError("this step needs a response, but no earlier step sent a request")
        return self.response

    def json(self) -> Any:
        if self._json is MISSING:
            response = self.last_response()
            try:
                self._json = response.json()
            except ValueError:
                snippet = response.text[:200]
                raise self.fail(f"response body is not JSON (Content-Type "
                                f"{response.headers.get('content-type')!r}): {snippet!r}") from None
        return self._json


def json_path(data: Any, path: str) -> Any:
    """Follow a dotted path with [n] indexes (`rest[0].security.extension`); MISSING if absent."""
    current = data
    for name, index in _PATH_TOKEN.findall(path):
        if name:
            if not isinstance(current, dict) or name not in current:
                return MISSING
            current = current[name]
        else:
            i = int(index)
            if not isinstance(current, list) or i >= len(current):
                return MISSING
            current = current[i]
    return current


def target_url(target: Target, path: str) -> str:
    if not path.startswith("/"):
        raise BenchError(f"request paths in steps start with '/': {path!r}")
    return target.url + path


# ---------------------------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------------------------
@when(parsers.re(r"the (?P<role>[a-z][a-z-]*) requests (?P<method>GET|DELETE|HEAD) (?P<path>/\S*)"))
def _(role: str, method: str, path: str, kt_http: RecordingClient, kt_target: Target,
      kt_context: ScenarioContext) -> None:
    kt_context.remember(kt_http.request(method, target_url(kt_target, path), auth=kt_target.role(role)))


@when(parsers.re(r"an anonymous client requests (?P<method>GET|HEAD) (?P<path>/\S*)"))
def _(method: str, path: str, kt_http: RecordingClient, kt_target: Target, kt_context: ScenarioContext) -> None:
    kt_context.remember(kt_http.request(method, target_url(kt_target, path), role="anonymous"))


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------
@then(parsers.parse("the response status is {status:d}"))
def _(status: int, kt_context: ScenarioContext) -> None:
    response = kt_context.last_response()
    if response.status_code != status:
        raise kt_context.fail(f"expected HTTP status {status}, got {response.status_code} "
                              f"for {response.request.method} {response.request.url.path}")


@then(parsers.parse('the response header "{name}" is "{value}"'))
def _(name: str, value: str, kt_context: ScenarioContext) -> None:
    actual = kt_context.last_response().headers.get(name)
    if actual != value:
        raise kt_context.fail(f"expected header {name}: {value!r}, got {actual!r}")


@then(parsers.parse('the response header "{name}" starts with "{prefix}"'))
def _(name: str, prefix: str, kt_context: ScenarioContext) -> None:
    actual = kt_context.last_response().headers.get(name)
    if actual is None or not actual.startswith(prefix):
        raise kt_context.fail(f"expected header {name} starting with {prefix!r}, got {actual!r}")


@then(parsers.parse('the response body is a FHIR "{resource_type}" resource'))
def _(resource_type: str, kt_context: ScenarioContext) -> None:
    data = kt_context.json()
    actual = data.get("resourceType") if isinstance(data, dict) else None
    if actual != resource_type:
        raise kt_context.fail(f"expected a {resource_type} resource, got resourceType {actual!r}")


@then(parsers.parse('the response JSON at "{path}" is "{value}"'))
def _(path: str, value: str, kt_context: ScenarioContext) -> None:
    actual = json_path(kt_context.json(), path)
    if actual is MISSING:
        raise kt_context.fail(f"response JSON has no {path!r}")
    shown = actual if isinstance(actual, str) else json.dumps(actual)
    if shown != value:
        raise kt_context.fail(f"expected {path} = {value!r}, got {shown!r}")


@then(parsers.parse("the response body passes the Koppeltaal {kt:d} validator"))
def _(kt: int, kt_context: ScenarioContext, kt_events: Any) -> None:
    from ktbench.http.client import validation_event

    try:
        from ktbench.validation import validate_bytes  # optional component
    except ImportError as exc:
        raise BenchError(f"the validator (ktbench.validation.validate_bytes) is not available: {exc}") from None
    response = kt_context.last_response()
    content_type = response.headers.get("content-type")
    result = validate_bytes(response.content, content_type=content_type, kt=kt)
    event = validation_event(f"response to {response.request.method} {response.request.url}", content_type,
                             result)
    kt_events.emit(event)
    if not event.ok:
        lines = [f"{f.severity} {f.rule} at {f.location}: {f.message}" for f in event.errors[:10]]
        raise kt_context.fail("the response is not valid Koppeltaal {}:\n  ".format(kt) + "\n  ".join(lines))

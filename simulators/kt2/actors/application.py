"""A simulated KT2 application instance as a client of the voorziening: discovery, SMART backend services
tokens and FHIR REST.

What every KT2 application does (kt2-protocol.md §1, §4): read the domain's smart-configuration from the
FHIR base, sign a client assertion (RFC 7523: iss = sub = client id, aud = token endpoint, exp at most five
minutes ahead, unique jti, `kid` of a key in its JWKS) and trade it for a Bearer token, then read and write
resources with If-Match on every update.  The portal and the module add their own interactions
(`portal.py`, `module.py`).

Nothing here asserts anything: methods return the raw `httpx.Response`, so the suite's steps judge what the
voorziening answered.  Requests go through the one HTTP client of the session (the bench's
`RecordingClient`, which redacts and records every exchange); `PlainHttp` gives the same interface over a
bare httpx client for standalone use.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from simulators.kt2.actors.keys import KeyRing

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_JSON = "application/fhir+json"
FORM = "application/x-www-form-urlencoded"
ASSERTION_LIFETIME = 240          # seconds; KT2 allows at most 300 (TOP-KT-021)
TOKEN_MARGIN = 1.0                # fetch a new access token this long before the old one expires


class Http(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


class PlainHttp:
    """The `Http` interface over a plain httpx.Client (standalone simulators; `role` is ignored)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, url: str, *, role: str | None = None, **kwargs: Any) -> httpx.Response:
        kwargs.pop("validate", None)
        return self.client.request(method, url, **kwargs)


@dataclass
class AccessToken:
    value: str = field(repr=False)
    expires_at: float
    scope: str

    def __repr__(self) -> str:
        return f"<AccessToken scope={len(self.scope.split())} entries, expires in {self.expires_at - time.time():.0f}s>"


@dataclass
class Kt2Application:
    """One application instance registered in one domain."""

    name: str                         # the bench's name for it ("portal", "module", ...): the recorded role
    http: Http
    fhir_base: str
    client_id: str
    keys: KeyRing
    jwks_url: str = ""
    launch_url: str = ""
    redirect_uri: str = ""
    _configuration: dict[str, Any] | None = field(default=None, repr=False)
    _token: AccessToken | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} client_id={self.client_id!r}>"

    @property
    def device(self) -> str:
        """Its Device reference: client id = Device id (TOP-KT-007), the resource-origin of what it creates."""
        return f"Device/{self.client_id}"

    # -- discovery (TOP-KT-016) ------------------------------------------------------------------------
    def discover(self) -> httpx.Response:
        return self.http.request("GET", self.fhir_base.rstrip("/") + "/.well-known/smart-configuration",
                                 headers={"Accept": "application/json"}, role=self.name)

    @property
    def configuration(self) -> dict[str, Any]:
        """The smart-configuration (fetched once); a missing or broken one is the caller's problem to judge."""
        if self._configuration is None:
            answer = self.discover()
            try:
                data = answer.json()
            except ValueError:
                data = None
            if answer.status_code != 200 or not isinstance(data, dict):
                raise DiscoveryFailed(f"GET {self.fhir_base}/.well-known/smart-configuration answered "
                                      f"{answer.status_code} without a JSON object")
            self._configuration = data
        return self._configuration

    def endpoint(self, key: str) -> str:
        value = self.configuration.get(key)
        if not isinstance(value, str) or not value:
            raise DiscoveryFailed(f"the smart-configuration of {self.fhir_base} has no {key}")
        return value

    @property
    def token_endpoint(self) -> str:
        return self.endpoint("token_endpoint")

    # -- client assertions and tokens (SMART backend services) ------------------------------------------
    def assertion_claims(self, aud: str | None = None, *, lifetime: int = ASSERTION_LIFETIME,
                         **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.client_id, "sub": self.client_id, "aud": aud or self.token_endpoint,
                                "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
        body.update(claims)
        return body

    def assertion(self, aud: str | None = None, *, lifetime: int = ASSERTION_LIFETIME, drop: tuple[str, ...] = (),
                  header: dict[str, Any] | None = None, algorithm: str | None = None, **claims: Any) -> str:
        """A signed client assertion; `drop` removes claims, `header` overrides header fields (tests of refusals)."""
        body = self.assertion_claims(aud, lifetime=lifetime, **claims)
        for name in drop:
            body.pop(name, None)
        return self.keys.current.sign(body, header, algorithm)

    def request_token(self, assertion: str | None = None, *, url: str | None = None, **form: str | None) -> httpx.Response:
        """POST the token endpoint with grant client_credentials (form fields may be overridden or dropped)."""
        fields: dict[str, str | None] = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                         "client_assertion": assertion or self.assertion()}
        fields.update(form)
        data = {k: v for k, v in fields.items() if v is not None}
        return self.http.request("POST", url or self.token_endpoint, data=data,
                                 headers={"Accept": "application/json"}, role=self.name)

    def access_token(self, *, fresh: bool = False) -> str:
        """A Bearer token for FHIR calls, cached until shortly before it expires."""
        with self._lock:
            token = self._token
            if fresh or token is None or token.expires_at - TOKEN_MARGIN <= time.time():
                answer = self.request_token()
                token = self._token = _parse_token(answer, self)
            return token.value

    def forget_token(self) -> None:
        with self._lock:
            self._token = None

    # -- FHIR REST ------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.fhir_base.rstrip('/')}/{path.lstrip('/')}"

    def headers(self, extra: dict[str, str] | None = None, token: str | None = None) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON, "Authorization": f"Bearer {token or self.access_token()}"}
        headers.update(extra or {})
        return {k: v for k, v in headers.items() if v}

    def fhir(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
             params: dict[str, Any] | list[tuple[str, str]] | None = None, token: str | None = None,
             authenticated: bool = True) -> httpx.Response:
        extra = dict(headers or {})
        content = None
        if body is not None:
            content = body if isinstance(body, (bytes, str)) else json.dumps(body)
            extra.setdefault("Content-Type", FHIR_JSON)
        all_headers = self.headers(extra, token) if authenticated else {"Accept": FHIR_JSON, **extra}
        return self.http.request(method, self.url(path), headers=all_headers, content=content, params=params,
                                 role=self.name)

    def read(self, reference: str, **kwargs: Any) -> httpx.Response:
        return self.fhir("GET", reference, **kwargs)

    def create(self, resource: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.fhir("POST", resource["resourceType"], body=resource, **kwargs)

    def update(self, resource: dict[str, Any], version: str | None, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> httpx.Response:
        """PUT with `If-Match: W/"<version>"` (None: no If-Match, which KT2 forbids; for refusal checks)."""
        extra = dict(headers or {})
        if version is not None:
            extra.setdefault("If-Match", f'W/"{version}"')
        path = f"{resource['resourceType']}/{resource['id']}"
        return self.fhir("PUT", path, body=resource, headers=extra, **kwargs)

    def delete(self, reference: str, version: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"If-Match": f'W/"{version}"'} if version is not None else None
        return self.fhir("DELETE", reference, headers=headers, **kwargs)

    def search(self, rtype: str, params: dict[str, Any] | list[tuple[str, str]] | None = None,
               **kwargs: Any) -> httpx.Response:
        return self.fhir("GET", rtype, params=params, **kwargs)

    # -- introspection (TOP-KT-021) -------------------------------------------------------------------------
    def introspect(self, token: str, *, assertion: str | None = None, aud: str | None = None) -> httpx.Response:
        url = self.endpoint("introspection_endpoint")
        data = {"token": token, "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion or self.assertion(aud or self.token_endpoint)}
        return self.http.request("POST", url, data=data, headers={"Accept": "application/json"}, role=self.name)


class DiscoveryFailed(Exception):
    """The voorziening's smart-configuration could not be used (the steps decide whose fault that is)."""


class TokenRefused(Exception):
    """The token endpoint did not issue a token for a valid assertion."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


def _parse_token(answer: httpx.Response, app: Kt2Application) -> AccessToken:
    try:
        data = answer.json()
    except ValueError:
        data = None
    if answer.status_code != 200 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        detail = data.get("error_description") or data.get("error") if isinstance(data, dict) else answer.text[:120]
        raise TokenRefused(f"{app.name} ({app.client_id}) got no access token from {app.token_endpoint}: "
                           f"{answer.status_code} {detail}", answer)
    lifetime = data.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else 60.0
    return AccessToken(data["access_token"], time.time() + seconds, str(data.get("scope", "")))

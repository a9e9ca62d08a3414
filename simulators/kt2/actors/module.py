"""A simulated KT2 eHealth module: receives launches and turns them into a logged-in user (kt2-protocol.md §2).

Path A (no personal data): introspect the HTI token at the voorziening with its own client assertion
(`Kt2Application.introspect`).  Path B (SMART app launch, "SHOF"): redirect the browser to the
authorisation endpoint with the HTI token as `launch`, the fixed scope `launch openid fhirUser`, a random
`state`, `aud` = the FHIR base and a PKCE S256 challenge; after the identity provider, trade the code (with
the verifier and its own client assertion) for an `id_token` and the NOOP access token, which must never be
used on the store: the module reads the Task with its own backend-services token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.kt2.actors.application import JWT_BEARER, Kt2Application

LAUNCH_SCOPE = "launch openid fhirUser"


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class SmartLaunch:
    """One path-B launch in progress: what the module must remember between authorize and the code exchange."""

    launch: str = field(repr=False)
    iss: str
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default="", repr=False)
    challenge: str = ""

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()


class Kt2Module(Kt2Application):
    def authorize_params(self, flow: SmartLaunch, **changes: str | None) -> dict[str, str]:
        params: dict[str, str | None] = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "launch": flow.launch, "scope": LAUNCH_SCOPE, "state": flow.state, "aud": flow.iss,
            "code_challenge": flow.challenge, "code_challenge_method": "S256"}
        params.update(changes)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, flow: SmartLaunch, *, method: str = "GET", **changes: str | None) -> httpx.Response:
        """Send the browser to the authorisation endpoint (GET with a query, or POST a form: authorize-post)."""
        url = self.endpoint("authorization_endpoint")
        params = self.authorize_params(flow, **changes)
        if method == "POST":
            return self.http.request("POST", url, data=params, headers={"Accept": "text/html"}, role=self.name,
                                     validate=False)
        return self.http.request("GET", url, params=params, headers={"Accept": "text/html"}, role=self.name,
                                 validate=False)

    def follow(self, location: str) -> httpx.Response:
        """The browser following one redirect (never the FHIR validator's business)."""
        return self.http.request("GET", location, headers={"Accept": "text/html"}, role=self.name, validate=False)

    def exchange_code(self, flow: SmartLaunch, code: str, **changes: str | None) -> httpx.Response:
        fields: dict[str, Any] = {"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": self.redirect_uri, "code_verifier": flow.verifier,
                                  "client_assertion_type": JWT_BEARER, "client_assertion": self.assertion()}
        fields.update(changes)
        return self.http.request("POST", self.token_endpoint, data={k: v for k, v in fields.items() if v is not None},
                                 headers={"Accept": "application/json"}, role=self.name)

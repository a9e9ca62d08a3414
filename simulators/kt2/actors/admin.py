"""A person at the domain admin application (seed 001 chapters 3-5), through its JSON API.

The reference voorziening's domain admin (simulators/kt2/admin) offers the web page a person uses and a
JSON API with the same rights; the bench drives the API: an application admin files a connection request
for an application instance (name, JWKS URI, redirect URIs, launch URL), a domain admin accepts it with a
role (the voorziening then makes the Device and issues the client id) or rejects it, and changes instance
statuses ("Actief", "In onderhoud", "Afgesloten").  Each method returns the raw response; `session()` logs
in on first use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from ktbench.http.client import json_dict
from simulators.kt2.actors.application import Http


class AdminLoginFailed(Exception):
    """The admin account could not log in (a configuration problem, not the target's failure)."""


@dataclass
class AdminClient:
    name: str                         # the bench's name for the account ("domain-admin", ...)
    http: Http
    api: str                          # .../kt2/mgmt/api
    username: str
    password: str = field(repr=False)
    _session: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:
        return f"<AdminClient {self.name} {self.username!r}>"

    def login(self, password: str | None = None) -> httpx.Response:
        return self.http.request("POST", f"{self.api}/login", role=self.name, validate=False,
                                 json={"username": self.username,
                                       "password": self.password if password is None else password})

    def session(self) -> str:
        with self._lock:
            if self._session is None:
                answer = self.login()
                data = json_dict(answer)
                if answer.status_code != 200 or not isinstance(data.get("session"), str):
                    raise AdminLoginFailed(f"admin account {self.username!r} could not log in at {self.api}: "
                                           f"{answer.status_code} {data.get('error', '')}")
                self._session = data["session"]
            return self._session

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.session()}", "Accept": "application/json"}
        return self.http.request(method, f"{self.api}/{path.lstrip('/')}", headers=headers, json=body,
                                 params=params or None, role=self.name, validate=False)

    # -- what the seed's screens do -------------------------------------------------------------------------
    def file_request(self, application: str, domain: str, jwks_uri: str, *, name: str | None = None,
                     redirect_uris: list[str] | None = None, launch_url: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"application": application, "domain": domain, "jwks_uri": jwks_uri}
        if name:
            body["name"] = name
        if redirect_uris:
            body["redirect_uris"] = redirect_uris
        if launch_url:
            body["launch_url"] = launch_url
        return self.call("POST", "connection-requests", body)

    def connection_request(self, request_id: str) -> httpx.Response:
        return self.call("GET", f"connection-requests/{request_id}")

    def accept(self, request_id: str, role: str) -> httpx.Response:
        return self.call("POST", f"connection-requests/{request_id}/accept", {"role": role})

    def reject(self, request_id: str, reason: str) -> httpx.Response:
        return self.call("POST", f"connection-requests/{request_id}/reject", {"reason": reason})

    def instance(self, client_id: str) -> httpx.Response:
        return self.call("GET", f"instances/{client_id}")

    def set_status(self, client_id: str, status: str, reason: str) -> httpx.Response:
        return self.call("POST", f"instances/{client_id}/status", {"status": status, "reason": reason})

    def outbox(self, limit: int = 50) -> httpx.Response:
        return self.call("GET", "outbox", limit=limit)

    def domain(self, domain: str) -> httpx.Response:
        """The domain's detail screen (name, title, environment)."""
        return self.call("GET", f"domains/{domain}")

    def domain_instances(self, domain: str) -> httpx.Response:
        """The tab "Applicatieinstanties" of a domain."""
        return self.call("GET", f"domains/{domain}/instances")

    def unblock(self, username: str) -> httpx.Response:
        """Unblock an account after too many wrong passwords (the reference's stand-in for support@itzos.com)."""
        return self.call("POST", f"accounts/{username}/unblock")

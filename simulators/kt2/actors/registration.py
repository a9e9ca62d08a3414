"""Joining a domain (seed 001 §5.3-5.6): an application admin files a connection request, the domain admin
accepts it with a role, and the voorziening issues the client id (= Device id).

The bench registers its simulated applications this way on every run against a voorziening whose admin
accounts it has, exactly as a vendor would, so nothing about the target's data needs to be known up front.
`register()` returns the client id, or raises `RegistrationFailed` saying which step did not work (the
suite turns that into a broken scenario naming the step, never a failed one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktbench.http.client import json_dict
from simulators.kt2.actors.admin import AdminClient


class RegistrationFailed(Exception):
    """The domain admin did not register an instance; the message names the step and the answer."""


@dataclass(frozen=True)
class Registration:
    request_id: str
    client_id: str
    request: dict[str, Any]


def register(filer: AdminClient, approver: AdminClient, *, application: str, domain: str, role: str,
             jwks_uri: str, name: str | None = None, redirect_uris: list[str] | None = None,
             launch_url: str | None = None) -> Registration:
    filed = filer.file_request(application, domain, jwks_uri, name=name, redirect_uris=redirect_uris,
                               launch_url=launch_url)
    request = json_dict(filed)
    if filed.status_code != 201 or not isinstance(request.get("id"), str):
        raise RegistrationFailed(f"filing a connection request for {application} in {domain} answered "
                                 f"{filed.status_code} {request.get('error', '')} {request.get('detail', '')}".strip())
    request_id = request["id"]
    if request.get("status") != "accepted":
        accepted = approver.accept(request_id, role)
        request = json_dict(accepted)
        if accepted.status_code != 200:
            raise RegistrationFailed(f"accepting connection request {request_id} with role {role!r} answered "
                                     f"{accepted.status_code} {request.get('error', '')} "
                                     f"{request.get('detail', '')}".strip())
    client_id = request.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationFailed(f"connection request {request_id} was accepted without a client id")
    return Registration(request_id, client_id, request)

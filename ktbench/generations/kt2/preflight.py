"""Before any KT2 scenario runs: is the target a reachable KT2 FHIR base, and does it accept the bench's
credentials?

A set-up mistake (the server root pasted instead of a domain's FHIR base, a wrong admin password, a
pre-registered client id the voorziening does not know, a private key that does not match the registered
JWKS) must come out as a configuration verdict, not as fifty failed scenarios.  Only what proves the
configuration wrong counts: a smart-configuration that is not JSON at all (wrong URL), a token refused with
401 `invalid_client` for a pre-registered instance, an admin log-in refused with 401/423.  Everything else
about the answers is the suite's to judge.
"""

from __future__ import annotations

from typing import Any

import httpx

from ktbench.core.generation import PreflightProblem
from ktbench.targets.model import AccountCredential, SmartBackendCredential, Target

TIMEOUT = 10.0
LOCKOUT_ROLE = "lockout-account"


def admin_api(target: Target, configuration: dict[str, Any]) -> str | None:
    """The domain admin JSON API: the declared one, else under the smart-configuration's management_endpoint."""
    declared = target.setting("admin_api")
    if declared:
        return declared
    management = configuration.get("management_endpoint")
    if isinstance(management, str) and management:
        return management.rstrip("/") + "/api"
    return None


def preflight(target: Target) -> list[PreflightProblem]:
    from simulators.kt2.actors import KeyRing, Kt2Application, PlainHttp

    with httpx.Client(timeout=min(TIMEOUT, target.request_timeout_seconds), verify=target.tls.httpx_verify(),
                      cert=target.tls.httpx_cert(), follow_redirects=False) as client:
        discovery = target.url + "/.well-known/smart-configuration"
        try:
            answer = client.get(discovery, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            return [PreflightProblem("unreachable", f"the target {target.url} cannot be reached "
                                     f"({type(exc).__name__}: {exc or 'no detail'}); check the URL and that it runs")]
        try:
            configuration = answer.json()
        except ValueError:
            configuration = None
        if not isinstance(configuration, dict) or not isinstance(configuration.get("token_endpoint"), str):
            return [PreflightProblem("protocol", f"{target.url} has no SMART configuration with a token_endpoint at "
                                     f"/.well-known/smart-configuration (HTTP {answer.status_code}): give one "
                                     "domain's FHIR base URL, e.g. https://host/api/v1/<domain>/fhir/r4")]
        problems: list[PreflightProblem] = []
        apps = {r: c for r, c in target.roles.items() if isinstance(c, SmartBackendCredential)}
        accounts = {r: c for r, c in target.roles.items() if isinstance(c, AccountCredential)}
        if not apps and not {"application-admin", "domain-admin"} <= set(accounts):
            problems.append(PreflightProblem(
                "configuration", f"target {target.name!r} gives neither pre-registered applications (roles portal "
                "and module, type smart-backend) nor the admin accounts the bench registers its own with (roles "
                "application-admin and domain-admin)"))
        http = PlainHttp(client)
        for role, creds in sorted(apps.items()):
            try:
                keys = KeyRing.from_private_text(creds.private_key_text().reveal(), creds.kid, creds.algorithm)
            except (ValueError, TypeError, OSError) as exc:
                problems.append(PreflightProblem("configuration", f"role {role}: the private key cannot be read "
                                                 f"({type(exc).__name__})"))
                continue
            app = Kt2Application(role, http, target.url, creds.client_id, keys)
            app._configuration = configuration
            try:
                token = app.request_token()
            except httpx.TransportError as exc:
                problems.append(PreflightProblem("unreachable", f"role {role}: the token endpoint cannot be reached "
                                                 f"({type(exc).__name__})"))
                continue
            if token.status_code in (400, 401, 403):
                problems.append(PreflightProblem(
                    "credentials", f"role {role}: the voorziening refused a token to client {creds.client_id!r} "
                    f"(HTTP {token.status_code} {_error(token)}); check [targets.{target.name}.roles.{role}] "
                    "client_id, the private key, its kid and that the instance is approved and active"))
        api = admin_api(target, configuration) if accounts else None
        for role, creds in sorted(accounts.items()):
            if api is None:
                problems.append(PreflightProblem("configuration", f"role {role}: no admin API is known; set "
                                                 f"[targets.{target.name}] admin_api"))
                break
            try:
                login = client.post(f"{api}/login", json={"username": creds.username,
                                                           "password": creds.password.reveal()})
            except httpx.TransportError as exc:
                problems.append(PreflightProblem("unreachable", f"role {role}: the admin API {api} cannot be "
                                                 f"reached ({type(exc).__name__})"))
                continue
            if login.status_code == 423 and role == LOCKOUT_ROLE:
                continue   # the lock-out scenario blocks this account on purpose (and unblocks it before it starts)
            if login.status_code in (401, 403, 423):
                problems.append(PreflightProblem(
                    "credentials", f"role {role}: the domain admin refused the log-in of {creds.username!r} "
                    f"(HTTP {login.status_code} {_error(login)}); check [targets.{target.name}.roles.{role}]"))
            elif login.status_code == 404:
                problems.append(PreflightProblem("configuration", f"role {role}: no admin API at {api} (HTTP 404); "
                                                 f"set [targets.{target.name}] admin_api"))
        return problems


def _error(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""

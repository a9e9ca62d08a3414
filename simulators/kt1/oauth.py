"""KT1 single sign-on: Launch, MobileLaunch, Authorize, Token (SMART-on-FHIR, KT1 flavour).

A portal asks the server to launch an eHealth module for a patient; the
module trades the launch id (or a mobile activation code) for an
authorization code and then for a Bearer token that only reaches that
patient's messages.  Codes and activation codes are single use; refreshing
rotates both tokens and kills the old ones.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from ktbench.fhir.dstu1.constants import FHIR_BASE_PATH
from simulators.kt1.caller import Caller
from simulators.kt1.context import Kt1Context
from simulators.kt1.data import Application
from simulators.kt1.errors import FhirError, bad_request, unauthorized

SCOPE = "patient/*.read"


def _param(params: dict[str, str], name: str, required: bool = True) -> str | None:
    for key, value in params.items():
        if key.lower() == name.lower():
            if value.strip():
                return value
            break
    if required:
        raise bad_request(f"Missing parameter '{name}'", "required")
    return None


def _target_app(ctx: Kt1Context, caller: Caller, client_id: str) -> Application:
    app = ctx.data.by_id(client_id)
    if app is None or app.domain != caller.domain:
        raise bad_request(f"Unknown application '{client_id}' in domain '{caller.domain}'", "not-found")
    return app


def _new_launch(ctx: Kt1Context, caller: Caller, params: dict[str, str], kind: str) -> tuple[str, Application]:
    target = _target_app(ctx, caller, _param(params, "client_id"))
    launch_id = secrets.token_hex(16)
    lifetime = ctx.settings.launch_seconds if kind == "web" else ctx.settings.activation_code_days * 86400
    activation = _activation_code(ctx) if kind == "mobile" else None
    ctx.store.execute(
        "INSERT INTO launches(launch_id, kind, domain, client_id, launcher, patient, user, resource, intent, "
        "activation_code, expires) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (launch_id, kind, caller.domain, target.id, caller.app.id, _param(params, "patient"),
         _param(params, "user"), _param(params, "resource", required=False),
         _param(params, "intent", required=False), activation, ctx.now() + lifetime))
    return launch_id, target


def _activation_code(ctx: Kt1Context) -> str:
    while True:
        code = f"{secrets.randbelow(1_000_000):06d}"
        if ctx.store.one("SELECT 1 FROM launches WHERE activation_code = ?", (code,)) is None:
            return code


def launch(ctx: Kt1Context, caller: Caller, params: dict[str, str], base: str) -> str:
    """Returns the redirect target: the module's launch URL with iss, launch, application_id, launch_id."""
    with ctx.store.transaction():
        launch_id, target = _new_launch(ctx, caller, params, "web")
        if not target.launch_url:
            raise bad_request(f"Application '{target.id}' has no launch URL", "not-supported")
    query = {"iss": base + FHIR_BASE_PATH, "launch": launch_id}
    if not ctx.fault("launch-without-launch-id"):
        query.update({"application_id": target.id, "launch_id": launch_id})
    sep = "&" if urlsplit(target.launch_url).query else "?"
    return f"{target.launch_url}{sep}{urlencode(query)}"


def mobile_launch(ctx: Kt1Context, caller: Caller, params: dict[str, str]) -> dict[str, Any]:
    with ctx.store.transaction():
        launch_id, _ = _new_launch(ctx, caller, params, "mobile")
        row = ctx.store.one("SELECT activation_code FROM launches WHERE launch_id = ?", (launch_id,))
    return {"activation_code": row["activation_code"], "expires_in": ctx.settings.activation_code_days}


def authorize(ctx: Kt1Context, params: dict[str, str]) -> tuple[str | None, dict[str, Any] | None]:
    """(redirect URL, None) for a web launch, (None, JSON body) for a mobile activation code."""
    if _param(params, "response_type") != "code":
        raise bad_request("response_type must be 'code'", "not-supported")
    client_id = _param(params, "client_id")
    scopes = (_param(params, "scope") or "").split()
    launch_refs = [s.split(":", 1)[1] for s in scopes if s.startswith("launch:") and len(s) > 7]
    if len(launch_refs) != 1:
        raise bad_request("scope must contain exactly one 'launch:<id>'", "required")
    ref = launch_refs[0]
    redirect_uri = _param(params, "redirect_uri", required=False)
    if redirect_uri is not None:
        _check_redirect_uri(redirect_uri)
    state = _param(params, "state", required=False)
    with ctx.store.transaction():
        row = ctx.store.one("SELECT * FROM launches WHERE launch_id = ? OR activation_code = ?", (ref, ref))
        if row is None or row["client_id"] != client_id:
            raise bad_request("Unknown launch for this client", "not-found")
        if row["used"]:
            raise bad_request("This launch has already been used", "invalid")
        if row["expires"] < ctx.now():
            raise bad_request("This launch has expired", "expired")
        mobile = row["kind"] == "mobile" and row["activation_code"] == ref
        if not mobile and not redirect_uri:
            raise bad_request("Missing parameter 'redirect_uri'", "required")
        ctx.store.execute("UPDATE launches SET used = 1 WHERE launch_id = ?", (row["launch_id"],))
        code = secrets.token_urlsafe(24)
        ctx.store.execute("INSERT INTO codes(code, launch_id, client_id, redirect_uri, expires) VALUES (?,?,?,?,?)",
                          (code, row["launch_id"], client_id, redirect_uri,
                           ctx.now() + ctx.settings.authorization_code_seconds))
    if mobile:
        return None, {"authorization_code": code}
    query = {"code": code}
    if state is not None:
        query["state"] = state
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{sep}{urlencode(query)}", None


def _check_redirect_uri(uri: str) -> None:
    """Any redirect_uri is accepted (none are registered), but it must be an absolute URL we can extend."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise bad_request("redirect_uri is not a valid URL", "invalid") from None
    if not parts.scheme or not (parts.netloc or parts.path) or any(ord(c) < 33 or c == "\x7f" for c in uri):
        raise bad_request("redirect_uri must be an absolute URL", "invalid")


def token(ctx: Kt1Context, params: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
    client = None
    if basic is not None:
        client = ctx.data.by_id(basic[0])
        if client is None or (client.client_secret != basic[1] and not ctx.fault("auth-not-checked")):
            raise unauthorized("Client authentication failed")
    grant = _param(params, "grant_type")
    with ctx.store.transaction():
        if grant == "authorization_code":
            launch_id, client_id, code = _redeem_code(ctx, params, client)
        elif grant == "refresh_token":
            launch_id, client_id, code = _redeem_refresh(ctx, params, client)
        else:
            raise bad_request(f"Unsupported grant_type '{grant}'", "not-supported")
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        ctx.store.execute(
            "INSERT INTO tokens(access_token, refresh_token, code, launch_id, client_id, expires) VALUES (?,?,?,?,?,?)",
            (access, refresh, code, launch_id, client_id, ctx.now() + ctx.settings.access_token_seconds))
        launch_row = ctx.store.one("SELECT * FROM launches WHERE launch_id = ?", (launch_id,))
    expires: int | str = ctx.settings.access_token_seconds
    body: dict[str, Any] = {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": str(expires) if ctx.fault("expires-in-string") else expires,
        "scope": SCOPE,
        "domain": launch_row["domain"],
        "patient": launch_row["patient"],
        "user": launch_row["user"],
        "resource": launch_row["resource"],
    }
    if launch_row["intent"]:
        body["intent"] = launch_row["intent"]
    return body


def _redeem_code(ctx: Kt1Context, params: dict[str, str], client: Application | None) -> tuple[str, str, str]:
    code = _param(params, "code")
    row = ctx.store.one("SELECT * FROM codes WHERE code = ?", (code,))
    if row is None:
        raise bad_request("Unknown authorization code", "invalid")
    if client is not None and client.id != row["client_id"]:
        raise bad_request("The authorization code was issued to another client", "invalid")
    if row["used"] and not ctx.fault("code-reusable"):
        # A replayed code may be stolen: revoke what it bought (OAuth 2.0 security practice).
        ctx.store.execute("UPDATE tokens SET revoked = 1 WHERE code = ?", (code,))
        raise _commit_then(bad_request("The authorization code has already been used", "invalid"))
    if row["expires"] < ctx.now():
        raise bad_request("The authorization code has expired", "expired")
    redirect_uri = _param(params, "redirect_uri", required=False)
    if row["redirect_uri"] and redirect_uri != row["redirect_uri"]:
        raise bad_request("redirect_uri does not match the one of the authorization request", "invalid")
    ctx.store.execute("UPDATE codes SET used = 1 WHERE code = ?", (code,))
    return row["launch_id"], row["client_id"], code


def _redeem_refresh(ctx: Kt1Context, params: dict[str, str], client: Application | None) -> tuple[str, str, str]:
    refresh = _param(params, "refresh_token")
    row = ctx.store.one("SELECT * FROM tokens WHERE refresh_token = ?", (refresh,))
    if row is None or row["revoked"]:
        raise bad_request("Unknown or revoked refresh token", "invalid")
    if client is not None and client.id != row["client_id"]:
        raise bad_request("The refresh token was issued to another client", "invalid")
    if not ctx.fault("refresh-token-reusable"):
        ctx.store.execute("UPDATE tokens SET revoked = 1 WHERE access_token = ?", (row["access_token"],))
    return row["launch_id"], row["client_id"], row["code"]


def _commit_then(error: FhirError) -> FhirError:
    """Mark an error whose side effects (token revocation) must still be committed."""
    error.commit_side_effects = True  # type: ignore[attr-defined]
    return error


def caller_from_token(ctx: Kt1Context, access_token: str) -> Caller:
    row = ctx.store.one(
        "SELECT t.*, l.patient FROM tokens t JOIN launches l ON l.launch_id = t.launch_id WHERE t.access_token = ?",
        (access_token,))
    if row is None or row["revoked"]:
        raise unauthorized("Authentication failed: unknown or revoked Bearer token")
    if row["expires"] < ctx.now():
        error = unauthorized(f"Authentication failed: Bearer token has expired at {ctx.instant(row['expires'])}")
        error.issues[0].code = "expired"
        raise error
    app = ctx.data.by_id(row["client_id"])
    if app is None:  # the data file changed under a file database
        raise unauthorized("Authentication failed: the token's application no longer exists")
    return Caller(app, patient=row["patient"], via_token=True)

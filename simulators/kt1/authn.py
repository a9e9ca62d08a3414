"""Authentication on every KT1 endpoint: HTTP Basic per application instance, or an SSO Bearer token.

Kept apart from the request plumbing (http.py) and the OAuth flows (oauth.py) so neither imports the
other: oauth.py issues and resolves tokens, this module decides which credential a request carries.
"""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from simulators.kt1.caller import Caller
from simulators.kt1.context import Kt1Context
from simulators.kt1.errors import unauthorized
from simulators.kt1.oauth import caller_from_token


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII bytes in the header (UnicodeDecodeError too)
        raise unauthorized("Malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise unauthorized("Malformed Basic credentials")
    return user, password


def authenticate(ctx: Kt1Context, request: Request, *, allow_bearer: bool = True) -> Caller:
    """Basic per application instance, or a Bearer token from the SSO flow."""
    header = request.headers.get("authorization", "")
    scheme = header.partition(" ")[0].lower()
    if scheme == "bearer" and allow_bearer:
        return caller_from_token(ctx, header.partition(" ")[2].strip())
    creds = basic_credentials(request)
    if creds is None:
        raise unauthorized("Authentication required")
    user, password = creds
    app = ctx.data.by_username(user)
    if app is None or (app.password != password and not ctx.fault("auth-not-checked")):
        raise unauthorized("Authentication failed: unknown user or wrong password")
    return Caller(app)

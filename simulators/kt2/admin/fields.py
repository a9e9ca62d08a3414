"""Checks of what an application admin submits for a connection request: URLs and short texts.

Shared by the JSON API and the web form, so both refuse the same input with the same 422 detail.  The rules
(kt2-protocol.md §1.2, §1.6, §2.3): the JWKS URI is an absolute https URL (http only on a loopback host when
`settings.allow_loopback_http_jwks`, for local runs and tests); the launch URL is https under the same switch;
redirect URIs are absolute http(s) URLs.  No URL may carry credentials or a fragment, control characters or
spaces, or be longer than 2048 characters.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from simulators.kt2.admin.errors import invalid

MAX_URL = 2048
MAX_NAME = 200
MAX_REDIRECT_URIS = 20


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, what: str, *, https_only: bool, loopback_http: bool) -> str:
    """The URL (stripped) or 422 naming `what` and the rule it breaks (never echoing the value)."""
    url = value.strip()
    if not url:
        raise invalid(f"{what} must not be empty")
    if len(url) > MAX_URL:
        raise invalid(f"{what} is longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise invalid(f"{what} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in range)
    except ValueError:
        raise invalid(f"{what} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise invalid(f"{what} must be an absolute http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise invalid(f"{what} must not carry credentials")
    if parts.fragment or url.endswith("#"):
        raise invalid(f"{what} must not have a fragment")
    if https_only and scheme != "https" and not (loopback_http and is_loopback(host)):
        allowed = " (http only for a loopback host)" if loopback_http else ""
        raise invalid(f"{what} must be an https URL{allowed}")
    return url


def check_name(value: str, what: str = "name") -> str:
    name = value.strip()
    if not name:
        raise invalid(f"{what} must not be empty")
    if len(name) > MAX_NAME:
        raise invalid(f"{what} is longer than {MAX_NAME} characters")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in name):
        raise invalid(f"{what} must not contain control characters")
    return name

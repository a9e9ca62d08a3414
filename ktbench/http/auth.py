"""httpx auth classes over `Secret`s: the token never shows in a repr, a log line or a report."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ktbench.core.secret import Secret


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` from a Secret (or str)."""

    def __init__(self, token: Secret | str) -> None:
        self._token = token if isinstance(token, Secret) else Secret(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(***)"

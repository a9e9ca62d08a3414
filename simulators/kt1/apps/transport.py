"""The plain HTTP client a simulated application under test uses: no recording, no validation.

The actors of simulators/kt1/actors expect the bench's recording client (`request(..., role=, auth=)` with a
BasicCredential); an application under test is not the bench, so its traffic is recorded where a vendor's
would be - at the bench's server - and this adapter only translates the actors' calls to httpx.
"""

from __future__ import annotations

from typing import Any

import httpx

from ktbench.targets.model import BasicCredential


class PlainHttp:
    def __init__(self, timeout: float = 10.0) -> None:
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def request(self, method: str, url: str, *, role: str | None = None, auth: Any = None,
                **kwargs: Any) -> httpx.Response:
        if isinstance(auth, BasicCredential):
            auth = httpx.BasicAuth(*auth.basic_auth())
        if auth is not None:
            kwargs["auth"] = auth
        return self._client.request(method, url, **{k: v for k, v in kwargs.items() if v is not None})

    def close(self) -> None:
        self._client.close()

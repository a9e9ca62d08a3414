"""A simulated KT2 portal: the application that assigns activities (Tasks) and launches modules.

On top of `Kt2Application` a portal builds and signs HTI launch tokens with its own key (kt2-protocol.md
§2.2: iss = its client id, aud = the module's Device, sub = the user, resource = the Task, iat/exp at most
five minutes apart, a fresh jti, `kid` in the header) and form-POSTs `launch` + `iss` to the module's launch
URL, the Endpoint.address of the module's ActivityDefinition (§2.3).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from simulators.kt2.actors.application import FORM, Kt2Application

HTI_LIFETIME = 240


class Kt2Portal(Kt2Application):
    def hti_claims(self, module_device: str, sub: str, task: str, *, lifetime: int = HTI_LIFETIME,
                   drop: tuple[str, ...] = (), **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.client_id, "aud": module_device, "sub": sub, "resource": task,
                                "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
        body.update({k: v for k, v in claims.items() if v is not None})
        for name in drop:
            body.pop(name, None)
        return body

    def hti(self, module_device: str, sub: str, task: str, *, header: dict[str, Any] | None = None,
            algorithm: str | None = None, **kwargs: Any) -> str:
        """A signed HTI launch token for the module whose Device is `module_device`."""
        return self.keys.current.sign(self.hti_claims(module_device, sub, task, **kwargs), header, algorithm)

    def launch(self, launch_url: str, token: str, iss: str | None = None) -> httpx.Response:
        """The browser's form POST to the module's launch URL: `launch` and `iss` (= the FHIR base)."""
        return self.http.request("POST", launch_url, data={"launch": token, "iss": iss or self.fhir_base},
                                 headers={"Content-Type": FORM, "Accept": "text/html"}, role=self.name,
                                 validate=False)

"""The voorziening client of a simulated application under test: the bench's own actor classes
(simulators/kt2/actors) with the application's fault flags applied to its client assertions.

Reusing `Kt2Application` keeps the fault-free application exactly as correct as the bench's own actors;
each assertion fault changes one thing in what the application signs.
"""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from simulators.kt2.actors.application import ASSERTION_LIFETIME
from simulators.kt2.actors.module import Kt2Module
from simulators.kt2.actors.portal import Kt2Portal

FIXED_JTI = "ktbench-app-fixed-jti"
LONG_LIFETIME = 3600


class FaultyAssertions:
    """Mixin: `faults` (a frozenset of names) decides how the assertion goes wrong."""

    faults: frozenset[str] = frozenset()

    def assertion(self, aud: str | None = None, *, lifetime: int = ASSERTION_LIFETIME,  # type: ignore[override]
                  drop: tuple[str, ...] = (), header: dict[str, Any] | None = None, algorithm: str | None = None,
                  **claims: Any) -> str:
        if "assertion-wrong-aud" in self.faults and aud is None:
            aud = self.fhir_base  # type: ignore[attr-defined]
        if "assertion-long-lifetime" in self.faults:
            lifetime = LONG_LIFETIME
        if "assertion-reused-jti" in self.faults:
            claims["jti"] = FIXED_JTI
        if "assertion-no-kid" in self.faults:
            header = {**(header or {}), "kid": None}
        if "assertion-hs256" in self.faults:
            body = self.assertion_claims(aud, lifetime=lifetime, **claims)  # type: ignore[attr-defined]
            secret = OctKey.import_key(b"a shared secret the voorziening never had" * 2)
            return jwt.encode({"alg": "HS256", "typ": "JWT"}, body, secret, algorithms=["HS256"])
        return super().assertion(aud, lifetime=lifetime, drop=drop, header=header,  # type: ignore[misc]
                                 algorithm=algorithm, **claims)


class AppPortalClient(FaultyAssertions, Kt2Portal):
    pass


class AppModuleClient(FaultyAssertions, Kt2Module):
    pass


def version_of(resource: dict[str, Any], etag: str | None) -> str:
    """The version a read answered: the ETag's W/"n", else meta.versionId."""
    if etag:
        return etag.removeprefix("W/").strip('"')
    return str((resource.get("meta") or {}).get("versionId", ""))


def now() -> int:
    return int(time.time())

"""Checking JWTs that applications sign: client assertions (RFC 7523) and HTI launch tokens.

Every JWT operation goes through joserfc; what is ours is the order of the claim checks and their
messages.  A refusal raises `Refused` with a description that names the problem and never the token.
Replay protection keeps each `jti` in the database until the JWT's `exp` (also across a restart).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jws import extract_compact

from simulators.kt2.auth.client_keys import ClientKeys, KeyProblem
from simulators.kt2.context import InstanceRecord, Kt2Context

MAX_JWT_BYTES = 16_384
ASYMMETRIC = ("RS", "ES", "PS")
SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_jti (
    namespace TEXT NOT NULL, jti TEXT NOT NULL, exp REAL NOT NULL, PRIMARY KEY (namespace, jti));
CREATE INDEX IF NOT EXISTS auth_jti_exp ON auth_jti (exp);
"""


class Refused(Exception):
    """A JWT is not acceptable; str() is the error_description (no secret in it)."""


@dataclass(frozen=True)
class Unverified:
    header: dict[str, Any]
    claims: dict[str, Any]


def peek(token: str, what: str = "JWT") -> Unverified:
    """Header and claims WITHOUT checking anything: only to know which key and issuer to check against."""
    if not isinstance(token, str) or not token:
        raise Refused(f"the {what} is missing")
    if len(token) > MAX_JWT_BYTES:
        raise Refused(f"the {what} is larger than {MAX_JWT_BYTES} bytes")
    if token.count(".") != 2:
        raise Refused(f"the {what} is not a compact JWS (header.payload.signature)")
    try:
        compact = extract_compact(token.encode("ascii"))
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError, TypeError):
        raise Refused(f"the {what} cannot be decoded (bad base64url or JSON)") from None
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise Refused(f"the {what} claims are not a JSON object")
    return Unverified(header, claims)


class JwtChecks:
    def __init__(self, ctx: Kt2Context, client_keys: ClientKeys) -> None:
        self.ctx = ctx
        self.client_keys = client_keys
        self._uses = 0
        ctx.store.ensure_schema(SCHEMA)

    # -- pieces ---------------------------------------------------------------------------------------
    def algorithm(self, header: dict, what: str) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise Refused(f"the {what} header has no alg")
        if alg == "HS256" and self.ctx.fault("hs256-accepted"):
            return alg
        if not alg.startswith(ASYMMETRIC):
            raise Refused(f"alg {alg[:20]!r} is not allowed: only asymmetric signatures "
                          f"({', '.join(self.ctx.settings.signing_algorithms)})")
        if alg not in self.ctx.settings.signing_algorithms:
            raise Refused(f"alg {alg[:20]!r} is not supported (supported: "
                          f"{', '.join(self.ctx.settings.signing_algorithms)})")
        return alg

    async def verify_signature(self, token: str, header: dict, instance: InstanceRecord, what: str) -> None:
        alg = self.algorithm(header, what)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused(f"the {what} header has no kid (required with a JWKS, TOP-KT-021)")
        try:
            key, published = await self.client_keys.key_for(instance, kid)
        except KeyProblem as problem:
            raise Refused(str(problem)) from None
        if alg == "HS256":  # fault hs256-accepted: HMAC keyed with the public key's canonical JWK bytes
            secret = json.dumps(published, sort_keys=True, separators=(",", ":")).encode()
            key = OctKey.import_key({"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()})
        try:
            jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError):
            raise Refused(f"the {what} signature does not verify with key {kid[:80]!r} ({alg})") from None

    def time_claims(self, claims: dict, what: str, max_lifetime: float, *, require_iat: bool = False,
                    lifetime_from_iat: bool = False) -> float:
        """exp (required), iat, nbf; returns exp."""
        now = self.ctx.clock.now()
        skew = self.ctx.settings.clock_skew_seconds
        exp = claims.get("exp")
        if not _number(exp):
            raise Refused(f"the {what} has no numeric exp claim")
        iat = claims.get("iat")
        if iat is None and require_iat:
            raise Refused(f"the {what} has no iat claim")
        if iat is not None and not _number(iat):
            raise Refused(f"the {what} iat claim is not a number")
        nbf = claims.get("nbf")
        if nbf is not None and not _number(nbf):
            raise Refused(f"the {what} nbf claim is not a number")
        if self.ctx.fault("exp-not-checked"):
            return float(exp)
        if exp < now - skew:
            raise Refused(f"the {what} has expired")
        if lifetime_from_iat and iat is not None and exp - iat > max_lifetime:
            raise Refused(f"the {what} lives {int(exp - iat)} s (exp - iat); at most {int(max_lifetime)} s allowed")
        if not lifetime_from_iat and exp > now + max_lifetime + skew:
            raise Refused(f"the {what} exp is more than {int(max_lifetime)} s ahead")
        if iat is not None and iat > now + skew:
            raise Refused(f"the {what} iat lies in the future")
        if nbf is not None and nbf > now + skew:
            raise Refused(f"the {what} is not valid yet (nbf)")
        return float(exp)

    def use_jti(self, namespace: str, claims: dict, exp: float, what: str, *, enforce: bool = True) -> None:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise Refused(f"the {what} has no usable jti claim")
        store = self.ctx.store
        now = self.ctx.clock.now()
        with store.transaction():
            seen = store.one("SELECT exp FROM auth_jti WHERE namespace=? AND jti=?", (namespace, jti))
            if seen is not None and seen[0] >= now - self.ctx.settings.clock_skew_seconds and enforce:
                raise Refused(f"the {what} jti was used before (replay)")
            store.execute("INSERT INTO auth_jti (namespace, jti, exp) VALUES (?,?,?) ON CONFLICT (namespace, jti) "
                          "DO UPDATE SET exp=excluded.exp",
                          (namespace, jti, max(exp, now) + self.ctx.settings.clock_skew_seconds))
            self._uses += 1
            if self._uses % 10_000 == 0:   # a long-running server forgets jtis an hour after they expired
                self.purge()

    def jti_used(self, namespace: str, jti: Any) -> bool:
        return isinstance(jti, str) and self.ctx.store.one(
            "SELECT 1 FROM auth_jti WHERE namespace=? AND jti=?", (namespace, jti)) is not None

    def purge(self) -> None:
        self.ctx.store.execute("DELETE FROM auth_jti WHERE exp < ?", (self.ctx.clock.now() - 3600,))

    # -- client assertions ------------------------------------------------------------------------------
    async def client_assertion(self, domain: str, assertion: str, audiences: tuple[str, ...]) -> InstanceRecord:
        """The registered, active instance that signed `assertion` for one of `audiences`."""
        what = "client_assertion"
        seen = peek(assertion, what)
        claims = seen.claims
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str) or not iss:
            raise Refused("the client_assertion has no iss claim (the client_id)")
        if sub != iss:
            raise Refused("the client_assertion sub must equal iss (both the client_id)")
        instance = self.ctx.registry.instance(domain, iss)
        if instance is None:
            raise Refused(f"client_id {iss[:80]!r} is not registered in domain {domain}")
        if instance.status != "active" and not self.ctx.fault("unapproved-client-token"):
            raise Refused(f"client_id {iss[:80]!r} has status {instance.status!r}: only active instances get tokens")
        await self.verify_signature(assertion, seen.header, instance, what)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not self.ctx.fault("aud-not-checked") and not any(a in audiences for a in auds if isinstance(a, str)):
            raise Refused(f"the client_assertion aud must be {audiences[0]}")
        exp = self.time_claims(claims, what, self.ctx.settings.assertion_max_lifetime_seconds)
        self.use_jti(f"assertion:{domain}:{iss}", claims, exp, what, enforce=not self.ctx.fault("jti-replay-accepted"))
        return instance


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e12

"""Access tokens: the client_credentials grant (SMART backend services) and checking Bearer tokens.

An access token is a JWT signed RS512 by the domain's key: iss = the domain's OAuth base, aud = the
domain's FHIR base, sub = azp = client id, scope computed from the instance's role (scopes.scope_for_role),
iat, nbf, exp, jti, type "access".  Why a URL as `aud` instead of the reference's "fhir-server" (§8.5): it
makes a token of domain A useless at domain B even without the key being different.  Verified tokens are
cached by their text until they expire, so an authenticated read does not pay an RSA verification.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError

from simulators.kt2 import urls
from simulators.kt2.auth.assertions import JwtChecks, Refused, peek
from simulators.kt2.auth.events import AuthEvents
from simulators.kt2.auth.keys import DomainKeys
from simulators.kt2.context import Caller, InstanceRecord, Kt2Context
from simulators.kt2.errors import FhirError, OAuthError
from simulators.kt2.ids import new_uuid
from simulators.kt2.scopes import ScopeSet, scope_for_role
from simulators.kt2.trace import TraceIds

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NOOP = "NOOP"
_CACHE_MAX = 20_000


@dataclass(frozen=True)
class _Verified:
    caller: Caller
    exp: float
    nbf: float


def unauthorized(description: str, error: str = "invalid_token") -> FhirError:
    return FhirError.one(401, description, "login", headers={"WWW-Authenticate": f'Bearer error="{error}"'})


class TokenService:
    def __init__(self, ctx: Kt2Context, keys: DomainKeys, checks: JwtChecks, events: AuthEvents) -> None:
        self.ctx = ctx
        self.keys = keys
        self.checks = checks
        self.events = events
        self._cache: dict[tuple[str, str | None, str], _Verified] = {}
        self._scopes: dict[tuple, str] = {}
        self._lock = threading.Lock()

    # -- issuing --------------------------------------------------------------------------------------
    def scope_for(self, instance: InstanceRecord) -> str:
        if self.ctx.fault("role-scope-ignored"):
            return "system/*.cruds"
        role = self.ctx.data.role(instance.role)
        if role is None:
            return ""
        granted: dict[str, list[str]] = {}
        for other in self.ctx.registry.instances(instance.domain):
            granted.setdefault(other.application, []).append(other.device)
        key = (role.name, instance.device, tuple(sorted((a, tuple(d)) for a, d in granted.items())))
        scope = self._scopes.get(key)
        if scope is None:   # the same role and instances always give the same scope
            scope = scope_for_role(role, instance.device, lambda app: granted.get(app, []))
            if len(self._scopes) > 1000:
                self._scopes.clear()
            self._scopes[key] = scope
        return scope

    def mint_access(self, domain: str, root: str, client_id: str, scope: str) -> tuple[str, int]:
        now = int(self.ctx.clock.now())
        lifetime = self.ctx.settings.access_token_seconds
        claims = {"iss": urls.oauth_base(root, domain), "aud": urls.fhir_base(root, domain), "sub": client_id,
                  "azp": client_id, "scope": scope, "iat": now, "nbf": now, "exp": now + lifetime,
                  "jti": new_uuid(), "type": "access"}
        return self.sign(domain, claims), lifetime

    def sign(self, domain: str, claims: dict) -> str:
        key = self.keys.signing(domain)
        return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": "JWT"}, claims, key.key, algorithms=[key.alg])

    async def client_credentials(self, domain: str, root: str, form: dict[str, str], trace: TraceIds) -> dict:
        try:
            instance = await self.checks.client_assertion(domain, client_assertion_of(form),
                                                          (urls.token_url(root, domain),))
        except Refused as problem:
            self.events.record(domain, root, trace, "token", False, f"client_credentials refused: {problem}",
                               client_id=_claimed_client(form.get("client_assertion", "")))
            raise OAuthError(401, "invalid_client", str(problem), audited=True) from None
        scope = self.scope_for(instance)
        token, lifetime = self.mint_access(domain, root, instance.client_id, scope)
        self.events.record(domain, root, trace, "token", True, "client_credentials access token issued",
                           client_id=instance.client_id)
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}

    # -- checking (BearerVerifier) -----------------------------------------------------------------------
    def caller_for(self, domain: str, token: str, *, root: str | None = None) -> Caller:
        now = self.ctx.clock.now()
        skew = self.ctx.settings.clock_skew_seconds
        cache_key = (domain, root, token)
        hit = self._cache.get(cache_key)
        if hit is None:
            hit = self._verify(domain, token, root)
            with self._lock:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[cache_key] = hit
        if hit.exp < now - skew and not self.ctx.fault("access-token-never-expires"):
            raise unauthorized("The access token has expired: request a new one")
        if hit.nbf > now + skew:
            raise unauthorized("The access token is not valid yet (nbf)")
        return hit.caller

    def _verify(self, domain: str, token: str, root: str | None) -> _Verified:
        if token == NOOP:
            if self.ctx.fault("noop-token-accepted"):
                return _Verified(Caller(domain, "noop", ScopeSet("system/*.rs")), float("inf"), 0)
            raise unauthorized("'NOOP' (the access_token of an HTI app launch) grants no FHIR access: use your "
                               "own backend-services token")
        try:
            seen = peek(token, "access token")
        except Refused as problem:
            raise unauthorized(f"Invalid access token: {problem}") from None
        issuer_domain = domain
        if self.ctx.fault("cross-domain-read"):
            issuer_domain = self.keys.domain_of_kid(str(seen.header.get("kid"))) or domain
        try:
            verified = jwt.decode(token, self.keys.keyset(issuer_domain), algorithms=["RS512"])
        except (JoseError, ValueError, TypeError):
            raise unauthorized(f"Invalid access token: the signature does not verify with the keys of "
                               f"domain {domain}") from None
        claims = verified.claims
        expected_iss = urls.oauth_base(root or "", issuer_domain)
        expected_aud = urls.fhir_base(root or "", issuer_domain)
        iss, aud = claims.get("iss"), claims.get("aud")
        if not isinstance(iss, str) or not (iss == expected_iss if root else iss.endswith(expected_iss)):
            raise unauthorized(f"The access token was not issued by this domain's authorisation server ({domain})")
        if not isinstance(aud, str) or not (aud == expected_aud if root else aud.endswith(expected_aud)):
            raise unauthorized(f"The access token is not meant for this FHIR base (aud must be {expected_aud})")
        if claims.get("type") != "access":
            raise unauthorized("This token is no access token (type must be 'access')")
        client_id, scope, exp = claims.get("azp") or claims.get("sub"), claims.get("scope", ""), claims.get("exp")
        if not isinstance(client_id, str) or not isinstance(scope, str) or not isinstance(exp, (int, float)):
            raise unauthorized("The access token lacks azp, scope or exp")
        nbf = claims.get("nbf", 0)
        return _Verified(Caller(domain, client_id, ScopeSet(scope), str(claims.get("jti", ""))), float(exp),
                         float(nbf) if isinstance(nbf, (int, float)) else 0.0)


def client_assertion_of(form: dict[str, str]) -> str:
    kind = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if kind is None or assertion is None:
        raise OAuthError(400, "invalid_request", "client_assertion_type and client_assertion are required "
                                                 "(private_key_jwt)")
    if kind != JWT_BEARER:
        raise Refused(f"client_assertion_type must be {JWT_BEARER}")
    return assertion


def _claimed_client(assertion: str) -> str | None:
    """The client id the assertion claims (for the AuditEvent of a refusal; not trusted for anything)."""
    try:
        iss = peek(assertion).claims.get("iss")
    except Refused:
        return None
    return iss if isinstance(iss, str) and 0 < len(iss) <= 64 and iss.replace("-", "").replace(".", "").isalnum() \
        else None

"""Token introspection (RFC 7662, TOP-KT-021): a module checks an HTI launch token without SMART launch.

The caller authenticates with its own client assertion (401 when that fails).  Its `aud` may be the token
URL (reference AUTH) or the introspection URL (TOP-KT-021): the sources contradict (§8.2), both are taken.
An HTI token is active when it is valid, addressed to the caller (`aud` = Device/<caller>) and its jti is
unused; introspecting it consumes the jti.  Access tokens of the domain are also introspectable.  Anything
else is `{"active": false}` with 200.
"""

from __future__ import annotations

from joserfc import jwt
from joserfc.errors import JoseError

from simulators.kt2 import urls
from simulators.kt2.auth.assertions import JwtChecks, Refused, peek
from simulators.kt2.auth.events import AuthEvents
from simulators.kt2.auth.launch import Launches
from simulators.kt2.auth.tokens import TokenService, client_assertion_of
from simulators.kt2.context import Kt2Context
from simulators.kt2.errors import OAuthError
from simulators.kt2.trace import TraceIds


class Introspection:
    def __init__(self, ctx: Kt2Context, checks: JwtChecks, tokens: TokenService, launches: Launches,
                 events: AuthEvents) -> None:
        self.ctx = ctx
        self.checks = checks
        self.tokens = tokens
        self.launches = launches
        self.events = events

    async def introspect(self, domain: str, root: str, form: dict[str, str], trace: TraceIds) -> dict:
        token = form.get("token")
        if not token:
            raise OAuthError(400, "invalid_request", "token is required")
        if not form.get("client_assertion_type") or not form.get("client_assertion"):
            # TOP-KT-021: a caller that does not authenticate is refused with 401 (the token endpoint's 400
            # invalid_request for missing fields does not apply: here the caller's identity is the point)
            self.events.record(domain, root, trace, "introspect", False, "caller refused: no client assertion")
            raise OAuthError(401, "invalid_client", "introspection needs the caller's client assertion "
                                                    "(client_assertion_type and client_assertion)", audited=True)
        try:
            caller = await self.checks.client_assertion(
                domain, client_assertion_of(form), (urls.token_url(root, domain), urls.introspection_url(root, domain)))
        except Refused as problem:
            self.events.record(domain, root, trace, "introspect", False, f"caller refused: {problem}")
            raise OAuthError(401, "invalid_client", str(problem), audited=True) from None
        try:
            seen = peek(token, "token")
        except Refused:
            return self._inactive(domain, root, trace, caller.client_id, "the token is no JWT")
        if seen.claims.get("iss") == urls.oauth_base(root, domain):
            why = self._access_token_problem(domain, root, token)
            if why:
                return self._inactive(domain, root, trace, caller.client_id, why)
            self.events.record(domain, root, trace, "introspect", True, "access token is active",
                               client_id=caller.client_id)
            return {"active": True, **seen.claims}
        try:
            claims = await self.launches.verify_hti(domain, token, caller.client_id, consume=False)
            if not self.ctx.fault("introspection-replay-active"):
                exp = float(claims["exp"])
                self.checks.use_jti(f"hti:{domain}", claims, exp, "launch token")
        except Refused as problem:
            return self._inactive(domain, root, trace, caller.client_id, str(problem), seen.claims.get("sub"))
        self.events.record(domain, root, trace, "introspect", True, f"launch token for {claims['resource']} is active",
                           client_id=caller.client_id, user=claims["sub"])
        return {"active": True, **claims}

    def _inactive(self, domain: str, root: str, trace: TraceIds, client_id: str, why: str, sub=None) -> dict:
        user = sub if isinstance(sub, str) and sub.count("/") == 1 and len(sub) < 100 else None
        self.events.record(domain, root, trace, "introspect", False, f"token inactive: {why}", client_id=client_id,
                           user=user)
        return {"active": False}

    def _access_token_problem(self, domain: str, root: str, token: str) -> str | None:
        """Why a token that names this domain's authorisation server as `iss` is no active access token of this
        domain (None: it is one).  The domain also signs id_tokens: those are not access tokens."""
        try:
            claims = jwt.decode(token, self.tokens.keys.keyset(domain), algorithms=["RS512"]).claims
        except (JoseError, ValueError, TypeError):
            return "the signature does not verify with this domain's key"
        if claims.get("type") != "access" or claims.get("aud") != urls.fhir_base(root, domain):
            return "the token is no access token of this domain"
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        skew = self.ctx.settings.clock_skew_seconds
        now = self.ctx.clock.now()
        if not isinstance(exp, (int, float)) or exp < now - skew:
            return "the access token has expired"
        if not isinstance(nbf, (int, float)) or nbf > now + skew:
            return "the access token is not valid yet"
        return None

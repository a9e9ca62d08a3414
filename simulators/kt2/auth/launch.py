"""The HTI launch as SMART app launch (kt2-protocol.md §2.5): authorize, IdP callback, code exchange.

Error handling of `authorize` follows RFC 6749 §4.1.2.1: as long as client_id and redirect_uri are not
known to be good the answer is a 400 OAuth error JSON (the browser must not be sent anywhere unchecked);
after that every problem is a 302 back to redirect_uri with `error`, `error_description` and `state`.
The identity check of the IdP callback answers 403 (`access_denied`), as the reference AUTH does.
The code exchange answers `access_token: "NOOP"` (it grants no FHIR access), an id_token signed by the
domain and the HTI context (resource, definition, sub, patient, intent).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from simulators.kt2 import urls
from simulators.kt2.auth.assertions import JwtChecks, Refused, peek
from simulators.kt2.auth.events import AuthEvents
from simulators.kt2.auth.sessions import Sessions, digest
from simulators.kt2.auth.tokens import TokenService, client_assertion_of
from simulators.kt2.context import Kt2Context
from simulators.kt2.errors import OAuthError
from simulators.kt2.trace import TraceIds

LAUNCH_SCOPE = frozenset({"launch", "openid", "fhirUser"})
_SUB_RE = re.compile(r"^(Patient|Practitioner|RelatedPerson)/[A-Za-z0-9\-.]{1,64}\Z")
_REF_RE = {"resource": re.compile(r"^Task/[A-Za-z0-9\-.]{1,64}\Z"),
           "patient": re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}\Z"),
           "definition": re.compile(r"^ActivityDefinition/[A-Za-z0-9\-.]{1,64}\Z")}
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}\Z")
CONTEXT_CLAIMS = ("resource", "definition", "sub", "patient", "intent")


@dataclass(frozen=True)
class Redirect:
    location: str


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class Launches:
    def __init__(self, ctx: Kt2Context, checks: JwtChecks, tokens: TokenService, sessions: Sessions,
                 events: AuthEvents) -> None:
        self.ctx = ctx
        self.checks = checks
        self.tokens = tokens
        self.sessions = sessions
        self.events = events

    # -- the HTI token ------------------------------------------------------------------------------------
    async def verify_hti(self, domain: str, token: str, audience_client: str, *, consume: bool = True) -> dict:
        """The claims of a valid HTI launch token addressed to `audience_client`; Refused otherwise."""
        what = "launch token"
        seen = peek(token, what)
        claims = seen.claims
        iss = claims.get("iss")
        instance = self.ctx.registry.instance(domain, iss) if isinstance(iss, str) else None
        if instance is None:
            raise Refused("the launch token iss is no application instance of this domain")
        if instance.status != "active":
            raise Refused(f"the launching instance {iss[:64]!r} is not active")
        await self.checks.verify_signature(token, seen.header, instance, what)
        if claims.get("aud") != f"Device/{audience_client}" and not self.ctx.fault("hti-aud-not-checked"):
            raise Refused(f"the launch token aud must be Device/{audience_client}")
        exp = self.checks.time_claims(claims, what, self.ctx.settings.launch_max_lifetime_seconds, require_iat=True,
                                      lifetime_from_iat=True)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _SUB_RE.match(sub):
            raise Refused("the launch token sub must be Patient/<id>, Practitioner/<id> or RelatedPerson/<id>")
        for name, pattern in _REF_RE.items():
            value = claims.get(name)
            if (value is not None or name == "resource") and not (isinstance(value, str) and pattern.match(value)):
                raise Refused(f"the launch token {name} claim is not a {pattern.pattern[1:].split('/')[0]} reference")
        for name in ("intent", "idp_hint"):
            if claims.get(name) is not None and not isinstance(claims.get(name), str):
                raise Refused(f"the launch token {name} claim must be a string")
        if consume:
            self.checks.use_jti(f"hti:{domain}", claims, exp, what)
        elif not self.ctx.fault("introspection-replay-active") and self.checks.jti_used(f"hti:{domain}",
                                                                                      claims.get("jti")):
            raise Refused("the launch token jti was used before (replay)")
        return claims

    # -- authorize --------------------------------------------------------------------------------------
    async def authorize(self, domain: str, root: str, params: dict[str, str], trace: TraceIds) -> Redirect:
        client_id = params.get("client_id", "")
        instance = self.ctx.registry.instance(domain, client_id) if client_id else None
        if instance is None or instance.status != "active":
            raise OAuthError(400, "invalid_client" if client_id else "invalid_request",
                             "client_id must name an active application instance of this domain")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri or (redirect_uri not in instance.redirect_uris
                                and not self.ctx.fault("redirect-uri-not-checked")):
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered for this client")
        state = params.get("state", "")

        def fail(error: str, description: str) -> Redirect:
            self.events.record(domain, root, trace, "authorize", False, description, client_id=client_id)
            reply = {"error": error, "error_description": description}
            if state:
                reply["state"] = state
            return Redirect(with_query(redirect_uri, reply))

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "response_type must be code")
        if frozenset(params.get("scope", "").split()) != LAUNCH_SCOPE:
            return fail("invalid_scope", "scope must be exactly 'launch openid fhirUser'")
        if not state:
            return fail("invalid_request", "state is required")
        if params.get("aud") != urls.fhir_base(root, domain):
            return fail("invalid_request", f"aud must be the FHIR base {urls.fhir_base(root, domain)}")
        challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
        if method != "S256" or not re.fullmatch(r"[A-Za-z0-9\-_]{43}", challenge):
            return fail("invalid_request", "PKCE is required: code_challenge (43 base64url characters) with "
                                           "code_challenge_method=S256")
        try:
            claims = await self.verify_hti(domain, params.get("launch", ""), client_id)
        except Refused as problem:
            return fail("invalid_request", f"invalid launch token: {problem}")
        user_type = claims["sub"].split("/")[0]
        idp, problem = self._choose_idp(domain, user_type, claims.get("idp_hint"))
        if idp is None:
            return fail("invalid_request", problem)
        sid = self.sessions.start(domain, client_id, redirect_uri, state, challenge, claims, idp.id)
        self.events.record(domain, root, trace, "authorize", True, f"launch of {claims['resource']} accepted",
                           client_id=client_id, user=claims["sub"])
        self.events.record(domain, root, trace, "idp call", True, f"user sent to identity provider {idp.id}",
                           client_id=client_id, user=claims["sub"], idp=(idp.id, idp.name))
        return Redirect(with_query(urls.idp_base(root, domain, idp.id) + "/authorize", {"request": sid}))

    def _choose_idp(self, domain: str, user_type: str, hint: str | None):
        idps = [i for i in self.ctx.data.identity_providers if i.domain == domain]
        if hint is not None:
            chosen = next((i for i in idps if i.id == hint), None)
            if chosen is None:
                return None, f"idp_hint {hint[:64]!r} is no identity provider of this domain"
            if user_type not in chosen.user_types:
                return None, f"identity provider {hint!r} does not log in {user_type} users"
            return chosen, ""
        chosen = next((i for i in idps if user_type in i.user_types), None)
        return chosen, "" if chosen else f"this domain has no identity provider for {user_type} users"

    # -- after the IdP -----------------------------------------------------------------------------------
    def callback(self, domain: str, root: str, sid: str, idp_code: str, trace: TraceIds) -> Redirect:
        session = self.sessions.get(sid)
        if session is None or session.domain != domain:
            raise OAuthError(400, "invalid_request", "unknown or expired login session")
        if not session.idp_code or digest(idp_code) != session.idp_code:
            raise OAuthError(400, "invalid_request", "the identity provider did not log this session in")
        self.sessions.finish(sid)
        sub = session.claims["sub"]
        idp = (session.idp, next((i.name for i in self.ctx.data.identity_providers if i.id == session.idp), ""))
        problem = None if self.ctx.fault("identity-match-skipped") else self._identity_problem(domain, session)
        if problem:
            self.events.record(domain, root, trace, "idp login", False, problem, client_id=session.client_id,
                               user=sub, idp=idp)
            raise OAuthError(403, "access_denied", problem, audited=True)
        self.events.record(domain, root, trace, "idp login", True, f"user {session.username} logged in as {sub}",
                           client_id=session.client_id, user=sub, idp=idp)
        code = self.sessions.issue_code(session)
        reply = {"code": code}
        if not self.ctx.fault("state-not-returned"):
            reply["state"] = session.state
        return Redirect(with_query(session.redirect_uri, reply))

    def _identity_problem(self, domain: str, session) -> str | None:
        sub = session.claims["sub"]
        person = self.ctx.fhir.read(domain, sub)
        if person is None:
            return f"{sub} does not exist in this domain"
        values = [i.get("value") for i in person.get("identifier", []) if isinstance(i, dict)]
        if session.user_identifier not in values:
            return f"Forbidden, identifier [{session.user_identifier}] of the logged-in user not found on {sub}"
        patient = session.claims.get("patient")
        if sub.startswith("RelatedPerson/") and patient is not None:
            if (person.get("patient") or {}).get("reference") != patient:
                return f"Forbidden, {sub} is not a related person of {patient}"
        return None

    # -- code exchange ------------------------------------------------------------------------------------
    async def exchange(self, domain: str, root: str, form: dict[str, str], trace: TraceIds) -> dict:
        missing = [n for n in ("code", "redirect_uri", "code_verifier") if not form.get(n)]
        if missing:
            raise OAuthError(400, "invalid_request", f"missing {', '.join(missing)}")
        try:
            instance = await self.checks.client_assertion(domain, client_assertion_of(form),
                                                          (urls.token_url(root, domain),))
        except Refused as problem:
            self.events.record(domain, root, trace, "token", False, f"authorization_code refused: {problem}")
            raise OAuthError(401, "invalid_client", str(problem), audited=True) from None
        session, why = self.sessions.redeem(domain, form["code"])

        def refuse(description: str) -> OAuthError:
            self.events.record(domain, root, trace, "token", False, f"authorization_code refused: {description}",
                               client_id=instance.client_id)
            return OAuthError(400, "invalid_grant", description, audited=True)

        if session is None:
            raise refuse(why)
        if session["client_id"] != instance.client_id:
            raise refuse("the authorization code was issued to another client")
        if form["redirect_uri"] != session["redirect_uri"]:
            raise refuse("redirect_uri differs from the one of the authorize request")
        if not self.ctx.fault("pkce-not-checked") and (not _VERIFIER_RE.match(form["code_verifier"])
                                                       or s256(form["code_verifier"]) != session["code_challenge"]):
            raise refuse("code_verifier does not match the code_challenge (S256)")
        claims = session["claims"]
        now = int(self.ctx.clock.now())
        id_token = self.tokens.sign(domain, {
            "iss": urls.oauth_base(root, domain), "aud": instance.client_id, "sub": claims["sub"],
            "azp": instance.client_id, "iat": now, "exp": now + self.ctx.settings.id_token_seconds,
            "fhirUser": f"{urls.fhir_base(root, domain)}/{claims['sub']}"})
        self.events.record(domain, root, trace, "token", True, "authorization code exchanged for an id_token",
                           client_id=instance.client_id, user=claims["sub"])
        answer = {"access_token": "NOOP", "token_type": "Bearer", "expires_in": self.ctx.settings.access_token_seconds,
                  "scope": "launch openid fhirUser", "id_token": id_token}
        answer.update({k: claims[k] for k in CONTEXT_CLAIMS if isinstance(claims.get(k), str)})
        return answer

"""Steps both roles share: the application's JWKS and its client assertions, judged from the recording.

The client assertions are those of every token and introspection request the application sent in the
session (the recording keeps them all), so a check covers everything the application signed so far.
"""

from __future__ import annotations

import time
from typing import Any

from pytest_bdd import parsers, then, when

from ktbench.core.requirements import require
from steps.kt2_apps import jwt_checks
from steps.kt2_apps.world import AppWorld, form_of, json_of

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def req(world: AppWorld, name: str) -> str:
    return f"KT2-APP-{world.bench.role.upper()}-{name}"


def app_jwks(world: AppWorld) -> dict[str, Any]:
    """The application's JWKS as the bench fetches it (once per scenario)."""
    if "jwks" not in world.notes:
        answer = world.bench.actor.http.inner.request("GET", world.settings.jwks_url,
                                                      headers={"Accept": "application/json"}, role="bench",
                                                      validate=False)
        world.notes["jwks_status"] = answer.status_code
        world.notes["jwks"] = json_of(answer.content)
    return world.notes["jwks"]


def assertions(world: AppWorld) -> list[tuple[str, float, str]]:
    """(assertion, received at, endpoint kind) of every token/introspection request the application sent in the
    session; waits for at least one since the scenario began."""
    def carries_assertion(item) -> bool:
        return item.method == "POST" and item.path.endswith(("/oauth2/token", "/oauth2/introspect")) \
            and "client_assertion" in form_of(item)

    # the application may still hold a token from an earlier scenario: any assertion of the session counts
    world.wait(carries_assertion, "request an access token with a client assertion", after=0)
    found = []
    for item in world.app_requests(carries_assertion, since=0):
        form = form_of(item)
        kind = "introspect" if item.path.endswith("/introspect") else "token"
        found.append((form["client_assertion"], item.received, kind, form))
    world.notes["assertion_forms"] = [f for *_, f in found]
    return [(a, at, kind) for a, at, kind, _ in found]


@when(parsers.re(r"the bench fetches the (?P<who>portal|module)'s JWKS"))
def fetch_jwks(kt2app: AppWorld, who: str) -> None:
    app_jwks(kt2app)


@then(parsers.re(r"the (?P<who>portal|module)'s JWKS holds public keys only, each with kty and kid"))
def jwks_public(kt2app: AppWorld, who: str) -> None:
    rid = req(kt2app, "JWKS-PUBLIC")
    jwks = app_jwks(kt2app)
    require(kt2app.notes.get("jwks_status") == 200, rid,
            f"GET {kt2app.settings.jwks_url} answered {kt2app.notes.get('jwks_status')}, not 200 with a JWKS")
    problems = jwt_checks.jwks_problems(jwks)
    require(not problems, rid, "the JWKS breaks the rules: " + "; ".join(problems))


@when(parsers.re(r"the (?P<who>portal|module)'s access token has expired"))
def token_expired(kt2app: AppWorld, who: str) -> None:
    """The bench's voorziening issues short tokens (access_token_seconds): wait them out so the next action
    needs a new client assertion."""
    time.sleep(kt2app.settings.access_token_seconds + 0.3)


def _decoded(world: AppWorld) -> list[tuple[str, jwt_checks.Decoded, float, str]]:
    return [(a, jwt_checks.decode(a), at, kind) for a, at, kind in assertions(world)]


@then("every client assertion of the portal names its client id as iss and sub and the token endpoint as aud")
def portal_assertion_claims(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION-CLAIMS")
    bench = kt2app.bench
    for _, decoded, _, kind in _decoded(kt2app):
        require(not decoded.problem, rid, f"a client assertion is {decoded.problem}")
        audiences = (bench.token_endpoint,) if kind == "token" else (bench.token_endpoint,
                                                                      bench.introspection_endpoint)
        problems = jwt_checks.assertion_claim_problems(decoded.claims, kt2app.settings.client_id, audiences)
        require(not problems, rid, "a client assertion: " + "; ".join(problems))
    for form in kt2app.notes["assertion_forms"]:
        require(form.get("client_assertion_type") == ASSERTION_TYPE, rid,
                f"client_assertion_type is {form.get('client_assertion_type')!r}, not {ASSERTION_TYPE}")


@then("every client assertion of the portal has a kid of its JWKS and verifies with that key")
def portal_assertion_kid(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION-KID")
    jwks = app_jwks(kt2app)
    for token, decoded, _, _ in _decoded(kt2app):
        kid = decoded.header.get("kid")
        require(kid, rid, "a client assertion carries no kid header")
        if decoded.header.get("alg") in jwt_checks.ASYMMETRIC:
            problems = jwt_checks.signature_problems(token, decoded, jwks)
            require(not problems, rid, "a client assertion: " + "; ".join(problems))
        else:
            known = {k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict)}
            require(kid in known, rid, f"kid {kid!r} names no key of the JWKS")


@then("every client assertion of the portal is signed with an asymmetric algorithm")
def portal_assertion_alg(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION-ALG")
    for _, decoded, _, _ in _decoded(kt2app):
        alg = decoded.header.get("alg")
        require(alg in jwt_checks.ASYMMETRIC, rid, f"a client assertion is signed with {alg!r}, not one of "
                                                   f"{', '.join(sorted(jwt_checks.ASYMMETRIC))}")


@then("every client assertion of the portal expires within 5 minutes of its iat")
def portal_assertion_lifetime(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION-LIFETIME")
    for _, decoded, at, _ in _decoded(kt2app):
        problems = jwt_checks.lifetime_problems(decoded.claims, time.time(), at=at)
        require(not problems, rid, "a client assertion: " + "; ".join(problems))


@then("no two client assertions of the portal share a jti")
def portal_assertion_jti(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION-JTI")
    decoded = _decoded(kt2app)
    require(len(decoded) >= 2, rid, f"the portal sent {len(decoded)} client assertion(s) for two actions an access "
                                    "token lifetime apart (a fresh assertion is needed for each token)")
    jtis = [d.claims.get("jti") for _, d, _, _ in decoded]
    twice = sorted({str(j) for j in jtis if jtis.count(j) > 1})
    require(not twice, rid, f"{len(twice)} jti value(s) were used in more than one client assertion")


@then("every client assertion of the module is correct")
def module_assertions(kt2app: AppWorld) -> None:
    rid = req(kt2app, "ASSERTION")
    bench = kt2app.bench
    jwks = app_jwks(kt2app)
    decoded = _decoded(kt2app)
    for token, d, at, kind in decoded:
        require(not d.problem, rid, f"a client assertion is {d.problem}")
        audiences = (bench.token_endpoint,) if kind == "token" else (bench.token_endpoint,
                                                                      bench.introspection_endpoint)
        problems = jwt_checks.assertion_claim_problems(d.claims, kt2app.settings.client_id, audiences)
        problems += jwt_checks.signature_problems(token, d, jwks)
        problems += jwt_checks.lifetime_problems(d.claims, time.time(), at=at)
        require(not problems, rid, f"a client assertion ({kind}): " + "; ".join(problems))
    jtis = [d.claims.get("jti") for _, d, _, _ in decoded]
    twice = sorted({str(j) for j in jtis if jtis.count(j) > 1})
    require(not twice, rid, f"{len(twice)} jti value(s) were used in more than one client assertion")

"""Judging the JWTs an application under test signs: client assertions and HTI launch tokens.

Pure functions over the token text and the application's JWKS, so they are unit-tested on their own
(tests/test_kt2_apps_units.py); each returns the problems it found in words a vendor can act on (empty: fine).
Nothing here prints a token: they are secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"})
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MAX_LIFETIME = 300


@dataclass(frozen=True)
class Decoded:
    header: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    problem: str = ""            # why it could not be decoded at all


def decode(token: str) -> Decoded:
    """Header and claims without checking the signature (what the checks below then judge)."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        return Decoded(problem=f"not a compact JWS ({type(exc).__name__})")
    if not isinstance(claims, dict):
        return Decoded(problem="the payload is no JSON object")
    return Decoded(dict(compact.headers()), claims)


def jwks_problems(jwks: Any) -> list[str]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        return ["the JWKS is no JSON object with a non-empty keys list"]
    problems = []
    for index, key in enumerate(jwks["keys"]):
        if not isinstance(key, dict):
            problems.append(f"keys[{index}] is no object")
            continue
        for member in ("kty", "kid"):
            if not key.get(member):
                problems.append(f"keys[{index}] has no {member}")
        leaked = [m for m in PRIVATE_MEMBERS if m in key]
        if leaked:
            problems.append(f"keys[{index}] (kid {key.get('kid')!r}) publishes private member(s) {', '.join(leaked)}")
    return problems


def signature_problems(token: str, decoded: Decoded, jwks: Any) -> list[str]:
    """kid present and in the JWKS, asymmetric algorithm, signature verifies with that key."""
    alg = decoded.header.get("alg")
    if alg not in ASYMMETRIC:
        return [f"signed with {alg!r}, not an asymmetric algorithm ({', '.join(sorted(ASYMMETRIC))})"]
    kid = decoded.header.get("kid")
    if not kid:
        return ["the header carries no kid"]
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
    if not keys:
        return [f"kid {kid!r} names no key of the published JWKS"]
    public = [{m: v for m, v in k.items() if m not in PRIVATE_MEMBERS} for k in keys]
    try:
        jwt.decode(token, KeySet.import_key_set({"keys": public}), algorithms=[alg])
    except (JoseError, ValueError, TypeError) as exc:
        return [f"the signature does not verify with key {kid!r} ({type(exc).__name__})"]
    return []


def lifetime_problems(claims: dict[str, Any], now: float, *, max_lifetime: int = MAX_LIFETIME,
                      leeway: float = 5.0, at: float | None = None) -> list[str]:
    """exp after `at` (when it was received; default now), iat not in the future, exp - iat <= max_lifetime."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return ["no numeric exp"]
    problems = []
    when = now if at is None else at
    if exp <= when - leeway:
        problems.append("exp had passed when it was sent")
    if isinstance(iat, (int, float)) and not isinstance(iat, bool):
        if iat > when + leeway:
            problems.append("iat lies in the future")
        if exp - iat > max_lifetime:
            problems.append(f"exp is {exp - iat:g} s after iat (at most {max_lifetime})")
    elif exp - when > max_lifetime + leeway:
        problems.append(f"exp lies {exp - when:.0f} s ahead (at most {max_lifetime})")
    return problems


def assertion_claim_problems(claims: dict[str, Any], client_id: str, audiences: tuple[str, ...]) -> list[str]:
    """iss = sub = the client id, aud one of `audiences` (the token endpoint; for introspection also its URL)."""
    problems = []
    for name in ("iss", "sub"):
        if claims.get(name) != client_id:
            problems.append(f"{name} is {claims.get(name)!r}, not the client id {client_id!r}")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if not any(a in auds for a in audiences):
        problems.append(f"aud is {aud!r}, not {' or '.join(audiences)}")
    if not isinstance(claims.get("jti"), str) or not claims.get("jti"):
        problems.append("no jti")
    return problems

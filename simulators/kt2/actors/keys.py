"""The signing keys of a simulated KT2 application: what it signs client assertions and HTI tokens with, and
the JWKS it publishes (TOP-KT-020: public parts only, `kid` on every key).

A `KeyRing` holds the keys an application publishes; the newest signs.  Rotation (`rotate()`) adds a key
with a new `kid` and keeps the old one published, which is how a real vendor rotates (the voorziening may
still hold the old JWKS in its cache).  Keys come from joserfc; a pre-registered application on a real
voorziening brings its own private key (PEM or JWK text) instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def generate_key(algorithm: str = "RS512") -> RSAKey | ECKey:
    if algorithm.startswith("ES"):
        return ECKey.generate_key(_CURVES[algorithm])
    return RSAKey.generate_key(2048)


def import_private_key(text: str, kid: str = "") -> tuple[RSAKey | ECKey, str]:
    """A private key from PEM or JWK JSON text; returns the key and its kid (given, the JWK's, or the thumbprint)."""
    text = text.strip()
    if text.startswith("{"):
        jwk = json.loads(text)
        key = ECKey.import_key(jwk) if jwk.get("kty") == "EC" else RSAKey.import_key(jwk)
        return key, kid or jwk.get("kid") or key.thumbprint()
    try:
        key = RSAKey.import_key(text)
    except (ValueError, TypeError):
        key = ECKey.import_key(text)
    return key, kid or key.thumbprint()


def public_jwk(key: RSAKey | ECKey, kid: str, algorithm: str | None) -> dict[str, Any]:
    jwk = {k: v for k, v in key.as_dict(private=False).items() if k not in PRIVATE_MEMBERS}
    jwk.update({"kid": kid, "use": "sig"})
    if algorithm:
        jwk["alg"] = algorithm
    return jwk


@dataclass
class SigningKey:
    key: RSAKey | ECKey
    kid: str
    algorithm: str

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None,
             algorithm: str | None = None) -> str:
        alg = algorithm or self.algorithm
        head = {"alg": alg, "kid": self.kid, "typ": "JWT", **(header or {})}
        head = {k: v for k, v in head.items() if v is not None}     # header={"kid": None}: no kid at all
        return jwt.encode(head, claims, self.key, algorithms=[alg])

    def __repr__(self) -> str:  # never the key material
        return f"<SigningKey kid={self.kid!r} alg={self.algorithm}>"


@dataclass
class KeyRing:
    """The keys one application publishes; `current` signs."""

    keys: list[SigningKey] = field(default_factory=list)
    published_private: bool = False      # a fault flag of simulated applications: leak private members

    @classmethod
    def generated(cls, algorithm: str = "RS512") -> KeyRing:
        key = generate_key(algorithm)
        return cls([SigningKey(key, key.thumbprint(), algorithm)])

    @classmethod
    def from_private_text(cls, text: str, kid: str = "", algorithm: str = "RS512") -> KeyRing:
        key, found_kid = import_private_key(text, kid)
        return cls([SigningKey(key, found_kid, algorithm)])

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, algorithm: str | None = None) -> SigningKey:
        """A new key with a new kid signs from now on; the old one stays published."""
        alg = algorithm or self.current.algorithm
        key = generate_key(alg)
        signing = SigningKey(key, key.thumbprint(), alg)
        self.keys.append(signing)
        return signing

    def jwks(self) -> dict[str, Any]:
        keys = []
        for k in self.keys:
            jwk = public_jwk(k.key, k.kid, k.algorithm)
            if self.published_private:
                jwk = {**k.key.as_dict(private=True), **jwk}
            keys.append(jwk)
        return {"keys": keys}

    def __repr__(self) -> str:
        return f"<KeyRing kids={[k.kid for k in self.keys]!r}>"

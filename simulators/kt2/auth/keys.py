"""The signing keys of each domain's authorisation server and the JWKS that publishes them.

One RSA key per domain (access tokens and id_tokens are RS512, as the reference AUTH signs them), made on
first start and kept in the database, so a restarted file-backed voorziening keeps verifying the tokens it
issued.  `kid` is the RFC 7638 thumbprint.  Why a pool for `:memory:`: making a 2048-bit RSA key costs
0.1-0.5 s, and tests build hundreds of in-memory voorzieningen; in one process they draw each domain's key
from the pool (different domains still have different keys).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from joserfc.jwk import KeySet, RSAKey

from simulators.kt2.store import Store

ALGORITHM = "RS512"
SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_keys (
    domain TEXT PRIMARY KEY, kid TEXT NOT NULL, alg TEXT NOT NULL, private_jwk TEXT NOT NULL);
"""
_POOL: dict[str, RSAKey] = {}
_POOL_LOCK = threading.Lock()


@dataclass(frozen=True)
class DomainKey:
    key: RSAKey
    kid: str
    alg: str = ALGORITHM

    def public_jwk(self) -> dict:
        jwk = self.key.as_dict(private=False)
        return {"kty": jwk["kty"], "kid": self.kid, "use": "sig", "alg": self.alg, "n": jwk["n"], "e": jwk["e"]}


class DomainKeys:
    def __init__(self, store: Store, domains: list[str]) -> None:
        self.store = store
        store.ensure_schema(SCHEMA)
        self._keys: dict[str, DomainKey] = {}
        for domain in domains:
            self._keys[domain] = self._load_or_make(domain)
        self._keysets = {d: KeySet([k.key]) for d, k in self._keys.items()}

    def _load_or_make(self, domain: str) -> DomainKey:
        row = self.store.one("SELECT kid, alg, private_jwk FROM auth_keys WHERE domain=?", (domain,))
        if row is not None:
            return DomainKey(RSAKey.import_key(json.loads(row[2])), row[0], row[1])
        if self.store.path == ":memory:":
            with _POOL_LOCK:
                key = _POOL.get(domain) or _POOL.setdefault(domain, RSAKey.generate_key(2048))
        else:
            key = RSAKey.generate_key(2048)
        kid = key.thumbprint()
        # OR IGNORE: two voorzieningen starting at once on one new database file must agree on one key (the first
        # to write wins; the other reads it back) instead of one of them failing on the primary key
        self.store.execute("INSERT OR IGNORE INTO auth_keys (domain, kid, alg, private_jwk) VALUES (?,?,?,?)",
                           (domain, kid, ALGORITHM, json.dumps(key.as_dict(private=True))))
        row = self.store.one("SELECT kid, alg, private_jwk FROM auth_keys WHERE domain=?", (domain,))
        if row is not None and row[0] != kid:
            return DomainKey(RSAKey.import_key(json.loads(row[2])), row[0], row[1])
        return DomainKey(key, kid)

    def signing(self, domain: str) -> DomainKey:
        return self._keys[domain]

    def keyset(self, domain: str) -> KeySet:
        return self._keysets[domain]

    def jwks(self, domain: str, include_private: bool = False) -> dict:
        key = self._keys[domain]
        jwk = key.public_jwk()
        if include_private:  # the fault jwks-private-parts: publishes what must stay secret
            jwk = {**key.key.as_dict(private=True), **jwk}
        return {"keys": [jwk]}

    def domain_of_kid(self, kid: str) -> str | None:
        return next((d for d, k in self._keys.items() if k.kid == kid), None)

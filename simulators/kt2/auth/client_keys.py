"""The public keys of application instances: their registered JWKS URL (fetched, cached) or inline JWKS.

TOP-KT-020: every instance publishes a JWKS at a URL it registered; a key is chosen by `kid`.  A fetched
JWKS is cached for its `Cache-Control: max-age` (else `settings.jwks_cache_seconds`); an unknown `kid`
triggers one refetch (key rotation), then the assertion is refused.  https only, verified against the
system CAs plus `settings.trusted_ca_file`; http://127.0.0.1 when `allow_loopback_http_jwks` is on.
Private members of published keys are never used (only the public part is imported).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from simulators.kt2.context import InstanceRecord, Kt2Context

MAX_JWKS_BYTES = 1_000_000
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.I)
PublicKey = RSAKey | ECKey


class KeyProblem(Exception):
    """Why no key could be found for an assertion (safe to show: no secret in it)."""


@dataclass
class _Cached:
    keys: dict[str, PublicKey]
    jwks: dict
    expires: float


def import_public_keys(jwks: object) -> tuple[dict[str, PublicKey], dict[str, dict]]:
    """kid -> public key (and kid -> the published JWK) from a JWKS document; keys without kid are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeyProblem("the JWKS is not a JSON object with a 'keys' list")
    keys: dict[str, PublicKey] = {}
    published: dict[str, dict] = {}
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")}
        try:
            if public.get("kty") == "RSA":
                keys[jwk["kid"]] = RSAKey.import_key(public)
            elif public.get("kty") == "EC":
                keys[jwk["kid"]] = ECKey.import_key(public)
            else:
                continue
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        published[jwk["kid"]] = public
    return keys, published


class ClientKeys:
    def __init__(self, ctx: Kt2Context) -> None:
        self.ctx = ctx
        self._cache: dict[str, _Cached] = {}
        self._inline: dict[tuple[str, str], tuple[dict, dict, dict]] = {}
        self._clients: dict[int, httpx.AsyncClient] = {}

    def _http(self) -> httpx.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None:
            verify = ssl.create_default_context()
            if self.ctx.settings.trusted_ca_file:
                verify.load_verify_locations(self.ctx.settings.trusted_ca_file)
            client = httpx.AsyncClient(verify=verify, timeout=self.ctx.settings.jwks_fetch_timeout_seconds,
                                       follow_redirects=False, trust_env=False,
                                       limits=httpx.Limits(max_keepalive_connections=0))
            self._clients[loop_id] = client
        return client

    async def key_for(self, instance: InstanceRecord, kid: str) -> tuple[PublicKey, dict]:
        """The instance's key with `kid` (and its public JWK); KeyProblem when there is none."""
        if instance.jwks is not None:
            cached = self._inline.get((instance.domain, instance.client_id))
            if cached is None or cached[0] != instance.jwks:   # imported once per registered JWKS
                cached = (instance.jwks, *import_public_keys(instance.jwks))
                self._inline[(instance.domain, instance.client_id)] = cached
            _, keys, published = cached
            if kid in keys:
                return keys[kid], published[kid]
            raise KeyProblem(f"kid {kid[:80]!r} is not in the instance's registered JWKS")
        url = instance.jwks_url or ""
        now = self.ctx.clock.now()
        cached = self._cache.get(url)
        fresh = False
        if cached is None or cached.expires <= now:
            cached = await self._fetch(url)
            fresh = True
        if kid not in cached.keys and not fresh and not self.ctx.fault("kid-refetch-missing"):
            cached = await self._fetch(url)   # key rotation: one refetch on an unknown kid
        if kid not in cached.keys:
            raise KeyProblem(f"kid {kid[:80]!r} is not in the JWKS at {url[:200]}")
        return cached.keys[kid], _published(cached.jwks, kid)

    async def _fetch(self, url: str) -> _Cached:
        settings = self.ctx.settings
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback and settings.allow_loopback_http_jwks):
            raise KeyProblem(f"the JWKS URL {url[:200]} is not https")
        try:
            # httpx's timeout holds per read; wait_for bounds the whole fetch (a JWKS that drips in byte by byte
            # must not hold the token request for longer than the setting says)
            answer = await asyncio.wait_for(self._http().get(url, headers={"Accept": "application/json"}),
                                            settings.jwks_fetch_timeout_seconds)
        except TimeoutError:
            raise KeyProblem(f"the JWKS at {url[:200]} did not arrive within "
                             f"{settings.jwks_fetch_timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise KeyProblem(f"the JWKS at {url[:200]} could not be fetched ({type(exc).__name__})") from None
        except Exception as exc:  # noqa: BLE001  a URL httpx cannot even try (httpx.InvalidURL; a port out of
            # range surfaces as an ExceptionGroup from the connection pool): the assertion is refused, not a 500
            raise KeyProblem(f"the JWKS URL {url[:200]} cannot be fetched ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise KeyProblem(f"the JWKS at {url[:200]} answered HTTP {answer.status_code}")
        if len(answer.content) > MAX_JWKS_BYTES:
            raise KeyProblem(f"the JWKS at {url[:200]} is larger than {MAX_JWKS_BYTES} bytes")
        try:
            document = answer.json()
        except (ValueError, RecursionError):
            raise KeyProblem(f"the JWKS at {url[:200]} is not JSON") from None
        keys, _ = import_public_keys(document)
        match = _MAX_AGE.search(answer.headers.get("cache-control", ""))
        lifetime = float(match[1]) if match else settings.jwks_cache_seconds
        if "no-store" in answer.headers.get("cache-control", "").lower():
            lifetime = 0.0
        cached = _Cached(keys, document, self.ctx.clock.now() + lifetime)
        self._cache[url] = cached
        return cached

    async def aclose(self) -> None:
        for client in self._clients.values():
            try:
                await client.aclose()
            except RuntimeError:
                pass
        self._clients.clear()


def _published(jwks: dict, kid: str) -> dict:
    for jwk in jwks.get("keys", []):
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth", "k")}
    return {}

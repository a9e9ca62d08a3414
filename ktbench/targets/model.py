"""What the bench tests against: a `Target`, how to reach it (TLS) and the credentials of each simulated role.

A target has a kind (which generation and which side: server or application), a base URL, TLS settings
(verify, a CA file, a client certificate and key for mTLS), the generation's own settings, and roles, each
with a credential of a declared type:

- `basic`: KT1.3 applications: HTTP Basic user/password plus the OAuth client secret;
- `smart-backend`: KT2 SMART backend services: client id, a private key (PEM file or JWK), its `kid` and
  algorithm, and the JWKS URL where the public key is published;
- `mtls`: a client certificate and key (for targets that authenticate applications by TLS);
- `account`: a person's log-in (username and password) at a web application of the target, e.g. the KT2
  domain admin application where connection requests are filed and approved.

Every secret is a `Secret` (prints as ***), so a Target can be printed, logged or shown as a step parameter
without leaking anything; code that needs a value calls `.reveal()`.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from ktbench.core.errors import BenchError
from ktbench.core.secret import Secret


def _to_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    raise ValueError("must be a string")


SecretValue = Annotated[Secret, BeforeValidator(_to_secret), PlainSerializer(lambda s: s.reveal(), return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class TlsSettings(_Model):
    verify: bool = True
    ca_file: Path | None = None          # trust this CA (PEM) instead of the system store
    client_cert: Path | None = None      # mTLS: the bench's client certificate (PEM) ...
    client_key: Path | None = None       # ... and its key

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mTLS needs both)")
        for name in ("ca_file", "client_cert", "client_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        return self

    def httpx_verify(self) -> bool | ssl.SSLContext:
        if not self.verify:
            return False
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else True

    def httpx_cert(self) -> tuple[str, str] | None:
        if self.client_cert is None or self.client_key is None:
            return None
        return str(self.client_cert), str(self.client_key)


class _Credential(_Model):
    role: str = Field("", exclude=True)   # the role this credential plays (set by the reader, not in files)

    def secrets(self) -> tuple[str, ...]:
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, Secret) and value:
                values.append(value.reveal())
        return tuple(values)


class BasicCredential(_Credential):
    """A KT1.3 application: HTTP Basic on the FHIR endpoints, the client secret on the OAuth token endpoint."""

    type: Literal["basic"] = "basic"
    app_id: str = Field(min_length=1)
    username: str = ""                    # defaults to app_id
    password: SecretValue = Secret("")
    client_secret: SecretValue = Secret("")
    domain: str = ""                      # defaults to the target's domain setting

    @model_validator(mode="after")
    def _default_username(self) -> BasicCredential:
        if not self.username:
            object.__setattr__(self, "username", self.app_id)
        return self

    def basic_auth(self) -> tuple[str, str]:
        """(username, password) for HTTP Basic; reveals the password: pass it straight to the client."""
        return self.username, self.password.reveal()


class SmartBackendCredential(_Credential):
    """A KT2 application instance: SMART backend services with a signed client assertion (private_key_jwt)."""

    type: Literal["smart-backend"] = "smart-backend"
    client_id: str = Field(min_length=1)
    private_key_file: Path | None = None  # PEM
    private_jwk: SecretValue | None = None  # the private key as JWK JSON text (e.g. from the environment)
    kid: str = ""                         # defaults to the JWK's kid, else its RFC 7638 thumbprint
    algorithm: str = "RS512"
    jwks_url: str = ""                    # where the public key is published (registered with the voorziening)

    @model_validator(mode="after")
    def _one_key(self) -> SmartBackendCredential:
        if (self.private_key_file is None) == (self.private_jwk is None):
            raise ValueError("give exactly one of private_key_file and private_jwk")
        if self.private_key_file is not None and not Path(self.private_key_file).is_file():
            raise ValueError(f"private_key_file {str(self.private_key_file)!r} is not a readable file")
        if self.private_jwk is not None:
            try:
                jwk = json.loads(self.private_jwk.reveal())
            except ValueError:
                raise ValueError("private_jwk is not JSON") from None
            if not isinstance(jwk, dict) or "kty" not in jwk:
                raise ValueError("private_jwk is not a JWK (a JSON object with kty)")
        return self

    @field_validator("algorithm")
    @classmethod
    def _asymmetric(cls, value: str) -> str:
        if value.upper().startswith("HS") or value.lower() == "none":
            raise ValueError(f"{value!r}: client assertions are signed with an asymmetric algorithm (e.g. RS512)")
        return value

    def private_key_text(self) -> Secret:
        """The private key as PEM or JWK JSON text."""
        if self.private_jwk is not None:
            return self.private_jwk
        return Secret(Path(self.private_key_file).read_text(encoding="utf-8"))  # type: ignore[arg-type]

    def secrets(self) -> tuple[str, ...]:
        values = list(super().secrets())
        if self.private_key_file is not None:
            try:
                values.append(Path(self.private_key_file).read_text(encoding="utf-8"))
            except OSError:
                pass
        return tuple(values)


class MtlsCredential(_Credential):
    type: Literal["mtls"] = "mtls"
    cert_file: Path
    key_file: Path

    @model_validator(mode="after")
    def _files(self) -> MtlsCredential:
        for name in ("cert_file", "key_file"):
            if not Path(getattr(self, name)).is_file():
                raise ValueError(f"{name} {str(getattr(self, name))!r} is not a readable file")
        return self


class AccountCredential(_Credential):
    """A person's log-in at one of the target's web applications (the KT2 domain admin, for one)."""

    type: Literal["account"] = "account"
    username: str = Field(min_length=1)
    password: SecretValue = Secret("")


Credential = Annotated[BasicCredential | SmartBackendCredential | MtlsCredential | AccountCredential,
                       Field(discriminator="type")]
CREDENTIAL_TYPES: Mapping[str, type[_Credential]] = {
    "basic": BasicCredential, "smart-backend": SmartBackendCredential, "mtls": MtlsCredential,
    "account": AccountCredential}


class Target(_Model):
    """A system under test and how the bench reaches and authenticates to it."""

    name: str
    kind: str
    url: str
    description: str = ""
    embedded: bool = False                # the bench started it for this run (reports say so)
    request_timeout_seconds: float = Field(10.0, gt=0)
    tls: TlsSettings = TlsSettings()
    roles: dict[str, Credential] = Field(default_factory=dict)
    settings: Any = None                  # the generation's settings model for this kind

    def role(self, name: str) -> Any:
        try:
            return self.roles[name]
        except KeyError:
            known = ", ".join(sorted(self.roles)) or "none"
            raise BenchError(
                f"target {self.name!r} has no credentials for role {name!r} (configured roles: {known})"
            ) from None

    def has_role(self, name: str) -> bool:
        return name in self.roles

    def setting(self, name: str, default: Any = None) -> Any:
        value = getattr(self.settings, name, None) if self.settings is not None else None
        return default if value is None else value

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for report scrubbing."""
        return tuple(v for creds in self.roles.values() for v in creds.secrets() if v)

    def describe(self) -> str:
        return f"{self.name} ({self.kind} at {self.url}{', embedded' if self.embedded else ''})"

    def __repr__(self) -> str:  # short and secret-free: allure-pytest-bdd shows it as a step parameter
        return f"Target(name={self.name!r}, kind={self.kind!r}, url={self.url!r}, roles={sorted(self.roles)!r})"

    __str__ = __repr__

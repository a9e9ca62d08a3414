"""The KT2 target settings: what a voorziening target declares beyond its FHIR base URL and credentials.

Flat keys of a `[targets.NAME]` table whose kind is kt2-server.  A scenario that needs something the target
does not declare (another domain for isolation checks, a scripted identity provider for the SMART app
launch, a token lifetime short enough to wait for) skips, and its skip reason names the key.

Two ways to give the bench its applications (see README "KT2 targets"):
- admin accounts (roles `application-admin` and `domain-admin`): the bench files connection requests for its
  simulated portal and module and approves them itself, on every run (the embedded default, or a
  `ktbench serve kt2`);
- pre-registered instances (roles `portal` and `module` with `type = "smart-backend"`: client id, private
  key, JWKS URL), as a vendor has them on acc21/acc22.  Scenarios that need admin powers are then skipped.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ktbench.core.errors import TargetConfigError
from ktbench.targets.reader import check_url


class Kt2Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str | None = None                      # the domain's name (connection requests; default: from the URL)
    admin_api: str | None = None                   # domain admin JSON API (default: management_endpoint + "api")
    portal_application: str = "ktbench-portal"     # the application ids the bench files requests for ...
    module_application: str = "ktbench-module"
    portal_role: str = "Behandelaarsportaal"       # ... and the roles its domain admin assigns
    module_role: str = "eHealth Module"
    other_domain: str | None = None                # a second domain of the same voorziening (isolation checks)
    other_domain_fhir_base: str | None = None
    actors_tls_cert: Path | None = None            # https for the bench's own endpoints (JWKS, launch, notify)
    actors_tls_key: Path | None = None
    actors_public_base: str | None = None          # when the voorziening reaches the bench through a tunnel
    loopback_http_notifications: bool = False      # it accepts http://127.0.0.1 subscription endpoints (the
                                                   # reference's allow_loopback_http_subscriptions)
    idp_username: str | None = None                # a user of a scripted identity provider (SMART app launch)
    idp_user_identifier: str | None = None         # the identity that IdP returns for that user
    access_token_seconds: float | None = Field(None, gt=0)      # declared lifetime (default: the token's expires_in)
    clock_skew_seconds: float = Field(60.0, ge=0)               # the leeway the store gives an expired token
    launch_max_lifetime_seconds: int = Field(300, gt=0)         # HTI exp - iat the voorziening accepts
    notification_timeout_seconds: float = Field(10.0, gt=0)     # how long the bench waits for a notification
    audit_delay_seconds: float = Field(5.0, ge=0)               # how long an AuditEvent may take to be searchable

    @field_validator("admin_api", "other_domain_fhir_base", "actors_public_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_url(value, "value").rstrip("/")
        except TargetConfigError as exc:
            raise ValueError(str(exc).removeprefix("value: ")) from None

    @model_validator(mode="after")
    def _pairs(self) -> Kt2Settings:
        if (self.actors_tls_cert is None) != (self.actors_tls_key is None):
            raise ValueError("actors_tls_cert and actors_tls_key go together")
        for name in ("actors_tls_cert", "actors_tls_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"{name} {str(path)!r} is not a readable file")
        if (self.idp_username is None) != (self.idp_user_identifier is None):
            raise ValueError("idp_username and idp_user_identifier go together")
        if (self.other_domain is None) != (self.other_domain_fhir_base is None):
            raise ValueError("other_domain and other_domain_fhir_base go together")
        return self

"""The KT2 voorziening's data file: domains, roles and their permissions, admin accounts, applications with
their instances, identity providers and the users they know.

TOML, checked with pydantic at start-up: a mistake is one `DataFileError` listing every problem with its
location, and `ktbench serve kt2` exits 2.  The shipped default is `default_data.toml` next to this module.

Permissions follow the reference implementation's model (kt2-protocol.md §5.3): per role and resource type a
set of operations (C, R, U, D) with a scope: ALL (any resource), OWN (resources whose resource-origin is the
caller's own Device) or GRANTED (resources created by the named applications' instances in the domain).
The data file writes them as strings: `Task = ["CRU:ALL", "D:OWN"]`, `Endpoint = "R:GRANTED(ktbench-module)"`.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

RESOURCE_TYPES = ("ActivityDefinition", "AuditEvent", "CareTeam", "Device", "Endpoint", "Organization", "Patient",
                  "Practitioner", "RelatedPerson", "Subscription", "Task")
USER_TYPES = ("Patient", "Practitioner", "RelatedPerson")
INSTANCE_STATUSES = ("active", "maintenance", "closed")   # "Actief", "In onderhoud", "Afgesloten" (seed 001 §4.5)
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_PERMISSION_RE = re.compile(r"^(?P<ops>[CRUD]+):(?P<scope>ALL|OWN|GRANTED\((?P<granted>[^()]*)\))$")


class DataFileError(ValueError):
    """The data file cannot be used; the message lists every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Strict):
    """[server]: timers and limits.  Everything has a default that matches the reference implementation."""

    access_token_seconds: int = Field(300, gt=0)            # AUTH: 300 s
    id_token_seconds: int = Field(300, gt=0)
    authorization_code_seconds: int = Field(60, gt=0)
    login_session_seconds: int = Field(600, gt=0)            # an authorize request waiting for the IdP step
    assertion_max_lifetime_seconds: int = Field(300, gt=0)   # client assertion exp at most this far ahead
    launch_max_lifetime_seconds: int = Field(300, gt=0)      # HTI exp - iat at most this
    clock_skew_seconds: int = Field(30, ge=0)
    signing_algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
    jwks_fetch_timeout_seconds: float = Field(2.0, gt=0)
    jwks_cache_seconds: float = Field(60.0, ge=0)            # when the JWKS answer names no max-age
    trusted_ca_file: str | None = None                       # extra CA for https JWKS and subscription endpoints
    max_body_bytes: int = Field(5_000_000, gt=0)
    default_page_size: int = Field(20, gt=0)
    max_page_size: int = Field(200, gt=0)
    login_attempts: int = Field(5, gt=0)                     # wrong admin passwords before the account blocks
    admin_session_seconds: int = Field(3600, gt=0)
    allow_loopback_http_subscriptions: bool = False          # tests: http://127.0.0.1 subscription endpoints
    allow_loopback_http_jwks: bool = True                    # JWKS URLs on http://127.0.0.1 (tests, local runs)
    notification_attempts: int = Field(3, gt=0)
    notification_backoff_seconds: float = Field(0.2, ge=0)   # doubles after each failed attempt
    notification_timeout_seconds: float = Field(2.0, gt=0)

    @field_validator("signing_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [a for a in value if a not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown or symmetric algorithm(s) {unknown}; allowed: {', '.join(ALGORITHMS)}")
        if not value:
            raise ValueError("at least one algorithm")
        return value


class Domain(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]               # the URL segment: /api/v1/<name>/fhir/r4
    title: str = ""                                          # shown in e-mails and on the admin page
    environment: str = "ktbench"                             # e-mail subjects name it ("... op acc21")


class Permission(_Strict):
    operations: frozenset[Literal["C", "R", "U", "D"]]
    scope: Literal["ALL", "OWN", "GRANTED"]
    granted: tuple[str, ...] = ()                            # application ids (GRANTED only)

    @classmethod
    def parse(cls, text: str) -> Permission:
        match = _PERMISSION_RE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a permission like 'CRUD:ALL', 'R:OWN' or 'RU:GRANTED(app-id)'")
        scope = match["scope"].split("(")[0]
        granted = tuple(g.strip() for g in (match["granted"] or "").split(",") if g.strip())
        if scope == "GRANTED" and not granted:
            raise ValueError(f"{text!r}: GRANTED needs application ids, e.g. 'R:GRANTED(ktbench-module)'")
        return cls(operations=frozenset(match["ops"]), scope=scope, granted=granted)


class Role(_Strict):
    name: str
    description: str = ""
    # resource type (or "*" for every type) -> permissions; see the module docstring for the notation
    permissions: dict[str, tuple[Permission, ...]]

    @field_validator("permissions", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be a table of resource type = permission(s)")
        parsed: dict[str, tuple[Permission, ...]] = {}
        for rtype, spec in value.items():
            if rtype != "*" and rtype not in RESOURCE_TYPES:
                raise ValueError(f"unknown resource type {rtype!r} (known: {', '.join(RESOURCE_TYPES)} or '*')")
            items = [spec] if isinstance(spec, str) else spec
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{rtype}: a permission string or a list of them")
            perms = tuple(Permission.parse(i) for i in items)
            seen: set[str] = set()
            for perm in perms:
                twice = seen & perm.operations
                if twice:
                    raise ValueError(f"{rtype}: operation(s) {sorted(twice)} given more than one scope")
                seen |= perm.operations
            parsed[rtype] = perms
        return parsed

    def permission(self, rtype: str, operation: str) -> Permission | None:
        """The permission for one operation on one type (a type's own entry wins over '*')."""
        for key in (rtype, "*"):
            for perm in self.permissions.get(key, ()):
                if operation in perm.operations:
                    return perm
            if key in self.permissions and key == rtype:
                return None  # the type is listed without this operation: '*' does not add to it
        return None


class Admin(_Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1)]
    kind: Literal["domain-admin", "application-admin"]
    email: str
    name: str = ""
    domains: tuple[str, ...] = ()                            # domain admins: the domains they manage
    applications: tuple[str, ...] = ()                       # application admins: the applications they manage


class Instance(_Strict):
    """An application instance registered and approved in a domain (a client of the voorziening)."""

    domain: str
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]  # = Device id
    role: str
    status: Literal["active", "maintenance", "closed"] = "active"
    name: str = ""                                           # Device.deviceName; default: the application's
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None                       # inline JWKS ({"keys": [...]}), public keys only
    redirect_uris: tuple[str, ...] = ()
    launch_url: str | None = None                            # where portals POST the HTI launch

    @model_validator(mode="after")
    def _one_key_source(self) -> Instance:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give exactly one of jwks_url and jwks")
        if self.jwks_url is not None:
            problem = _url_problem(self.jwks_url)
            if problem:
                raise ValueError(f"jwks_url {problem}")
        return self


def _url_problem(url: str) -> str | None:
    """Why `url` is no absolute http(s) URL the voorziening can fetch (None: it is one)."""
    if not url.isascii() or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return "must be an ASCII URL without spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is no number from 0 to 65535)
    except ValueError:
        return "is not a valid URL (look at the host and the port)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@)"
    return None


class Application(_Strict):
    """An application of an IT deelnemer; it joins domains as instances (connection requests, seed 001 §5)."""

    id: Annotated[str, Field(pattern=_NAME)]
    name: str
    vendor: str = ""
    instances: tuple[Instance, ...] = ()


class IdentityProvider(_Strict):
    id: Annotated[str, Field(pattern=_NAME)]                 # the HTI idp_hint names it
    domain: str
    name: str = ""
    user_types: tuple[Literal["Patient", "Practitioner", "RelatedPerson"], ...] = USER_TYPES


class User(_Strict):
    """A person the simulated identity provider can log in; `identifier` must be one of the identifier values
    of the FHIR resource the HTI `sub` names (kt2-protocol.md §2.5)."""

    username: str
    idp: str
    identifier: str
    name: str = ""


class ServerData(_Strict):
    settings: Settings = Field(default_factory=Settings, alias="server")
    domains: tuple[Domain, ...]
    roles: tuple[Role, ...]
    admins: tuple[Admin, ...] = ()
    applications: tuple[Application, ...] = ()
    identity_providers: tuple[IdentityProvider, ...] = ()
    users: tuple[User, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _references(self) -> ServerData:
        problems: list[str] = []
        domains = {d.name for d in self.domains}
        roles = {r.name for r in self.roles}
        apps = {a.id for a in self.applications}
        idps = {i.id for i in self.identity_providers}
        _unique(problems, "domains", [d.name for d in self.domains])
        _unique(problems, "roles", [r.name for r in self.roles])
        _unique(problems, "admins", [a.username for a in self.admins])
        _unique(problems, "applications", [a.id for a in self.applications])
        _unique(problems, "identity_providers", [i.id for i in self.identity_providers])
        _unique(problems, "instances (client_id)", [i.client_id for a in self.applications for i in a.instances])
        for role in self.roles:
            for perms in role.permissions.values():
                for perm in perms:
                    problems += [f"roles[{role.name}]: GRANTED names unknown application {g!r}"
                                 for g in perm.granted if g not in apps]
        for admin in self.admins:
            problems += [f"admins[{admin.username}]: unknown domain {d!r}" for d in admin.domains if d not in domains]
            problems += [f"admins[{admin.username}]: unknown application {a!r}"
                         for a in admin.applications if a not in apps]
        for app in self.applications:
            for inst in app.instances:
                if inst.domain not in domains:
                    problems.append(f"applications[{app.id}].instances[{inst.client_id}]: unknown domain "
                                    f"{inst.domain!r}")
                if inst.role not in roles:
                    problems.append(f"applications[{app.id}].instances[{inst.client_id}]: unknown role "
                                    f"{inst.role!r} (roles: {', '.join(sorted(roles))})")
        for idp in self.identity_providers:
            if idp.domain not in domains:
                problems.append(f"identity_providers[{idp.id}]: unknown domain {idp.domain!r}")
        for user in self.users:
            if user.idp not in idps:
                problems.append(f"users[{user.username}]: unknown idp {user.idp!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- lookups ------------------------------------------------------------------------------------
    def domain(self, name: str) -> Domain | None:
        return next((d for d in self.domains if d.name == name), None)

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)

    def application(self, app_id: str) -> Application | None:
        return next((a for a in self.applications if a.id == app_id), None)


def _unique(problems: list[str], what: str, names: list[str]) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"{what}: duplicate {', '.join(twice)}")


def default_data_path() -> Path:
    return Path(str(resources.files("simulators.kt2").joinpath("default_data.toml")))


def load_data(source: str | Path | None = None) -> ServerData:
    """Read and check a data file (None: the shipped default)."""
    path = Path(source) if source is not None else default_data_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"data file {path} does not exist") from None
    except IsADirectoryError:
        raise DataFileError(f"data file {path} is a directory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"data file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"data file {path} is not valid TOML: {exc}") from None
    return parse_data(raw, str(path))


def parse_data(raw: dict[str, Any], where: str = "data") -> ServerData:
    try:
        return ServerData.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
            lines.append(f"{loc}: {error['msg'].removeprefix('Value error, ')}")
        raise DataFileError(f"invalid data file {where}:\n  - " + "\n  - ".join(lines)) from None

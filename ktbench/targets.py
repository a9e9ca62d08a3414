"""What the bench tests against: a `Target` and the credentials of the roles it simulates.

A run needs three things about its target: where it is (`url`), what it is
(`kind`, e.g. "kt1-server") and which application credentials the simulated
counter-roles (portal, module, ...) use there.  A bare URL assumes the KT1
reference server's default data (ktbench/data/kt1_default.toml), so
`ktbench run --target http://127.0.0.1:8080` works against `ktbench serve kt1`
without any file.  Anything else goes in a TOML targets file::

    default = "acceptance"                      # optional: used when --target is omitted

    [targets.acceptance]
    kind = "kt1-server"
    url = "https://edge.example.org"
    domain = "vzvz-test"
    claim_timeout_seconds = 300

    [targets.acceptance.roles.portal]
    app_id = "vzvz-portal"
    username = "vzvz-portal"                    # defaults to app_id
    password = "${KT_PORTAL_PASSWORD}"          # from the environment; a missing variable is an error
    client_secret = "${KT_PORTAL_SECRET:-}"     # ${NAME:-default} gives a fallback

A target without a `roles` table gets the reference server's default roles.
Secrets are wrapped in `Secret`, whose str()/repr() is '***', so a target can be
printed, logged or shown as a step parameter by allure-pytest-bdd without
leaking anything; code that needs the value calls `.reveal()`.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ktbench.dstu1.constants import FHIR_BASE_PATH

DEFAULT_DATA_FILE = Path(__file__).resolve().parent / "data" / "kt1_default.toml"
TARGETS_ENV_VAR = "KTBENCH_TARGETS"

KINDS = ("kt1-server",)
# Simulated role -> application id in the reference server's default data.
DEFAULT_ROLE_APPS: Mapping[str, str] = {
    "portal": "ktbench-portal",
    "module": "ktbench-module",
    "observer": "ktbench-observer",
    "other-domain-portal": "ktbench-beta-portal",
    "other-domain-module": "ktbench-beta-module",
}
KNOWN_ROLES = tuple(DEFAULT_ROLE_APPS)

_TARGET_KEYS = {
    "kind", "url", "domain", "public_base", "description", "roles",
    "claim_timeout_seconds", "request_timeout_seconds", "verify_tls", "embedded",
}
_ROLE_KEYS = {"app_id", "username", "password", "client_secret", "domain"}
_TOP_KEYS = {"targets", "default"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class BenchError(Exception):
    """A problem of the bench or its configuration, not of the target: reported as BROKEN."""


class TargetConfigError(BenchError):
    """The targets file or --target value is unusable; the message says where and why."""


class Secret:
    """A secret string that does not print itself.

    Deliberately *not* a str subclass: string formatting, concatenation or JSON
    encoding of a str subclass would silently expose the value, whereas this
    class forces every real use through `.reveal()`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self  # (dataclasses.asdict deep-copies field values)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (e.g. to another process) must not be a way around the redaction either.
        raise TypeError("Secret values are not picklable")


@dataclass(frozen=True)
class AppCredentials:
    """One application registered on the target, used by one simulated role."""

    role: str
    app_id: str
    username: str
    password: Secret
    client_secret: Secret
    domain: str

    def basic_auth(self) -> tuple[str, str]:
        """(username, password) for HTTP Basic; reveals the password: pass it straight to the client."""
        return self.username, self.password.reveal()


@dataclass(frozen=True)
class Target:
    """A system under test and how the bench reaches and authenticates to it."""

    name: str
    kind: str
    url: str
    domain: str
    public_base: str
    roles: Mapping[str, AppCredentials] = field(default_factory=dict)
    claim_timeout_seconds: float | None = None
    request_timeout_seconds: float = 10.0
    verify_tls: bool = True
    embedded: bool = False
    description: str = ""

    @property
    def fhir_base(self) -> str:
        return self.url + FHIR_BASE_PATH

    def role(self, name: str) -> AppCredentials:
        try:
            return self.roles[name]
        except KeyError:
            known = ", ".join(sorted(self.roles)) or "none"
            raise BenchError(
                f"target {self.name!r} has no credentials for role {name!r} (configured roles: {known})"
            ) from None

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value, for report scrubbing."""
        values = []
        for creds in self.roles.values():
            values += [creds.password.reveal(), creds.client_secret.reveal()]
        return tuple(v for v in values if v)

    def describe(self) -> str:
        return f"{self.name} ({self.kind} at {self.url}{', embedded' if self.embedded else ''})"

    def __repr__(self) -> str:  # short and secret-free: allure-pytest-bdd shows it as a step parameter
        return f"Target(name={self.name!r}, kind={self.kind!r}, url={self.url!r}, roles={sorted(self.roles)!r})"


# ---------------------------------------------------------------------------------------------------------------
# Defaults: the reference server's data
# ---------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _reference_apps(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {app["id"]: app for app in data.get("applications", [])}


def default_roles(data_file: Path = DEFAULT_DATA_FILE) -> dict[str, AppCredentials]:
    """The simulated roles' credentials in the reference server's default data."""
    apps = _reference_apps(data_file)
    roles = {}
    for role, app_id in DEFAULT_ROLE_APPS.items():
        app = apps.get(app_id)
        if app is None:
            raise TargetConfigError(f"{data_file}: application {app_id!r} (role {role!r}) is missing")
        roles[role] = AppCredentials(
            role=role,
            app_id=app_id,
            username=app.get("username", app_id),
            password=Secret(app.get("password", "")),
            client_secret=Secret(app.get("client_secret", "")),
            domain=app["domain"],
        )
    return roles


def _check_url(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TargetConfigError(f"{where}: must be an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetConfigError(f"{where}: {value!r} is not an http(s) URL (example: http://127.0.0.1:8080)")
    if parts.query or parts.fragment:
        raise TargetConfigError(f"{where}: {value!r} must not have a query or fragment")
    return value.rstrip("/")


def target_from_url(url: str, name: str | None = None, **overrides: Any) -> Target:
    """A target for a bare URL: the reference server's default domain and role credentials."""
    url = _check_url(url, "--target")
    roles = default_roles()
    parts = urlsplit(url)
    values: dict[str, Any] = dict(
        name=name or (parts.netloc or url),
        kind="kt1-server",
        url=url,
        domain=roles["portal"].domain,
        public_base=url,
        roles=roles,
    )
    values.update(overrides)
    return Target(**values)


# ---------------------------------------------------------------------------------------------------------------
# Targets file
# ---------------------------------------------------------------------------------------------------------------
def substitute_env(value: str, where: str, env: Mapping[str, str]) -> str:
    """Expand ${NAME} and ${NAME:-default}; `$$` is a literal `$`.  A missing variable is an error."""

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise TargetConfigError(
            f"{where}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-fallback}} to give a default)"
        )

    return _ENV_RE.sub(expand, value)


def _unknown_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> list[str]:
    errors = []
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(sorted(allowed))})"
            errors.append(f"{where}: unknown key {key!r}{suggestion}")
    return errors


class _Reader:
    """Reads one targets file, collecting every error so the user can fix them in one go."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self.errors: list[str] = []

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool = False,
               default: str | None = None) -> str | None:
        if key not in table:
            if required:
                self.errors.append(f"{where}: missing required key {key!r}")
            return default
        value = table[key]
        if not isinstance(value, str):
            self.errors.append(f"{where}.{key}: must be a string, got {type(value).__name__}")
            return default
        try:
            return substitute_env(value, f"{where}.{key}", self.env)
        except TargetConfigError as exc:
            self.errors.append(str(exc))
            return default

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float | None) -> float | None:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.errors.append(f"{where}.{key}: must be a positive number, got {value!r}")
            return default
        return float(value)

    def boolean(self, table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, bool):
            self.errors.append(f"{where}.{key}: must be true or false, got {value!r}")
            return default
        return value

    def role(self, role: str, table: Any, where: str, domain: str) -> AppCredentials | None:
        if not isinstance(table, dict):
            self.errors.append(f"{where}: must be a table")
            return None
        self.errors += _unknown_keys(table, _ROLE_KEYS, where)
        app_id = self.string(table, "app_id", where, required=True) or ""
        username = self.string(table, "username", where, default=app_id) or app_id
        password = self.string(table, "password", where, default="") or ""
        client_secret = self.string(table, "client_secret", where, default="") or ""
        role_domain = self.string(table, "domain", where, default=domain) or domain
        return AppCredentials(role, app_id, username, Secret(password), Secret(client_secret), role_domain)

    def target(self, name: str, table: Any) -> Target | None:
        where = f"[targets.{name}]"
        if not _NAME_RE.match(name):
            self.errors.append(f"{where}: target names use letters, digits, '.', '_' and '-'")
        if not isinstance(table, dict):
            self.errors.append(f"{where}: must be a table")
            return None
        self.errors += _unknown_keys(table, _TARGET_KEYS, where)
        kind = self.string(table, "kind", where, default="kt1-server") or "kt1-server"
        if kind not in KINDS:
            self.errors.append(f"{where}.kind: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        url = self.string(table, "url", where, required=True)
        if url is not None:
            try:
                url = _check_url(url, f"{where}.url")
            except TargetConfigError as exc:
                self.errors.append(str(exc))
                url = None
        public_base = self.string(table, "public_base", where, default=url)
        if public_base is not None and public_base != url:
            try:
                public_base = _check_url(public_base, f"{where}.public_base")
            except TargetConfigError as exc:
                self.errors.append(str(exc))
        roles_table = table.get("roles")
        roles: dict[str, AppCredentials]
        if roles_table is None:
            roles = default_roles()
            domain_default: str | None = roles["portal"].domain
        else:
            domain_default = None
        domain = self.string(table, "domain", where, required=domain_default is None, default=domain_default)
        if roles_table is not None:
            roles = {}
            if not isinstance(roles_table, dict):
                self.errors.append(f"{where}.roles: must be a table of roles")
            else:
                for role, role_table in roles_table.items():
                    if role not in KNOWN_ROLES:
                        hint = difflib.get_close_matches(role, KNOWN_ROLES, n=1)
                        extra = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(KNOWN_ROLES)})"
                        self.errors.append(f"{where}.roles: unknown role {role!r}{extra}")
                        continue
                    creds = self.role(role, role_table, f"[targets.{name}.roles.{role}]", domain or "")
                    if creds is not None:
                        roles[role] = creds
        claim_timeout = self.number(table, "claim_timeout_seconds", where, None)
        request_timeout = self.number(table, "request_timeout_seconds", where, 10.0) or 10.0
        verify_tls = self.boolean(table, "verify_tls", where, True)
        embedded = self.boolean(table, "embedded", where, False)
        description = self.string(table, "description", where, default="") or ""
        if url is None or domain is None:
            return None
        return Target(
            name=name, kind=kind, url=url, domain=domain, public_base=(public_base or url).rstrip("/"),
            roles=roles, claim_timeout_seconds=claim_timeout, request_timeout_seconds=request_timeout,
            verify_tls=verify_tls, embedded=embedded, description=description,
        )


@dataclass(frozen=True)
class TargetsFile:
    path: Path
    targets: Mapping[str, Target]
    default: str | None = None

    def get(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            known = ", ".join(sorted(self.targets)) or "none"
            hint = difflib.get_close_matches(name, sorted(self.targets), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise TargetConfigError(f"{self.path}: unknown target {name!r} (known: {known}){extra}") from None


def load_targets_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> TargetsFile:
    """Parse and validate a targets file; raises TargetConfigError listing every problem found."""
    path = Path(path)
    env = os.environ if env is None else env
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise TargetConfigError(f"targets file {path} does not exist") from None
    except IsADirectoryError:
        raise TargetConfigError(f"targets file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetConfigError(f"{path}: not valid TOML: {exc}") from None
    reader = _Reader(path, env)
    reader.errors += _unknown_keys(data, _TOP_KEYS, str(path))
    tables = data.get("targets")
    targets: dict[str, Target] = {}
    if not isinstance(tables, dict) or not tables:
        reader.errors.append(f"{path}: no [targets.<name>] tables found")
    else:
        for name, table in tables.items():
            target = reader.target(name, table)
            if target is not None:
                targets[name] = target
    default = data.get("default")
    if default is not None and (not isinstance(default, str) or (tables and default not in tables)):
        reader.errors.append(f"{path}: default = {default!r} does not name a target in this file")
    if reader.errors:
        bullet = "\n  - "
        raise TargetConfigError(f"invalid targets file {path}:{bullet}{bullet.join(reader.errors)}")
    return TargetsFile(path=path, targets=targets, default=default)


def looks_like_url(spec: str) -> bool:
    return "://" in spec


def resolve_target(spec: str | None, targets_file: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> Target | None:
    """Turn `--target URL|NAME` (+ `--targets FILE`) into a Target.

    Returns None when neither a target nor a default is given: the caller then
    starts the embedded reference server.
    """
    env = os.environ if env is None else env
    if targets_file is None and env.get(TARGETS_ENV_VAR):
        targets_file = env[TARGETS_ENV_VAR]
    if spec is not None and looks_like_url(spec):
        return target_from_url(spec)
    if targets_file is None:
        if spec is None:
            return None
        raise TargetConfigError(
            f"--target {spec!r} is neither a URL nor a target name from a targets file "
            f"(pass --targets FILE or set {TARGETS_ENV_VAR})"
        )
    loaded = load_targets_file(targets_file, env)
    name = spec if spec is not None else loaded.default
    if name is None:
        return None
    return loaded.get(name)


def with_options(target: Target, **changes: Any) -> Target:
    """A copy of `target` with some fields changed (used by `ktbench run` for the embedded server)."""
    return replace(target, **changes)

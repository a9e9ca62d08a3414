"""Loading the server's data file: domains, application instances, seeded ActivityDefinitions.

The data file is TOML (format documented in README.md, default in
simulators/kt1/default_data.toml).  It is checked completely at start-up so a
typo becomes one clear message instead of a confusing 401 later on.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ktbench.fhir.dstu1.constants import ACTIVITY_KINDS, LAUNCH_TYPES, MESSAGE_EVENTS


class DataFileError(ValueError):
    """The data file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Settings:
    claim_timeout_seconds: float = 300.0
    max_claim_expiries: int = 5
    access_token_seconds: int = 3600
    authorization_code_seconds: int = 60
    activation_code_days: int = 7
    webhook_attempts: int = 5
    webhook_retry_delay_seconds: float = 0.5
    max_body_bytes: int = 5_000_000
    launch_seconds: int = 600


@dataclass(frozen=True)
class Application:
    id: str
    name: str
    domain: str
    username: str
    password: str = field(repr=False)
    client_secret: str = field(repr=False)
    roles: tuple[str, ...] = ()
    launch_url: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    events: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SeedActivity:
    domain: str
    identifier: str
    name: str
    kind: str
    application: str
    description: str | None = None
    launch_type: str = "Web"
    archived: bool = False
    active: bool = True
    domain_specific: bool = False


@dataclass(frozen=True)
class ServerData:
    settings: Settings
    domains: tuple[str, ...]
    applications: tuple[Application, ...]
    activities: tuple[SeedActivity, ...]

    def by_username(self, username: str) -> Application | None:
        for app in self.applications:
            if app.username == username:
                return app
        return None

    def by_id(self, app_id: str) -> Application | None:
        for app in self.applications:
            if app.id == app_id:
                return app
        return None

    def in_domain(self, domain: str) -> list[Application]:
        return [app for app in self.applications if app.domain == domain]


_SETTING_TYPES = {name: type(getattr(Settings(), name)) for name in Settings.__dataclass_fields__}
_APP_KEYS = {
    "id", "name", "domain", "roles", "username", "password", "client_secret",
    "launch_url", "webhook_url", "webhook_secret", "events",
}
_AD_KEYS = {
    "domain", "identifier", "name", "kind", "application", "description",
    "launch_type", "archived", "active", "domain_specific",
}


def default_data_path() -> Path:
    return Path(str(resources.files("simulators.kt1").joinpath("default_data.toml")))


def load_data(path: str | Path | None = None) -> ServerData:
    """Read and check a data file; `None` means the shipped default."""
    path = Path(path) if path is not None else default_data_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(f"data file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"cannot read data file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{path}: not valid TOML: {exc}") from None
    return parse_data(raw, source=str(path))


def parse_data(raw: dict[str, Any], source: str = "<data>") -> ServerData:
    unknown = set(raw) - {"server", "domains", "applications", "activity_definitions"}
    if unknown:
        raise DataFileError(f"{source}: unknown top-level keys: {sorted(unknown)}")
    settings = _parse_settings(raw.get("server", {}), source)
    domains = []
    for i, dom in enumerate(raw.get("domains", [])):
        name = dom.get("name") if isinstance(dom, dict) else None
        if not isinstance(name, str) or not name:
            raise DataFileError(f"{source}: domains[{i}] needs a name")
        if name in domains:
            raise DataFileError(f"{source}: domain {name!r} declared twice")
        domains.append(name)
    if not domains:
        raise DataFileError(f"{source}: declare at least one [[domains]]")
    apps = [_parse_app(i, a, domains, source) for i, a in enumerate(raw.get("applications", []))]
    for attr in ("id", "username"):
        seen: set[str] = set()
        for app in apps:
            value = getattr(app, attr)
            if value in seen:
                raise DataFileError(f"{source}: application {attr} {value!r} is used twice")
            seen.add(value)
    app_ids = {a.id: a for a in apps}
    ads = [_parse_ad(i, a, app_ids, source) for i, a in enumerate(raw.get("activity_definitions", []))]
    return ServerData(settings, tuple(domains), tuple(apps), tuple(ads))


def _parse_settings(raw: Any, source: str) -> Settings:
    if not isinstance(raw, dict):
        raise DataFileError(f"{source}: [server] must be a table")
    values = {}
    for key, value in raw.items():
        if key not in _SETTING_TYPES:
            raise DataFileError(f"{source}: unknown [server] setting {key!r}")
        wanted = _SETTING_TYPES[key]
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, wanted) or isinstance(value, bool) or value <= 0:
            raise DataFileError(f"{source}: [server] {key} must be a positive {wanted.__name__}")
        values[key] = value
    return Settings(**values)


def _text(entry: dict, key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise DataFileError(f"{where}: {key!r} must be a non-empty string")
    return value


def _url(entry: dict, key: str, where: str) -> str | None:
    """An optional http(s) URL the server itself calls or redirects to (launch_url, webhook_url)."""
    value = _text(entry, key, where, required=False)
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc \
            or any(ord(c) < 33 for c in value):
        raise DataFileError(f"{where}: {key} {value!r} is not an http(s) URL")
    return value


def _parse_app(i: int, entry: Any, domains: list[str], source: str) -> Application:
    where = f"{source}: applications[{i}]"
    if not isinstance(entry, dict):
        raise DataFileError(f"{where} must be a table")
    unknown = set(entry) - _APP_KEYS
    if unknown:
        raise DataFileError(f"{where}: unknown keys {sorted(unknown)}")
    domain = _text(entry, "domain", where)
    if domain not in domains:
        raise DataFileError(f"{where}: domain {domain!r} is not declared in [[domains]]")
    events = entry.get("events", [])
    if not isinstance(events, list) or any(e not in MESSAGE_EVENTS for e in events):
        bad = [e for e in events if e not in MESSAGE_EVENTS] if isinstance(events, list) else events
        raise DataFileError(f"{where}: unknown message events {bad!r}; known: {list(MESSAGE_EVENTS)}")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise DataFileError(f"{where}: roles must be a list of strings")
    return Application(
        id=_text(entry, "id", where),
        name=_text(entry, "name", where, required=False) or entry["id"],
        domain=domain,
        username=_text(entry, "username", where),
        password=_text(entry, "password", where),
        client_secret=_text(entry, "client_secret", where),
        roles=tuple(roles),
        launch_url=_url(entry, "launch_url", where),
        webhook_url=_url(entry, "webhook_url", where),
        webhook_secret=_text(entry, "webhook_secret", where, required=False),
        events=frozenset(events),
    )


def _parse_ad(i: int, entry: Any, apps: dict[str, Application], source: str) -> SeedActivity:
    where = f"{source}: activity_definitions[{i}]"
    if not isinstance(entry, dict):
        raise DataFileError(f"{where} must be a table")
    unknown = set(entry) - _AD_KEYS
    if unknown:
        raise DataFileError(f"{where}: unknown keys {sorted(unknown)}")
    app_id = _text(entry, "application", where)
    app = apps.get(app_id)
    if app is None:
        raise DataFileError(f"{where}: application {app_id!r} is not declared")
    domain = _text(entry, "domain", where)
    if app.domain != domain:
        raise DataFileError(f"{where}: application {app_id!r} is not in domain {domain!r}")
    kind = _text(entry, "kind", where)
    if kind not in ACTIVITY_KINDS:
        raise DataFileError(f"{where}: kind {kind!r} is not one of {list(ACTIVITY_KINDS)}")
    launch_type = entry.get("launch_type", "Web")
    if launch_type not in LAUNCH_TYPES:
        raise DataFileError(f"{where}: launch_type {launch_type!r} is not one of {list(LAUNCH_TYPES)}")
    flags = {}
    for key in ("archived", "active", "domain_specific"):
        if key in entry:
            if not isinstance(entry[key], bool):
                raise DataFileError(f"{where}: {key} must be true or false")
            flags[key] = entry[key]
    return SeedActivity(
        domain=domain,
        identifier=_text(entry, "identifier", where),
        name=_text(entry, "name", where),
        kind=kind,
        application=app_id,
        description=_text(entry, "description", where, required=False),
        launch_type=launch_type,
        **flags,
    )

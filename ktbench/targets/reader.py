"""The one targets-file reader: TOML in, `Target`s out, every problem reported at once with its location.

    default = "acceptance"                      # optional: used when --target is omitted

    [targets.acceptance]
    kind = "kt1-server"                         # a kind a registered generation declares
    url = "https://edge.example.org"
    request_timeout_seconds = 20                # optional
    claim_timeout_seconds = 300                 # the generation's own settings: flat keys (see its docs)

    [targets.acceptance.tls]                    # optional
    ca_file = "certs/vzvz-test-ca.pem"
    client_cert = "certs/bench.pem"             # mTLS
    client_key = "certs/bench.key"

    [targets.acceptance.roles.portal]           # the roles the kind declares; `type` defaults to the role's
    app_id = "vzvz-portal"                      # first credential type
    password = "${KT_PORTAL_PASSWORD}"          # from the environment; a missing variable is an error
    client_secret = "${KT_PORTAL_SECRET:-}"     # ${NAME:-default} gives a fallback; $$ is a literal $

A target without a `roles` table gets the generation's default roles (those of its reference simulator).
The schema checks are pydantic's; the messages are rewritten to name the file, the table and the key, with a
"did you mean" for misspelt keys.  Relative file paths (keys, certificates) are relative to the targets file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from ktbench.core.errors import ConfigurationError, TargetConfigError
from ktbench.core.generation import GenerationRegistry, TargetKind, normalised_url
from ktbench.core.tomlfile import read_toml
from ktbench.targets.model import CREDENTIAL_TYPES, Target, TlsSettings

TARGETS_ENV_VAR = "KTBENCH_TARGETS"
_COMMON_KEYS = ("kind", "url", "description", "embedded", "request_timeout_seconds", "tls", "roles")
# keys naming files (TLS, credentials, a generation's own settings): relative paths are relative to the file
_PATH_SUFFIXES = ("_file", "_cert", "_key")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


def check_url(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TargetConfigError(f"{where}: must be an http(s) URL, got {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetConfigError(f"{where}: {value!r} is not an http(s) URL (example: http://127.0.0.1:8080)")
    if parts.query or parts.fragment:
        raise TargetConfigError(f"{where}: {value!r} must not have a query or fragment")
    try:
        parts.port
    except ValueError:
        raise TargetConfigError(f"{where}: {value!r} has an invalid port") from None
    return value.rstrip("/")


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
        raise TargetConfigError(f"{where}: environment variable {name} is not set "
                                f"(set it, or write ${{{name}:-fallback}} to give a default)")

    return _ENV_RE.sub(expand, value)


def _suggest(key: str, allowed: list[str]) -> str:
    hint = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(allowed)})"


def _pydantic_lines(exc: ValidationError, where: str) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith(("function-", "tagged-union")))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}{'.' + loc if loc else ''}: {message}")
    return lines


class _Reader:
    """Reads one targets file, collecting every error so the user can fix them in one go."""

    def __init__(self, path: Path, registry: GenerationRegistry, env: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.registry = registry
        self.env = env
        self.errors: list[str] = []

    def expand(self, value: Any, where: str) -> Any:
        """Environment substitution in every string; relative paths resolved against the file."""
        if isinstance(value, str):
            try:
                return substitute_env(value, where, self.env)
            except TargetConfigError as exc:
                self.errors.append(str(exc))
                return value
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                item = self.expand(item, f"{where}.{key}")
                if key.endswith(_PATH_SUFFIXES) and isinstance(item, str) and item and not Path(item).is_absolute():
                    item = str((self.base / item).resolve())
                out[key] = item
            return out
        if isinstance(value, list):
            return [self.expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def target(self, name: str, table: Any) -> Target | None:
        where = f"[targets.{name}]"
        if not _NAME_RE.match(name):
            self.errors.append(f"{where}: target names use letters, digits, '.', ':', '_' and '-'")
        if not isinstance(table, dict):
            self.errors.append(f"{where}: must be a table")
            return None
        table = self.expand(table, where)
        kind_name = table.get("kind")
        if not isinstance(kind_name, str):
            known = ", ".join(sorted(self.registry.kinds())) or "none"
            self.errors.append(f"{where}: missing key 'kind' (one of: {known})")
            return None
        try:
            generation, kind = self.registry.kind(kind_name)
        except ConfigurationError as exc:
            self.errors.append(f"{where}.kind: {exc}")
            return None
        setting_keys = list(kind.settings.model_fields)
        allowed = sorted(set(_COMMON_KEYS) | set(setting_keys))
        for key in table:
            if key not in allowed:
                self.errors.append(f"{where}: unknown key {key!r}{_suggest(key, allowed)}")
        url = table.get("url")
        try:
            url = check_url(url, f"{where}.url") if url is not None else None
            url = normalised_url(generation, kind.name, url) if url is not None else None
        except TargetConfigError as exc:
            self.errors.append(str(exc))
            url = None
        if "url" not in table:
            self.errors.append(f"{where}: missing required key 'url'")
        settings = self._settings(kind, {k: v for k, v in table.items() if k in setting_keys}, where)
        tls = self._tls(table.get("tls"), name)
        roles = self._roles(generation, kind, table.get("roles"), name)
        common = {k: table[k] for k in ("description", "embedded", "request_timeout_seconds") if k in table}
        if url is None or settings is None or tls is None or roles is None:
            return None
        try:
            return Target(name=name, kind=kind.name, url=url, tls=tls, roles=roles, settings=settings, **common)
        except ValidationError as exc:
            self.errors += _pydantic_lines(exc, where)
            return None

    def _settings(self, kind: TargetKind, values: dict[str, Any], where: str) -> Any:
        try:
            return kind.settings.model_validate(values)
        except ValidationError as exc:
            self.errors += _pydantic_lines(exc, where)
            return None

    def _tls(self, table: Any, name: str) -> TlsSettings | None:
        where = f"[targets.{name}.tls]"
        if table is None:
            return TlsSettings()
        if not isinstance(table, dict):
            self.errors.append(f"{where}: must be a table")
            return None
        try:
            return TlsSettings.model_validate(table)
        except ValidationError as exc:
            self.errors += _pydantic_lines(exc, where)
            return None

    def _roles(self, generation: Any, kind: TargetKind, table: Any, name: str) -> dict[str, Any] | None:
        where = f"[targets.{name}.roles]"
        if table is None:
            return generation.default_roles(kind.name)
        if not isinstance(table, dict):
            self.errors.append(f"{where}: must be a table of roles")
            return None
        roles: dict[str, Any] = {}
        known = sorted(kind.roles)
        for role, role_table in table.items():
            role_where = f"[targets.{name}.roles.{role}]"
            spec = kind.roles.get(role)
            if spec is None:
                self.errors.append(f"{where}: unknown role {role!r} for a {kind.name} target"
                                   f"{_suggest(role, known)}")
                continue
            if not isinstance(role_table, dict):
                self.errors.append(f"{role_where}: must be a table")
                continue
            values = dict(role_table)
            ctype = values.setdefault("type", spec.credential_types[0])
            if ctype not in CREDENTIAL_TYPES:
                self.errors.append(f"{role_where}.type: unknown credential type {ctype!r} "
                                   f"(known: {', '.join(CREDENTIAL_TYPES)})")
                continue
            if ctype not in spec.credential_types:
                self.errors.append(f"{role_where}.type: role {role!r} takes {' or '.join(spec.credential_types)} "
                                   f"credentials, not {ctype!r}")
                continue
            try:
                credential = CREDENTIAL_TYPES[ctype].model_validate(values)
            except ValidationError as exc:
                self.errors += _pydantic_lines(exc, role_where)
                continue
            roles[role] = credential.model_copy(update={"role": role})
        return roles


def parse_targets(data: Mapping[str, Any], registry: GenerationRegistry, path: Path,
                  env: Mapping[str, str] | None = None) -> TargetsFile:
    reader = _Reader(path, registry, os.environ if env is None else env)
    for key in data:
        if key not in ("targets", "default"):
            reader.errors.append(f"{path}: unknown key {key!r}{_suggest(key, ['default', 'targets'])}")
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
    if default is not None and (not isinstance(default, str) or not isinstance(tables, dict)
                                or default not in tables):
        reader.errors.append(f"{path}: default = {default!r} does not name a target in this file")
    if reader.errors:
        bullet = "\n  - "
        raise TargetConfigError(f"invalid targets file {path}:{bullet}{bullet.join(reader.errors)}")
    return TargetsFile(path=path, targets=targets, default=default)


def load_targets_file(path: str | os.PathLike[str], registry: GenerationRegistry,
                      env: Mapping[str, str] | None = None) -> TargetsFile:
    """Parse and validate a targets file; raises TargetConfigError listing every problem found."""
    path = Path(path)
    return parse_targets(read_toml(path, "targets file", TargetConfigError), registry, path, env)


def looks_like_url(spec: str) -> bool:
    return "://" in spec


def resolve_target(spec: str | None, targets_file: str | os.PathLike[str] | None, registry: GenerationRegistry,
                   *, kind: str, env: Mapping[str, str] | None = None) -> Target | None:
    """Turn `--target URL|NAME` (+ `--targets FILE`) into a Target of `kind` (the suite's).

    Returns None when neither a target nor a default is given: the caller then starts the embedded
    reference simulators.  A bare URL gets the generation's defaults for `kind`.
    """
    env = os.environ if env is None else env
    if targets_file is None and env.get(TARGETS_ENV_VAR):
        targets_file = env[TARGETS_ENV_VAR]
    if spec is not None and looks_like_url(spec):
        generation, _ = registry.kind(kind)
        return generation.target_for_url(normalised_url(generation, kind, check_url(spec, "--target")), kind)
    if targets_file is None:
        if spec is None:
            return None
        raise TargetConfigError(f"--target {spec!r} is neither a URL nor a target name from a targets file "
                                f"(pass --targets FILE or set {TARGETS_ENV_VAR})")
    loaded = load_targets_file(targets_file, registry, env)
    name = spec if spec is not None else loaded.default
    if name is None:
        return None
    return loaded.get(name)

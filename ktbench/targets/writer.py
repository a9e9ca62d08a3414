"""The one TOML writer (tomli-w): targets files for a run's subprocess, and data files the bench writes.

`ktbench run` describes an embedded target completely in a targets file (0600, in the run's temporary
folder) and hands the pytest subprocess `--kt-targets FILE --kt-target NAME`: the subprocess sees exactly
what a user's targets file would give it, through the same reader, and nothing travels on the side.
Secrets are written revealed (the subprocess needs them), which is why the file is private to the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w

from ktbench.targets.model import Target


def _plain(value: Any) -> Any:
    """Paths to strings and None dropped, recursively: what TOML can hold."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if v is not None]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def target_table(target: Target) -> dict[str, Any]:
    """A target as its targets-file table (settings flat, secrets revealed)."""
    table: dict[str, Any] = {"kind": target.kind, "url": target.url}
    if target.description:
        table["description"] = target.description
    if target.embedded:
        table["embedded"] = True
    table["request_timeout_seconds"] = target.request_timeout_seconds
    if target.settings is not None:
        table.update(target.settings.model_dump(mode="python", exclude_none=True))
    tls = target.tls.model_dump(mode="python", exclude_none=True)
    if tls != {"verify": True}:
        table["tls"] = tls
    table["roles"] = {name: cred.model_dump(mode="python", exclude_none=True) for name, cred in target.roles.items()}
    return _plain(table)


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    text = tomli_w.dumps(_plain(data))
    return (f"# {header}\n" if header else "") + text


def write_private(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to a file only its owner can read (it may hold credentials)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def write_targets_file(path: str | os.PathLike[str], targets: Iterable[Target], default: str | None = None,
                       header: str = "written by ktbench for one run") -> Path:
    data: dict[str, Any] = {}
    if default is not None:
        data["default"] = default
    data["targets"] = {t.name: target_table(t) for t in targets}
    return write_private(path, dumps(data, header))

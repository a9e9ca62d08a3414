"""`ktbench validate FILE...`: check captured KT1/KT2 messages against the Koppeltaal profiles.

Detects KT1 (DSTU1 JSON or Atom/XML) vs KT2 (R4 JSON) and JSON vs XML per file
unless `--kt` says otherwise.  Heavy imports happen inside the command so the
CLI starts fast.

`-` reads one message from standard input (its format is detected from the bytes).  Inputs are read up
to `--max-bytes` (default 10 MB; a larger one is refused as unreadable, not truncated).

Exit codes (stable, for CI):
  0  every file is valid (warnings and information allowed)
  1  at least one file has an error finding
  2  a file could not be validated: missing/unreadable file, binary, truncated or
     malformed body, too large, bad --suppressions, --package or --max-bytes (a clear message, no traceback)
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2
MAX_FILE_BYTES = 10 * 1024 * 1024
STDIN = Path("-")


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def _content_type_for(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return "application/xml"
    if suffix == ".json":
        return "application/json"
    return None


def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Message or resource files (JSON or XML).", show_default=False)],
    kt: Annotated[Optional[int], typer.Option("--kt", help="Force Koppeltaal generation 1 or 2 (default: detect).")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="Output as plain text or JSON.")] = OutputFormat.text,
    suppressions: Annotated[Optional[Path], typer.Option("--suppressions", help="Versioned TOML file of accepted findings.")] = None,
    package: Annotated[Optional[Path], typer.Option("--package", help="FHIR package folder or .tgz with StructureDefinitions (KT2).")] = None,
    max_bytes: Annotated[int, typer.Option("--max-bytes", help="Largest input read, in bytes (larger: unreadable, exit 2).")] = MAX_FILE_BYTES,
) -> None:
    """Validate Koppeltaal messages/resources against the KT1.3 or KT2 profiles ('-' reads standard input)."""
    import json

    if kt not in (None, 1, 2):
        typer.echo(f"ktbench validate: --kt must be 1 or 2, not {kt}", err=True)
        raise typer.Exit(EXIT_UNREADABLE)
    if not 0 < max_bytes <= 1024 * 1024 * 1024:
        typer.echo(f"ktbench validate: --max-bytes must be between 1 and 1 GiB, not {max_bytes}", err=True)
        raise typer.Exit(EXIT_UNREADABLE)
    if sum(1 for path in files if path == STDIN) > 1:
        typer.echo("ktbench validate: standard input ('-') can be read only once", err=True)
        raise typer.Exit(EXIT_UNREADABLE)
    try:
        from ktbench.validation import validate_bytes
        from ktbench.validation.sdpackage import PackageError, load_package
        from ktbench.validation.suppressions import SuppressionError, load_suppressions

        sset = load_suppressions(suppressions) if suppressions is not None else None
        pkg = None
        if package is not None:
            if not package.exists():
                raise PackageError(f"package {package} does not exist")
            pkg = load_package(package)
    except (SuppressionError, PackageError) as exc:
        typer.echo(f"ktbench validate: {exc}", err=True)
        raise typer.Exit(EXIT_UNREADABLE) from None

    worst = EXIT_VALID
    reports = []
    for path in files:
        data, problem = _read(path, max_bytes)
        if problem is not None:
            worst = EXIT_UNREADABLE
            if output_format is OutputFormat.json:
                reports.append({"file": str(path), "ok": False, "error": problem})
            else:
                typer.echo(f"== {path}\nerror [input.unreadable] {problem}\nUNREADABLE")
            continue
        content_type = None if path == STDIN else _content_type_for(path)
        result = validate_bytes(data, content_type=content_type, kt=kt, suppressions=sset, package=pkg)
        unreadable = any(f.rule in ("input.unreadable", "input.unsupported") and f.suppressed_reason is None for f in result.findings)
        if unreadable:
            worst = EXIT_UNREADABLE
        elif not result.ok and worst == EXIT_VALID:
            worst = EXIT_INVALID
        if output_format is OutputFormat.json:
            reports.append({
                "file": str(path),
                "kt": result.kt,
                "format": result.format,
                "ok": result.ok,
                "profiles": result.profiles,
                "operationOutcome": result.to_operation_outcome(),
            })
        else:
            typer.echo(f"== {path}")
            typer.echo(result.to_text())
    if output_format is OutputFormat.json:
        typer.echo(json.dumps({"results": reports}, indent=2, ensure_ascii=False))
    raise typer.Exit(worst)


def _read(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[bytes | None, str | None]:
    if path == STDIN:
        import sys

        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            return None, f"standard input: more than {limit:,} bytes (--max-bytes)"
        return data, None
    try:
        if not path.exists():
            return None, f"{path}: no such file"
        if path.is_dir():
            return None, f"{path}: is a directory, not a file"
        size = path.stat().st_size
        if size > limit:
            return None, f"{path}: file too large ({size:,} bytes, limit {limit:,}; --max-bytes)"
        return path.read_bytes(), None
    except OSError as exc:
        return None, f"{path}: cannot read ({exc.strerror or exc})"

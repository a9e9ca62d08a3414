"""`ktbench validate` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def validate_command() -> None:
    """Not implemented yet."""
    typer.echo("ktbench validate: not implemented yet", err=True)
    raise typer.Exit(2)

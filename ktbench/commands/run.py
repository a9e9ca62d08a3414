"""`ktbench run` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def run_command() -> None:
    """Not implemented yet."""
    typer.echo("ktbench run: not implemented yet", err=True)
    raise typer.Exit(2)

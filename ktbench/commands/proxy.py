"""`ktbench proxy` (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def proxy_command() -> None:
    """Not implemented yet."""
    typer.echo("ktbench proxy: not implemented yet", err=True)
    raise typer.Exit(2)

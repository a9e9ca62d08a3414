"""The `ktbench` command line.

Each sub-command lives in its own module under `ktbench.commands` so the
modules stay small and can be owned separately.  Command modules keep their
top-level imports light (heavy imports happen inside the command function) so
that `ktbench validate` starts fast.
"""

from __future__ import annotations

import typer

from ktbench.commands import proxy, run, serve, validate

app = typer.Typer(
    name="ktbench",
    help="Conformance test bench and simulators for Koppeltaal (KT1.3 and KT2).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(serve.app, name="serve")
app.command(name="run")(run.run_command)
app.command(name="validate")(validate.validate_command)
app.command(name="proxy")(proxy.proxy_command)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

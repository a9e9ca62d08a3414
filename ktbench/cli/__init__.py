"""The `ktbench` command line: the composition root, the only place that imports generations.

It registers the built-in generations (ktbench.generations), those installed packages announce under the
entry-point group `ktbench.generations`, and any given with `ktbench --generation module:attr ...`; the
commands get the registry and pass import paths on to pytest subprocesses.  Each sub-command lives in its
own module and keeps its top-level imports light, so `ktbench validate` starts fast.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ktbench.cli import coverage, proxy, run, serve, validate

app = typer.Typer(
    name="ktbench",
    help="Conformance test bench and simulators for Koppeltaal (KT1.3 and KT2).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context,
          generation: Annotated[Optional[list[str]], typer.Option(
              "--generation", metavar="MODULE:ATTR",
              help="Also load this generation (repeatable), e.g. a vendor's own.")] = None) -> None:
    ctx.obj = {"generations": list(generation or ())}


app.add_typer(serve.app, name="serve")
app.command(name="run")(run.run_command)
app.command(name="coverage")(coverage.coverage_command)
app.command(name="validate")(validate.validate_command)
app.command(name="proxy")(proxy.proxy_command)


def main() -> None:
    app()

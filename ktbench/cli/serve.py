"""`ktbench serve kt1`: run a reference simulator standalone on 127.0.0.1.

The composition root may import simulators (the rest of the engine never
does); imports happen inside the command so other sub-commands start fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Run a reference simulator standalone.", no_args_is_help=True)


@app.command("kt1")
def serve_kt1(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port).")] = 8080,
    data: Annotated[Optional[Path], typer.Option(help="Data file (TOML): domains, applications, "
                                                      "ActivityDefinitions. Default: the shipped one.")] = None,
    db: Annotated[str, typer.Option(help="SQLite file, or :memory:.")] = "ktbench-kt1.sqlite3",
    public_base: Annotated[Optional[str], typer.Option(help="Root URL used in minted links, "
                                                             "e.g. https://kt.example.org")] = None,
    fault: Annotated[Optional[list[str]], typer.Option(help="Switch on a catalogued defect (repeatable).")] = None,
    list_faults: Annotated[bool, typer.Option("--list-faults", help="List the fault catalogue and exit.")] = False,
    claim_timeout: Annotated[Optional[float], typer.Option(help="Seconds before an un-acked claim "
                                                                "returns to New.")] = None,
) -> None:
    """The KT1.3 reference server (FHIR DSTU1 messaging, mailbox, claim cycle, SSO)."""
    from simulators.kt1.faults import FAULTS, UnknownFault

    if list_faults:
        typer.echo(FAULTS.listing())
        raise typer.Exit(0)

    import uvicorn

    from simulators.kt1.app import create_app
    from simulators.kt1.data import DataFileError

    try:
        application = create_app(data, db=db, faults=fault or (), public_base=public_base,
                                 claim_timeout=claim_timeout)
    except (DataFileError, UnknownFault) as exc:
        typer.echo(f"ktbench serve kt1: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # e.g. an unopenable database file
        typer.echo(f"ktbench serve kt1: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = public_base or f"http://{host}:{port}"
    typer.echo(f"KT1 reference server on {shown}/FHIR/Koppeltaal (db: {db}; faults: {', '.join(fault or []) or 'none'})")
    # httptools: the C parser (a dependency); no access log: with log level warning its lines were never
    # shown, but uvicorn still formatted each one.  loop "auto" takes uvloop when it is installed.
    uvicorn.run(application, host=host, port=port, log_level="warning", lifespan="off", http="httptools",
                access_log=False)


@app.command("kt2")
def serve_kt2(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 = any free port; the banner says which).")] = 8082,
    data: Annotated[Optional[Path], typer.Option(help="Data file (TOML): domains, roles, admins, applications, "
                                                      "identity providers. Default: the shipped one.")] = None,
    db: Annotated[str, typer.Option(help="SQLite file, or :memory:.")] = "ktbench-kt2.sqlite3",
    public_base: Annotated[Optional[str], typer.Option(help="Root URL used in every minted URL, "
                                                             "e.g. https://kt2.example.org")] = None,
    fault: Annotated[Optional[list[str]], typer.Option(help="Switch on a catalogued defect (repeatable).")] = None,
    list_faults: Annotated[bool, typer.Option("--list-faults", help="List the fault catalogue and exit.")] = False,
) -> None:
    """The KT2 reference voorziening (FHIR R4 store, SMART authorisation server, domain admin)."""
    from simulators.kt2.serve import serve

    raise typer.Exit(serve(host=host, port=port, data=data, db=db, public_base=public_base,
                           faults=tuple(fault or ()), list_faults=list_faults))

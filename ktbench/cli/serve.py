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

    from simulators.common.standalone import (
        ListenError,
        listen,
        serve_forever,
        shown_host,
    )
    from simulators.kt1.app import create_app
    from simulators.kt1.data import DataFileError

    if claim_timeout is not None and not claim_timeout > 0:
        _fail_kt1(f"--claim-timeout must be a positive number of seconds, not {claim_timeout:g}")
    if public_base is not None:
        public_base = _public_base(public_base, "kt1")
    try:
        application = create_app(data, db=db, faults=fault or (), public_base=public_base,
                                 claim_timeout=claim_timeout)
    except (DataFileError, UnknownFault) as exc:
        _fail_kt1(str(exc))
    except Exception as exc:  # e.g. an unopenable database file
        _fail_kt1(f"cannot start: {exc}")
    try:
        sock = listen(host, port)
    except ListenError as exc:
        application.state.ctx.store.close()
        _fail_kt1(str(exc))
    bound = sock.getsockname()[1]
    root = public_base or f"http://{shown_host(host)}:{bound}"
    banner = (f"KT1 reference server on http://{shown_host(host)}:{bound}: FHIR base {root}/FHIR/Koppeltaal "
              f"(db: {db}; faults: {', '.join(fault or []) or 'none'})")
    raise typer.Exit(serve_forever(application, sock, banner, application.state.ctx.store.close))


def _fail_kt1(message: str) -> None:
    typer.echo(f"ktbench serve kt1: {message}", err=True)
    raise typer.Exit(2)


def _public_base(value: str, generation: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        typer.echo(f"ktbench serve {generation}: --public-base must be an http(s) root URL like "
                   f"https://kt.example.org, not {value!r}", err=True)
        raise typer.Exit(2)
    return value.rstrip("/")


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


def _serve_application(role: str, port: int, tls_dir: Path, key: Optional[Path], algorithm: str, http: bool) -> None:
    from simulators.kt2.actors.standalone import serve_actor

    raise typer.Exit(serve_actor(role, port=port, tls_dir=tls_dir, key=key, algorithm=algorithm, http=http))


# The options both simulated applications take, declared once.
_Port = Annotated[int, typer.Option(help="Port to listen on (0 = any free port; the banner says which).")]
_TlsDir = Annotated[Path, typer.Option(
    help="Directory for the generated test CA and certificate (ca.pem: the voorziening must trust it).")]
_Key = Annotated[Optional[Path], typer.Option(
    help="Private key (PEM or JWK JSON) to publish and sign with. Default: a new one.")]
_Algorithm = Annotated[str, typer.Option(help="Signing algorithm (RS256..RS512, ES256..ES512, PS256..PS512).")]
_Http = Annotated[bool, typer.Option("--http", help="Plain http instead of https (loopback tests).")]
_TLS_DIR = Path("ktbench-actors-tls")


@app.command("portal")
def serve_portal(port: _Port = 0, tls_dir: _TlsDir = _TLS_DIR, key: _Key = None, algorithm: _Algorithm = "RS512",
                 http: _Http = False) -> None:
    """A simulated KT2 portal on 127.0.0.1: its JWKS (and a notification endpoint) over https."""
    _serve_application("portal", port, tls_dir, key, algorithm, http)


@app.command("module")
def serve_module(port: _Port = 0, tls_dir: _TlsDir = _TLS_DIR, key: _Key = None, algorithm: _Algorithm = "RS512",
                 http: _Http = False) -> None:
    """A simulated KT2 eHealth module on 127.0.0.1: JWKS, launch URL, redirect URI and notifications over https."""
    _serve_application("module", port, tls_dir, key, algorithm, http)

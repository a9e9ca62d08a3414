"""`ktbench proxy`: a validating proxy in front of (or beside) a Koppeltaal server.

Heavy imports (mitmproxy, the validation engine) happen inside the command so
that other sub-commands start fast.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class Mode(str, Enum):
    reverse = "reverse"
    regular = "regular"


def proxy_command(
    upstream: Annotated[Optional[str], typer.Option(help="Server to forward to (reverse mode), "
                                                         "e.g. http://127.0.0.1:8080/FHIR/Koppeltaal")] = None,
    listen: Annotated[int, typer.Option(help="Port on 127.0.0.1 to listen on (0 = any free port; "
                                             "see <out>/proxy.json).")] = 8080,
    mode: Annotated[Mode, typer.Option(help="reverse: clients talk to the proxy as if it were the server; "
                                            "regular: clients use it as their HTTP proxy.")] = Mode.reverse,
    out: Annotated[Path, typer.Option(help="Directory for findings.jsonl, summary.json and proxy.json.")]
        = Path("reports/out/proxy"),
    har: Annotated[Optional[Path], typer.Option(help="Also write a (redacted) HAR file at shutdown.")] = None,
    flows: Annotated[Optional[Path], typer.Option(help="Also write a (redacted) mitmproxy flow file.")] = None,
    kt: Annotated[Optional[int], typer.Option(help="Validate as KT1 (1) or KT2 (2); default: detect per body.")]
        = None,
    suppressions: Annotated[Optional[Path], typer.Option(help="Suppression file (TOML) for known findings.")]
        = None,
    workers: Annotated[int, typer.Option(help="Validation worker processes.")] = 1,
    keep_host_header: Annotated[bool, typer.Option(help="Reverse mode: pass the client's Host header on, so the "
                                                        "server mints links that point at the proxy.")] = False,
    filter_expr: Annotated[Optional[str], typer.Option("--filter", help="Only validate flows matching this "
                                                                        "mitmproxy filter expression.")] = None,
    fhir_only_recording: Annotated[bool, typer.Option("--record-fhir-only", help="Record only FHIR flows in "
                                                                               "the HAR/flow file.")] = False,
    quiet: Annotated[bool, typer.Option(help="No start-up line and no summary on stderr.")] = False,
    validator: Annotated[Optional[str], typer.Option(hidden=True, help="Validator as 'module:function' "
                                                                      "(testing hook).")] = None,
) -> None:
    """Validate live FHIR traffic (KT1.3 and KT2) against the Koppeltaal profiles while proxying it unchanged."""
    from ktbench.proxy.runner import ProxyConfig, ProxyConfigError, run_proxy

    cfg = ProxyConfig(
        upstream=upstream, listen_port=listen, mode=mode.value, out_dir=out, har=har, flows=flows, kt=kt,
        workers=workers, suppressions=suppressions, keep_host_header=keep_host_header, filter_expr=filter_expr,
        record_all=not fhir_only_recording, quiet=quiet,
    )
    if validator:
        cfg.validator = validator
    try:
        code = run_proxy(cfg)
    except ProxyConfigError as exc:
        typer.echo(f"ktbench proxy: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)

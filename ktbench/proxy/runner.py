"""Compose the addons and run mitmproxy: the engine behind `ktbench proxy`.

Separate from the CLI module so the benchmark and the tests can start exactly
the proxy a tester runs.  The proxy binds 127.0.0.1 only; in reverse mode it
forwards to one upstream (a Koppeltaal server), in regular mode it is an
ordinary forward proxy.  SIGINT and SIGTERM shut it down cleanly, which is
when the findings file is closed and the summary is written.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ktbench.proxy.worker import DEFAULT_VALIDATOR

LISTEN_HOST = "127.0.0.1"


class ProxyConfigError(ValueError):
    """The proxy cannot start with this configuration (message is meant for the user)."""


@dataclass
class ProxyConfig:
    upstream: str | None = None
    listen_port: int = 8080
    mode: str = "reverse"
    out_dir: Path = Path("reports/out/proxy")
    har: Path | None = None
    flows: Path | None = None
    kt: int | None = None
    workers: int = 1
    executor: str = "process"
    suppressions: Path | None = None
    keep_host_header: bool = False
    filter_expr: str | None = None
    validator: str = DEFAULT_VALIDATOR
    record_all: bool = True
    quiet: bool = False


@dataclass(frozen=True)
class Upstream:
    origin: str  # scheme://host:port, what mitmproxy forwards to
    base_path: str  # e.g. /FHIR/Koppeltaal: shown to the user, paths are forwarded unchanged


def parse_upstream(url: str) -> Upstream:
    """Check an upstream URL and split it into origin and base path; ProxyConfigError if unusable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ProxyConfigError(f"bad upstream URL {url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise ProxyConfigError(f"bad upstream URL {url!r}: no host name")
    if "@" in parts.netloc:
        raise ProxyConfigError(f"bad upstream URL {url!r}: credentials in the URL are not supported")
    try:
        port = parts.port
    except ValueError:
        raise ProxyConfigError(f"bad upstream URL {url!r}: invalid port") from None
    if parts.query or parts.fragment:
        raise ProxyConfigError(f"bad upstream URL {url!r}: no query string or fragment allowed")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    from mitmproxy.net import server_spec

    try:
        server_spec.parse(origin, default_scheme="https")
    except ValueError as exc:
        raise ProxyConfigError(f"bad upstream URL {url!r}: {exc}") from None
    return Upstream(origin, parts.path.rstrip("/"))


def check_port_free(port: int) -> None:
    """Fail early, with a clear message, if the listen port is taken."""
    if port == 0:
        return
    if not 0 < port < 65536:
        raise ProxyConfigError(f"invalid listen port {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server will
        try:
            probe.bind((LISTEN_HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ProxyConfigError(f"port {port} on {LISTEN_HOST} is already in use") from None
            raise ProxyConfigError(f"cannot listen on {LISTEN_HOST}:{port}: {exc.strerror}") from None


def check_output_paths(cfg: ProxyConfig) -> None:
    """Every output is usable before mitmproxy starts: an addon that cannot write would leave a proxy that
    never reports (and, started, one that ignored Ctrl-C)."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ProxyConfigError(f"--out {out} is a file; give a directory for findings.jsonl, summary.json and "
                               "proxy.json")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProxyConfigError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise ProxyConfigError(f"--out {out}: the directory is not writable")
    for option, path in (("--har", cfg.har), ("--flows", cfg.flows)):
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise ProxyConfigError(f"{option} {path} is a directory; give a file name")
        if path.parent.exists() and not path.parent.is_dir():
            raise ProxyConfigError(f"{option} {path}: {path.parent} is not a directory")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProxyConfigError(f"{option} {path}: cannot create {path.parent} ({exc.strerror or exc})") from None


def check_config(cfg: ProxyConfig) -> Upstream | None:
    if cfg.mode not in ("reverse", "regular"):
        raise ProxyConfigError(f"unknown mode {cfg.mode!r} (use reverse or regular)")
    if cfg.kt not in (None, 1, 2):
        raise ProxyConfigError("--kt must be 1 or 2")
    if cfg.workers < 1:
        raise ProxyConfigError("--workers must be at least 1")
    if cfg.workers > 64:
        raise ProxyConfigError("--workers must be at most 64")
    check_output_paths(cfg)
    upstream = None
    if cfg.mode == "reverse":
        if not cfg.upstream:
            raise ProxyConfigError("reverse mode needs --upstream URL")
        upstream = parse_upstream(cfg.upstream)
    elif cfg.upstream:
        raise ProxyConfigError("--upstream is for reverse mode; in regular mode clients choose the server")
    if cfg.suppressions is not None:
        try:
            from ktbench.validation.suppressions import SuppressionError, load_suppressions
        except ImportError as exc:
            raise ProxyConfigError(f"the validation engine is not available: {exc}") from None
        try:
            load_suppressions(cfg.suppressions)
        except (OSError, SuppressionError) as exc:
            raise ProxyConfigError(f"cannot use suppression file {cfg.suppressions}: {exc}") from None
    try:
        from ktbench.proxy.worker import resolve_validator

        resolve_validator(cfg.validator)
    except Exception as exc:
        raise ProxyConfigError(f"the validator {cfg.validator} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if cfg.filter_expr:
        from mitmproxy import flowfilter

        try:
            flowfilter.parse(cfg.filter_expr)
        except ValueError as exc:
            raise ProxyConfigError(f"bad --filter expression: {exc}") from None
    check_port_free(cfg.listen_port)
    return upstream


class ReadyAnnouncer:
    """Tells the user (and scripts) where the proxy listens: a line on stderr and <out>/proxy.json."""

    def __init__(self, out_dir: Path, upstream: Upstream | None, quiet: bool = False) -> None:
        self.out_dir = out_dir
        self.upstream = upstream
        self.quiet = quiet
        self.listen_url: str | None = None

    def running(self) -> None:
        from mitmproxy import ctx

        server = ctx.master.addons.get("proxyserver")
        addrs = server.listen_addrs() if server is not None else []
        port = next((a[1] for a in addrs if a[0] in (LISTEN_HOST, "127.0.0.1")), addrs[0][1] if addrs else None)
        self.listen_url = f"http://{LISTEN_HOST}:{port}"
        info = {"listen": self.listen_url, "pid": os.getpid(),
                "upstream": self.upstream.origin if self.upstream else None,
                "base": self.listen_url + (self.upstream.base_path if self.upstream else "")}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / "proxy.json.tmp"
        tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
        tmp.replace(self.out_dir / "proxy.json")
        if not self.quiet:
            target = f" -> {self.upstream.origin}" if self.upstream else " (regular proxy)"
            print(f"ktbench proxy listening on {info['base']}{target}; findings: "
                  f"{self.out_dir / 'findings.jsonl'} (Ctrl-C to stop)", file=sys.stderr, flush=True)


def build_addons(cfg: ProxyConfig, upstream: Upstream | None = None) -> list:
    """The ktbench addons in chain order (the order matters: classify, validate, report, summarise)."""
    from ktbench.proxy.fhir_filter import FhirTrafficFilter
    from ktbench.proxy.findings_writer import FindingsWriter
    from ktbench.proxy.recorder import FlowRecorder
    from ktbench.proxy.summary import Summary
    from ktbench.proxy.validating import ValidatingAddon

    out = Path(cfg.out_dir)
    return [
        FhirTrafficFilter(cfg.filter_expr),
        ValidatingAddon(kt=cfg.kt, validator=cfg.validator,
                        suppressions=str(cfg.suppressions) if cfg.suppressions else None,
                        executor=cfg.executor, workers=cfg.workers),
        FindingsWriter(out / "findings.jsonl"),
        FlowRecorder(cfg.flows, cfg.har, only_fhir=not cfg.record_all),
        Summary(out / "summary.json", echo=None if cfg.quiet else _echo_stderr),
        ReadyAnnouncer(out, upstream, cfg.quiet),
    ]


def _echo_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mitmproxy_options(cfg: ProxyConfig, upstream: Upstream | None):
    from mitmproxy import options

    return options.Options(
        listen_host=LISTEN_HOST,
        listen_port=cfg.listen_port,
        mode=[f"reverse:{upstream.origin}" if upstream else "regular"],
    )


async def _serve(cfg: ProxyConfig, upstream: Upstream | None) -> int:
    from mitmproxy.tools.dump import DumpMaster

    master = DumpMaster(mitmproxy_options(cfg, upstream), with_termlog=True, with_dumper=False)
    # options owned by mitmproxy's addons exist only once those addons are loaded
    master.options.update(keep_host_header=cfg.keep_host_header, termlog_verbosity="warn")
    master.addons.add(*build_addons(cfg, upstream))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, master.shutdown)
    # Everything imported so far lives as long as the proxy: keep the garbage collector from
    # re-scanning it on every full collection while traffic flows.
    gc.collect()
    gc.freeze()
    await master.run()
    # asyncio.run() now cancels the tasks of still-open client connections; Python 3.12.1's stream
    # callback reports each cancellation as an "exception", which is noise on a clean shutdown.
    loop.set_exception_handler(_ignore_cancellations)
    return 0


def _ignore_cancellations(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def run_proxy(cfg: ProxyConfig) -> int:
    """Check the configuration, run until SIGINT/SIGTERM, return the exit code."""
    upstream = check_config(cfg)
    try:
        return asyncio.run(_serve(cfg, upstream))
    except SystemExit as exc:  # mitmproxy's errorcheck: an error was logged while starting
        code = exc.code if isinstance(exc.code, int) else 1
        if code:
            raise ProxyConfigError("the proxy could not start (see the errors above)") from None
        return 0

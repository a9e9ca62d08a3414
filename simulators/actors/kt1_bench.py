"""The embedded KT1 target as the suite wants it: short timers, and a webhook receiver wired in.

Some KT1.3 rules can only be observed if the server's timers are short (claim
expiry, authorization-code and access-token lifetimes) or if the server can
reach the bench (webhook notifications).  A real target declares what it can
offer; for the embedded reference server the bench arranges it itself:

1. start a `WebhookReceiver` on 127.0.0.1 (port 0);
2. write a data file for the run: the default data (or `data_path`) with the
   observer's `webhook_url`/`webhook_secret` pointing at the receiver, short
   code/token lifetimes and fewer claim retries;
3. start the server on that data with a short claim timeout;
4. describe the extras in `TargetExtras` - handed to the suite through the
   environment variable `KTBENCH_KT1_TARGET_EXTRAS` (JSON, keyed to the
   target URL) until targets.py grows first-class options for them.

`running_kt1_bench_server` has the same call signature as
`simulators.kt1.embedded.running_kt1_server`, so `ktbench run` can use it as
the suite's embedded-target factory.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulators.actors.webhook_receiver import WebhookReceiver

EXTRAS_ENV = "KTBENCH_KT1_TARGET_EXTRAS"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "ktbench" / "data" / "kt1_default.toml"
# The application whose webhook the bench receives, and the suite role it plays.  The observer is
# subscribed to CreateOrUpdatePatient only, so few deliveries happen: every delivery costs the reference
# server a new HTTP client (~50 ms of its event loop), which on the busy module would slow the whole suite.
WEBHOOK_APP = "ktbench-observer"
WEBHOOK_ROLE = "observer"
BENCH_CLAIM_TIMEOUT = 1.0
BENCH_CODE_SECONDS = 1
BENCH_TOKEN_SECONDS = 2
# KT1.3 documents 5 claim attempts; the bench's own server gives up after 2 (and says so in its extras) so the
# MaximumRetriesExceeded scenario waits 2 claim timeouts, not 5.  Targets that declare nothing are held to 5.
BENCH_MAX_CLAIM_EXPIRIES = 2


@dataclass(frozen=True)
class TargetExtras:
    """What a target offers beyond its URL and credentials, for rules that need timers or callbacks."""

    url: str                                   # the target these extras describe
    webhook_receiver_url: str | None = None    # where the suite asks what was notified
    webhook_role: str | None = None            # the suite role whose application has the webhook
    authorization_code_seconds: float | None = None
    access_token_seconds: float | None = None
    max_claim_expiries: int | None = None

    def to_env(self) -> dict[str, str]:
        return {EXTRAS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str] | None = None) -> TargetExtras | None:
        raw = (environ if environ is not None else os.environ).get(EXTRAS_ENV)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class BenchServer:
    """A running embedded target plus what the suite needs to know about it."""

    url: str
    server: Any
    extras: TargetExtras
    data_file: Path
    claim_timeout: float | None
    receiver: WebhookReceiver | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> Any:
        return self.server.app

    def targets_toml(self, name: str = "embedded") -> str:
        """A targets file describing this server (for `--kt-targets FILE --kt-target NAME`)."""
        lines = [f"[targets.{name}]", 'kind = "kt1-server"', f'url = "{self.url}"', "embedded = true",
                 'description = "ktbench embedded KT1 reference server (bench timers, webhook receiver)"']
        if self.claim_timeout is not None:
            lines.append(f"claim_timeout_seconds = {self.claim_timeout}")
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Data file
# ---------------------------------------------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the KT1 data file")


def dump_data(data: dict[str, Any]) -> str:
    """TOML for the KT1 data-file shape: one [server] table and arrays of flat tables."""
    out: list[str] = ["# written by ktbench for one run of the KT1 suite (simulators/actors/kt1_bench.py)"]
    server = data.get("server") or {}
    if server:
        out.append("[server]")
        out += [f"{k} = {_toml_value(v)}" for k, v in server.items()]
    for key in ("domains", "applications", "activity_definitions"):
        for table in data.get(key) or []:
            out.append("")
            out.append(f"[[{key}]]")
            out += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def bench_data(source: str | Path | None, *, webhook_url: str | None, webhook_secret: str | None,
               code_seconds: int | None, token_seconds: int | None,
               max_claim_expiries: int | None = None) -> dict[str, Any]:
    data = tomllib.loads(Path(source or DEFAULT_DATA).read_text(encoding="utf-8"))
    server = dict(data.get("server") or {})
    if max_claim_expiries is not None:
        server["max_claim_expiries"] = int(max_claim_expiries)
    if code_seconds is not None:
        server["authorization_code_seconds"] = int(code_seconds)
    if token_seconds is not None:
        server["access_token_seconds"] = int(token_seconds)
    data["server"] = server
    if webhook_url:
        for app in data.get("applications") or []:
            if app.get("id") == WEBHOOK_APP:
                app["webhook_url"] = webhook_url
                app["webhook_secret"] = webhook_secret
                break
        else:
            raise ValueError(f"the data file has no application {WEBHOOK_APP!r} to receive webhooks")
    return data


# ---------------------------------------------------------------------------------------------------------
# The embedded target
# ---------------------------------------------------------------------------------------------------------
@contextmanager
def running_kt1_bench_server(data_path: str | Path | None = None, db: str = ":memory:", faults=(),
                             claim_timeout: float | None = BENCH_CLAIM_TIMEOUT, public_base: str | None = None,
                             *, workdir: str | Path | None = None, webhook: bool = True,
                             code_seconds: int | None = BENCH_CODE_SECONDS,
                             token_seconds: int | None = BENCH_TOKEN_SECONDS,
                             max_claim_expiries: int | None = BENCH_MAX_CLAIM_EXPIRIES,
                             export_env: bool = False) -> Iterator[BenchServer]:
    """Start receiver + server; `export_env` also sets KTBENCH_KT1_TARGET_EXTRAS in os.environ meanwhile
    (so a pytest subprocess started inside the block inherits it, as `ktbench run` does)."""
    from simulators.kt1.embedded import running_kt1_server

    with ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="ktbench-kt1-"))
        receiver = None
        secret = None
        if webhook:
            secret = secrets.token_urlsafe(18)
            receiver = stack.enter_context(WebhookReceiver({WEBHOOK_APP: secret}))
        data = bench_data(data_path, webhook_url=receiver.hook_url(WEBHOOK_APP) if receiver else None,
                          webhook_secret=secret, code_seconds=code_seconds, token_seconds=token_seconds,
                          max_claim_expiries=max_claim_expiries)
        data_file = Path(workdir) / "kt1-bench-data.toml"
        data_file.write_text(dump_data(data), encoding="utf-8")
        server = stack.enter_context(running_kt1_server(data_path=data_file, db=db, faults=faults,
                                                        claim_timeout=claim_timeout, public_base=public_base))
        url = str(server.url).rstrip("/")
        settings = data.get("server") or {}
        extras = TargetExtras(
            url=url,
            webhook_receiver_url=receiver.url if receiver else None,
            webhook_role=WEBHOOK_ROLE if receiver else None,
            authorization_code_seconds=float(code_seconds) if code_seconds is not None else None,
            access_token_seconds=float(token_seconds) if token_seconds is not None else None,
            max_claim_expiries=int(settings.get("max_claim_expiries", 5)),
        )
        bench = BenchServer(url=url, server=server, extras=extras, data_file=data_file,
                            claim_timeout=claim_timeout, receiver=receiver, env=extras.to_env())
        if export_env:
            previous = os.environ.get(EXTRAS_ENV)
            os.environ.update(bench.env)
            stack.callback(_restore_env, previous)
        yield bench


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(EXTRAS_ENV, None)
    else:
        os.environ[EXTRAS_ENV] = previous


@contextmanager
def embedded_for_run(data_path: str | Path | None = None, db: str = ":memory:", faults=(),
                     claim_timeout: float | None = None, public_base: str | None = None) -> Iterator[BenchServer]:
    """Drop-in for `SuiteSpec.embedded` in ktbench/commands/run.py: bench timers + exported extras.

    `ktbench run` passes its own claim_timeout; the bench's 1 s is used when it passes None.
    """
    with running_kt1_bench_server(data_path, db=db, faults=faults,
                                  claim_timeout=claim_timeout if claim_timeout is not None else BENCH_CLAIM_TIMEOUT,
                                  public_base=public_base, export_env=True) as bench:
        yield bench

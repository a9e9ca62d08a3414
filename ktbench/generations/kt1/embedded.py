"""The embedded KT1 target as the suite wants it: short timers, and a webhook receiver wired in.

Some KT1.3 rules can only be observed if the server's timers are short (claim expiry, authorization-code
and access-token lifetimes) or if the server can reach the bench (webhook notifications).  A real target
declares what it offers in its targets file (ktbench.generations.kt1.settings); for the embedded reference
server the bench arranges it itself:

1. start a `WebhookReceiver` on 127.0.0.1 (port 0);
2. write a data file for the run (tomli-w): the default data with the observer's webhook pointing at the
   receiver, short code/token lifetimes and fewer claim retries;
3. start the server on that data with a short claim timeout;
4. describe all of it in a `Target` (settings included), which `ktbench run` writes to the targets file it
   hands the pytest subprocess - the one description of the target, no side channel.
"""

from __future__ import annotations

import secrets
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktbench.targets.model import Target
from ktbench.targets.writer import dumps
from simulators.kt1.actors.webhook_receiver import WebhookReceiver
from simulators.kt1.data import default_data_path

# The application whose webhook the bench receives, and the suite role it plays.  The observer is
# subscribed to CreateOrUpdatePatient only, so few deliveries happen: every delivery costs the reference
# server a new HTTP client (~50 ms of its event loop), which on the busy module would slow the whole suite.
WEBHOOK_APP = "ktbench-observer"
WEBHOOK_ROLE = "observer"
BENCH_CLAIM_TIMEOUT = 1.0
BENCH_CODE_SECONDS = 1
BENCH_TOKEN_SECONDS = 2
# KT1.3 documents 5 claim attempts; the bench's own server gives up after 2 (and declares it in its
# settings) so the MaximumRetriesExceeded scenario waits 2 claim timeouts, not 5.  Targets that declare
# nothing are held to 5.
BENCH_MAX_CLAIM_EXPIRIES = 2


@dataclass
class Kt1BenchServer:
    """A running embedded KT1 target: the server, its receiver and the Target describing both."""

    target: Target
    server: Any
    receiver: WebhookReceiver | None
    data_file: Path

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def app(self) -> Any:
        return self.server.app


def bench_data(source: str | Path | None, *, webhook_url: str | None, webhook_secret: str | None,
               code_seconds: int | None, token_seconds: int | None,
               max_claim_expiries: int | None = None) -> dict[str, Any]:
    """The reference server's data for one run: `source` (default data) with the bench's timers and webhook."""
    data = tomllib.loads(Path(source or default_data_path()).read_text(encoding="utf-8"))
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


@contextmanager
def running_kt1_bench(*, faults: Sequence[str] = (), workdir: str | Path | None = None,
                      data_path: str | Path | None = None, claim_timeout: float | None = BENCH_CLAIM_TIMEOUT,
                      code_seconds: int | None = BENCH_CODE_SECONDS, token_seconds: int | None = BENCH_TOKEN_SECONDS,
                      max_claim_expiries: int | None = BENCH_MAX_CLAIM_EXPIRIES, webhook: bool = True,
                      public_base: str | None = None, name: str = "embedded") -> Iterator[Kt1BenchServer]:
    """Start receiver + server on 127.0.0.1; yield them with the Target that describes them."""
    from ktbench.generations.kt1 import GENERATION
    from ktbench.generations.kt1.settings import Kt1Settings
    from simulators.kt1.embedded import running_kt1_server

    with ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="ktbench-kt1-"))
        Path(workdir).mkdir(parents=True, exist_ok=True)
        receiver = None
        secret = None
        if webhook:
            secret = secrets.token_urlsafe(18)
            receiver = stack.enter_context(WebhookReceiver({WEBHOOK_APP: secret}))
        data = bench_data(data_path, webhook_url=receiver.hook_url(WEBHOOK_APP) if receiver else None,
                          webhook_secret=secret, code_seconds=code_seconds, token_seconds=token_seconds,
                          max_claim_expiries=max_claim_expiries)
        data_file = Path(workdir) / "kt1-bench-data.toml"
        data_file.write_text(dumps(data, "written by ktbench for one run of the KT1 suite"), encoding="utf-8")
        server = stack.enter_context(running_kt1_server(data_path=data_file, db=":memory:", faults=tuple(faults),
                                                        claim_timeout=claim_timeout, public_base=public_base))
        url = str(server.url).rstrip("/")
        settings = Kt1Settings(
            domain=GENERATION.default_domain(),
            public_base=public_base,
            claim_timeout_seconds=claim_timeout,
            max_claim_expiries=int(data["server"].get("max_claim_expiries", 5)),
            authorization_code_seconds=float(code_seconds) if code_seconds is not None else None,
            access_token_seconds=float(token_seconds) if token_seconds is not None else None,
            webhook_receiver_url=receiver.url if receiver else None,
            webhook_role=WEBHOOK_ROLE if receiver else None,
        )
        target = Target(name=name, kind="kt1-server", url=url, embedded=True, settings=settings,
                        description="ktbench embedded KT1 reference server (bench timers, webhook receiver)",
                        roles=GENERATION.default_roles("kt1-server"))
        yield Kt1BenchServer(target=target, server=server, receiver=receiver, data_file=data_file)

"""Run the KT1 server on 127.0.0.1 in a background thread: for tests and `ktbench run`.

uvicorn binds port 0 so parallel test workers never collide; the context
manager waits until the socket is live and shuts the server down cleanly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from simulators.kt1.app import create_app


@dataclass
class RunningServer:
    url: str
    app: Starlette
    port: int


@contextmanager
def running_kt1_server(data_path: str | Path | None = None, db: str = ":memory:", faults=(),
                       claim_timeout: float | None = None, public_base: str | None = None,
                       app: Starlette | None = None, ssl_certfile: str | Path | None = None,
                       ssl_keyfile: str | Path | None = None) -> Iterator[RunningServer]:
    """`ssl_certfile`/`ssl_keyfile` (PEM) serve HTTPS, e.g. for clients that insist on https URLs."""
    app = app or create_app(data_path, db=db, faults=faults, public_base=public_base, claim_timeout=claim_timeout)
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
    # with proto 0 every response (headers and body are separate writes) waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"kt1-{port}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the embedded KT1 server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"{'https' if ssl_certfile else 'http'}://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.ctx.store.close()

"""Run any ASGI app on 127.0.0.1 in a background thread, over http, https or mTLS: for tests and `ktbench run`.

uvicorn binds port 0 so parallel test workers never collide; the context manager waits until the socket
is live and shuts the server down cleanly.  Every simulator (KT1 server, KT2 voorziening, simulated portals
and modules with their JWKS and launch endpoints) is hosted the same way.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn


@dataclass(frozen=True)
class ServerTls:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None   # set: clients must present a certificate from this CA (mTLS)


@dataclass
class RunningServer:
    url: str
    app: Any
    port: int


@contextmanager
def running_asgi(app: Any, *, tls: ServerTls | None = None, name: str = "asgi",
                 start_timeout: float = 10.0, port: int = 0) -> Iterator[RunningServer]:
    """`port` 0: any free port (tests); a fixed one where a client was configured beforehand (an application
    under test told where the bench's server listens)."""
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
    # with proto 0 every response (headers and body are separate writes) waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"the embedded {name} server cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    port = sock.getsockname()[1]
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
        if tls.client_ca_file is not None:
            options.update(ssl_ca_certs=str(tls.client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"{name}-{port}")
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the embedded {name} server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"{'https' if tls else 'http'}://127.0.0.1:{port}", app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def port_for_later() -> int:
    """A free port for a server that starts later (a client must be told where it will listen first).

    Chosen at random below Linux's ephemeral range (32768-60999), which port-0 binds draw from: between this
    check and the server's bind, no other test's port-0 server or outgoing connection can take it, and two
    callers meet only by a 1-in-12,000 chance.
    """
    import random

    for _ in range(50):
        port = random.randint(20000, 32767)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine: any free port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

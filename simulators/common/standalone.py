"""Serving a simulator standalone (`ktbench serve ...`): bind first, print the real address, stop cleanly.

The socket is bound here (not by uvicorn) so that a port in use is one clear message and `--port 0` can print
the port it got; the banner is printed only once the socket listens (a client that reads it may connect at
once).  Ctrl-C and SIGTERM stop the server gracefully and the command exits 0 (uvicorn itself re-raises the
signal after its shutdown, which would make the exit status 130/143 and print a KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any


class ListenError(Exception):
    """The address cannot be listened on; the message says why, in one line."""


def listen(host: str, port: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                             socket.IPPROTO_TCP)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except (OverflowError, TypeError, ValueError) as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from None
    return sock


def shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def _quiet_stop(server: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(sig: int, frame: Any) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_forever(app: Any, sock: socket.socket, banner: str, on_close: Callable[[], None] = lambda: None,
                  tls: Any = None) -> int:
    """Print `banner`, serve `app` on the listening `sock` until Ctrl-C/SIGTERM, then `on_close()`; exit code 0.
    `tls` (simulators.common.host.ServerTls): serve https with that certificate."""
    import uvicorn

    print(banner, flush=True)
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
    # httptools: the C parser; no access log (uvicorn would still format each line at log level warning)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http="httptools", **options)
    server = uvicorn.Server(config)
    server.capture_signals = lambda: _quiet_stop(server)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        on_close()
    return 0

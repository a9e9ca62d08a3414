"""Run the KT2 voorziening on 127.0.0.1 (port 0) in a background thread: for tests and `ktbench run`.

Hosted like every simulator by simulators.common.host (http, https or mTLS); on exit the queued
AuditEvents are written and the database is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from simulators.common.host import RunningServer, ServerTls, running_asgi
from simulators.kt2.app import create_app
from simulators.kt2.data import ServerData


@contextmanager
def running_kt2_server(data: ServerData | str | Path | None = None, db: str = ":memory:", faults=(),
                       public_base: str | None = None, *, app: Starlette | None = None, tls: ServerTls | None = None,
                       registry: Callable[[Any], Any] | None = None) -> Iterator[RunningServer]:
    app = app or create_app(data, db=db, faults=faults, public_base=public_base, registry=registry)
    try:
        with running_asgi(app, tls=tls, name="kt2") as server:
            yield server
    finally:
        app.state.kt2.close()

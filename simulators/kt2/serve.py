"""`ktbench serve kt2`: the voorziening standalone, with start-up mistakes as one line on stderr and exit 2.

Binding, the banner with the real port and the clean stop on Ctrl-C/SIGTERM are simulators.common.standalone's
(shared with `ktbench serve kt1`); on the way out queued AuditEvents are written and the database closed.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from simulators.common.faults import UnknownFault
from simulators.common.standalone import ListenError, listen, serve_forever, shown_host
from simulators.kt2 import urls
from simulators.kt2.data import DataFileError
from simulators.kt2.faults import FAULTS

PREFIX = "ktbench serve kt2"


def _fail(message: str) -> int:
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)
    return 2


def serve(*, host: str = "127.0.0.1", port: int = 8082, data: str | Path | None = None,
          db: str = "ktbench-kt2.sqlite3", public_base: str | None = None, faults: tuple[str, ...] = (),
          list_faults: bool = False) -> int:
    if list_faults:
        print(FAULTS.listing(), flush=True)
        return 0

    from simulators.kt2.app import create_app

    try:
        app = create_app(data, db=db, faults=faults, public_base=public_base)
    except (DataFileError, UnknownFault) as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))
    except sqlite3.Error as exc:
        return _fail(f"cannot use the database {db}: {exc}")
    except OSError as exc:
        return _fail(f"cannot start: {exc}")
    services = app.state.kt2
    try:
        sock = listen(host, port)
    except ListenError as exc:
        services.close()
        return _fail(str(exc))
    bound = sock.getsockname()[1]
    root = (public_base or f"http://{shown_host(host)}:{bound}").rstrip("/")
    faults_text = ", ".join(faults) or "none"
    lines = [f"KT2 reference voorziening on http://{shown_host(host)}:{bound} (db: {db}; faults: {faults_text})"]
    lines += [f"  domain {d.name}: FHIR base {urls.fhir_base(root, d.name)}" for d in services.ctx.data.domains]
    lines.append(f"  domain admin: {urls.management_url(root)}")
    return serve_forever(app, sock, "\n".join(lines), services.close)

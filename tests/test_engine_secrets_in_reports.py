"""No secret of a run reaches any file it writes: every kind is planted by a real run, then every file scanned.

The SSO and security scenarios run against an embedded KT1 server the test holds on to, with every output on
(Allure results, JUnit, summary.json, the NDJSON event log).  Afterwards the server's own database says which
secrets the run made - launch ids, mobile activation codes, authorization codes, access and refresh tokens -
and the target says which it was configured with (passwords, client secrets, and the Basic credentials built
from them).  None may appear in any produced file, raw, URL-quoted or JSON-escaped.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

from ktbench.cli.registry import build_registry
from ktbench.generations.kt1.embedded import running_kt1_bench
from ktbench.runner.suite_run import RunOptions, run_suite


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def test_planted_secrets_of_every_kind_appear_in_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_kt1_bench(workdir=tmp_path / "server") as bench:
        options = RunOptions(capture_output=True, quiet=True, alluredir=out / "allure",
                             junitxml=out / "junit.xml", summary=out / "summary.json", events=out / "events.ndjson",
                             tags="@req:KT1-SSO-* or @req:KT1-SEC-BASIC")
        run = run_suite(build_registry(), "kt1", target=bench.target, workdir=tmp_path / "work", options=options)
        store = bench.app.state.ctx.store
        planted = {
            "launch id": [r["launch_id"] for r in store.all("SELECT launch_id FROM launches")],
            "activation code": [r["activation_code"] for r in store.all(
                "SELECT activation_code FROM launches WHERE activation_code IS NOT NULL")],
            "authorization code": [r["code"] for r in store.all("SELECT code FROM codes")],
            "access token": [r["access_token"] for r in store.all("SELECT access_token FROM tokens")],
            "refresh token": [r["refresh_token"] for r in store.all(
                "SELECT refresh_token FROM tokens WHERE refresh_token IS NOT NULL")],
        }
        target = bench.target
    assert run.verdict == "passed", run.output[-3000:]
    configured = list(target.secrets())
    for creds in target.roles.values():
        for value in (creds.password.reveal(), creds.client_secret.reveal()):
            configured.append(base64.b64encode(f"{creds.username}:{value}".encode()).decode())
    planted["configured credential"] = configured
    for kind, values in planted.items():
        assert values, f"the run planted no {kind}: the test would prove nothing"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".ndjson" for p in files)
    leaks = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for kind, values in planted.items():
            for value in values:
                if any(form in text for form in _forms(value)):
                    # a six-digit activation code may coincide with other digits: only a standalone one counts
                    if kind == "activation code" and not _standalone(text, value):
                        continue
                    leaks.append(f"{path.relative_to(out)}: {kind}")
    assert not leaks, sorted(set(leaks))


def _standalone(text: str, value: str) -> bool:
    import re

    return re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text) is not None

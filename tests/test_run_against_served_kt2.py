"""`ktbench serve kt2` in one process, `ktbench run --suite kt2 --target URL` in another: how a tester uses it.

The bench needs nothing but the domain's FHIR base URL: it discovers the endpoints, logs in with the reference
voorziening's admin accounts, registers its own portal and module through connection requests, and runs
every scenario.  Two runs:

- against the shipped data, the scenarios that depend on it (its admin accounts and their connection requests,
  backend-services tokens and access tokens): all pass except the one waiting for a token to expire (300 s
  tokens), which is skipped with a reason - so the run is incomplete (exit 4), never failed;
- against a data file with short token timers: the whole suite passes (exit 0).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w

from simulators.kt2.data import default_data_path

KTBENCH = [sys.executable, "-m", "ktbench"]
BASE = re.compile(r"domain ktbench-alpha: FHIR base (?P<url>\S+)")


def _serve(tmp_path: Path, data: Path | None) -> tuple[subprocess.Popen, str]:
    command = [*KTBENCH, "serve", "kt2", "--port", "0", "--db", str(tmp_path / "kt2.sqlite3")]
    if data is not None:
        command += ["--data", str(data)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            break
        found = BASE.search(line)
        if found:
            return server, found["url"]
    server.kill()
    pytest.fail(f"ktbench serve kt2 did not print its FHIR base: {server.stderr.read()[-2000:]}")


def _run(tmp_path: Path, url: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    summary = tmp_path / "summary.json"
    run = subprocess.run([*KTBENCH, "run", "--suite", "kt2", "--target", url, "-n", "2", "--summary", str(summary),
                          "--alluredir", str(tmp_path / "allure"), "--junitxml", str(tmp_path / "junit.xml"),
                          *extra], capture_output=True, text=True, timeout=600)
    assert summary.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    return run, json.loads(summary.read_text(encoding="utf-8"))


def test_the_suite_against_the_shipped_data_is_incomplete_only_where_tokens_must_expire(tmp_path: Path) -> None:
    server, url = _serve(tmp_path, None)
    try:
        run, summary = _run(tmp_path, url, "--tags", "@req:KT2-ADMIN-* or @req:KT2-TOKEN-* or @req:KT2-AT-*")
    finally:
        server.terminate()
        server.wait(timeout=15)
    counts = summary["counts"]
    assert counts["total"] >= 30, counts
    assert counts["failed"] == 0 and counts["broken"] == 0, run.stdout[-4000:]
    assert summary["target"]["url"] == url and summary["target"]["embedded"] is False
    skipped = [s for s in summary["scenarios"] if s["outcome"] == "skipped"]
    assert skipped and all("--slow" in s["message"] for s in skipped), [s["message"] for s in skipped]
    assert set(summary["incomplete"]) <= {"KT2-AT-EXPIRED"}, summary["incomplete"]
    assert run.returncode == (4 if summary["incomplete"] else 0), run.stdout[-2000:]


def test_the_whole_suite_passes_against_a_served_voorziening_with_short_token_timers(tmp_path: Path) -> None:
    raw = tomllib.loads(default_data_path().read_text(encoding="utf-8"))
    raw.setdefault("server", {}).update(access_token_seconds=3, clock_skew_seconds=1)
    data = tmp_path / "short-timers.toml"
    data.write_text(tomli_w.dumps(raw), encoding="utf-8")
    server, url = _serve(tmp_path, data)
    try:
        run, summary = _run(tmp_path, url)
    finally:
        server.terminate()
        server.wait(timeout=15)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    counts = summary["counts"]
    assert counts["passed"] == counts["total"] >= 100, counts

"""Ctrl-C and SIGTERM stop every long-running command cleanly: no traceback, no hang, the documented code.

`ktbench serve kt1 --port 0` prints the port it got (a script reads it from the banner).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

KTBENCH = [sys.executable, "-m", "ktbench"]


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*KTBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_kt1_prints_its_port_and_stops_on_a_signal(sig: int, tmp_path: Path) -> None:
    server = _start("serve", "kt1", "--port", "0", "--db", str(tmp_path / "kt1.sqlite3"), cwd=tmp_path)
    try:
        banner = server.stdout.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", banner).group(1))
        assert port > 0
        assert httpx.get(f"http://127.0.0.1:{port}/FHIR/Koppeltaal/metadata", timeout=5).status_code == 200
        server.send_signal(sig)
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert "Traceback" not in server.stderr.read()


def test_run_stops_on_ctrl_c_without_a_traceback(tmp_path: Path) -> None:
    """Interrupted mid-run (the claim-expiry scenarios wait for timers): exit 130 within seconds."""
    run = _start("run", "--suite", "kt1", "--tags", "@slow", "--summary", str(tmp_path / "summary.json"),
                 "--alluredir", str(tmp_path / "allure"), "--junitxml", str(tmp_path / "junit.xml"), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "against" not in line and time.monotonic() < deadline:
            line = run.stdout.readline()
        time.sleep(2.5)  # into the scenarios
        run.send_signal(signal.SIGINT)
        code = run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    output = run.stdout.read() + run.stderr.read()
    assert code in (130, 2), output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output

"""`ktbench serve kt2` as a subprocess: start on the shipped data in under 2 s with --port 0 (the banner names the
real port and every FHIR base), clear exit-2 messages for start-up mistakes, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulators.kt2.faults import FAULTS
from simulators.kt2.serve import serve

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "ktbench.cli", "serve", "kt2"]
PACKAGE_CLI = [sys.executable, "-m", "ktbench", "serve", "kt2"]   # the spelling of the issue: python -m ktbench


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


class Served:
    def __init__(self, *args: str, cli: list[str] = CLI) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        self.banner = [self.proc.stdout.readline()]
        self.ready_after = time.monotonic() - self.started
        match = re.search(r"on http://127\.0\.0\.1:(\d+) ", self.banner[0])
        assert match, self.banner[0] + self.proc.stderr.read() if self.proc.poll() is not None else self.banner[0]
        self.port = int(match[1])
        for _ in range(3):
            self.banner.append(self.proc.stdout.readline())

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def served(tmp_path):
    running: list[Served] = []

    def start(*args: str, cli: list[str] = CLI) -> Served:
        server = Served(*args, cli=cli)
        running.append(server)
        return server
    yield start
    for server in running:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)


def test_starts_fast_on_the_shipped_data_and_names_the_real_port(served, tmp_path):
    server = served("--port", "0", "--db", str(tmp_path / "kt2.sqlite3"))
    assert server.ready_after < 2.0 + 1.0   # the budget is 2 s; the rest is the Python start of the test process
    base = f"http://127.0.0.1:{server.port}"
    text = "".join(server.banner)
    assert f"{base}/api/v1/ktbench-alpha/fhir/r4" in text and f"{base}/api/v1/ktbench-beta/fhir/r4" in text
    assert f"{base}/kt2/mgmt/" in text
    answer = httpx.get(f"{base}/api/v1/ktbench-alpha/fhir/r4/metadata")
    assert answer.status_code == 200 and answer.json()["fhirVersion"] == "4.0.1"
    assert server.stop(signal.SIGTERM) == 0


def test_ctrl_c_stops_cleanly_and_public_base_is_used(served):
    server = served("--host", "127.0.0.1", "--port", "0", "--db", ":memory:", "--public-base",
                    "https://kt2.example.org", cli=PACKAGE_CLI)
    assert "https://kt2.example.org/api/v1/ktbench-alpha/fhir/r4" in "".join(server.banner)
    config = httpx.get(f"http://127.0.0.1:{server.port}/api/v1/ktbench-alpha/fhir/r4/.well-known/smart-configuration")
    assert config.json()["token_endpoint"] == "https://kt2.example.org/api/v1/ktbench-alpha/oauth2/token"
    assert server.stop(signal.SIGINT) == 0
    assert "Traceback" not in server.proc.stderr.read()


def test_faults_are_switched_on(served):
    server = served("--port", "0", "--db", ":memory:", "--fault", "capability-without-oauth-uris")
    assert "capability-without-oauth-uris" in server.banner[0]
    statement = httpx.get(f"http://127.0.0.1:{server.port}/api/v1/ktbench-alpha/fhir/r4/metadata").json()
    assert "extension" not in statement["rest"][0]["security"]
    server.stop()


def test_list_faults():
    result = _run("--list-faults")
    assert result.returncode == 0
    for name in FAULTS:
        assert re.search(rf"^{re.escape(name)}\s", result.stdout, re.M), name
    assert "[breaks KT2-VER-IF-MATCH-REQUIRED]" in result.stdout


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/absent.toml"], "does not exist"),
    (["--data", "{tmp}/bad.toml"], "unknown domain"),
    (["--data", "{tmp}/broken.toml"], "not valid TOML"),
    (["--data", "{tmp}/bad-jwks.toml"], "jwks_url is not a valid URL"),
    (["--fault", "no-such-fault"], "unknown fault(s) no-such-fault"),
    (["--db", "{tmp}/no/such/dir/kt2.sqlite3"], "cannot use the database"),
    (["--public-base", "ftp://kt2.example.org"], "--public-base"),
    (["--public-base", "not a url"], "--public-base"),
    (["--port", "{busy}"], "cannot listen on 127.0.0.1"),
    (["--port", "99999"], "cannot listen"),
], ids=["missing-data", "bad-data", "broken-toml", "bad-jwks-url", "fault", "db", "public-base-scheme", "public-base-text",
        "port-in-use", "port-range"])
def test_start_up_mistakes_exit_2_with_one_message(tmp_path, capsys, args, message):
    (tmp_path / "bad.toml").write_text('[[domains]]\nname = "d"\n\n[[roles]]\nname = "r"\n[roles.permissions]\n'
                                       'Task = "R:ALL"\n\n[[identity_providers]]\nid = "i"\ndomain = "nope"\n',
                                       encoding="utf-8")
    (tmp_path / "broken.toml").write_text("[[domains]\n", encoding="utf-8")
    (tmp_path / "bad-jwks.toml").write_text('[[domains]]\nname = "d"\n\n[[roles]]\nname = "r"\n[roles.permissions]\n'
                                            'Task = "R:ALL"\n\n[[applications]]\nid = "a"\nname = "A"\n'
                                            '[[applications.instances]]\ndomain = "d"\nclient_id = "c"\nrole = "r"\n'
                                            'jwks_url = "https://jwks.example.org:99999/k"\n', encoding="utf-8")
    busy = _busy_port()
    try:
        args = [a.replace("{tmp}", str(tmp_path)).replace("{busy}", str(busy.getsockname()[1])) for a in args]
        options = {"port": 0, "db": ":memory:", "faults": ()}
        for name, value in zip(args[::2], args[1::2]):
            key = name.lstrip("-").replace("-", "_")
            options[key] = (value,) if key == "fault" else int(value) if key == "port" else value
        if "fault" in options:
            options["faults"] = options.pop("fault")
        code = serve(**options)
    finally:
        busy.close()
    captured = capsys.readouterr()
    assert code == 2, captured
    assert message in captured.err
    assert captured.err.startswith("ktbench serve kt2: ") and "Traceback" not in captured.err


def test_a_start_up_mistake_through_the_real_cli(tmp_path):
    result = _run("--port", "0", "--db", str(tmp_path / "missing" / "kt2.sqlite3"))
    assert result.returncode == 2
    assert result.stderr.startswith("ktbench serve kt2: cannot use the database")
    assert "Traceback" not in result.stderr + result.stdout

"""`ktbench serve kt1`: clear start-up errors (exit 2, a message, no traceback) and the options reach the server.

`--public-base` decides the host in every minted link (kt1-protocol §9.4).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kt1_builders import Kt1World
from kt1_support import CLAIM, CREDS, LAUNCH, MAILBOX, METADATA, MH_SEARCH, OTHER_SEARCH, kt1, self_link  # noqa: F401
from kt1_support import no_unhandled_errors  # noqa: F401  (autouse: the server logs no unhandled error)
from typer.testing import CliRunner

from ktbench.cli import app as cli_app

PUBLIC = "https://kt.example.org"
REPO = Path(__file__).resolve().parents[1]


def _bad_data(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text('[[domains]]\nname = "d"\n\n[[applications]]\nid = "a"\ndomain = "elsewhere"\n'
                    'username = "u"\npassword = "p"\nclient_secret = "s"\n', encoding="utf-8")
    return path


def _run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ktbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def test_bad_data_file_exits_2_with_a_message_and_no_traceback(tmp_path):
    bad = _bad_data(tmp_path)
    result = _run_cli("serve", "kt1", "--data", str(bad), "--db", ":memory:")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert f"ktbench serve kt1: {bad}: applications[0]: domain 'elsewhere' is not declared in [[domains]]" \
        in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/absent.toml"], "data file not found"),
    (["--fault", "no-such-fault"], "unknown fault(s) no-such-fault"),
    (["--db", "{tmp}/no/such/dir/kt1.sqlite3"], "cannot start:"),
], ids=["missing data file", "unknown fault", "unopenable database"])
def test_other_start_up_errors_exit_2(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(cli_app, ["serve", "kt1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_list_faults(tmp_path):
    result = CliRunner().invoke(cli_app, ["serve", "kt1", "--list-faults"])
    assert result.exit_code == 0
    assert re.search(r"^skip-version-check\s+Mailbox accepts", result.output, re.M)


@pytest.fixture
def captured(monkeypatch):
    """Run `ktbench serve kt1` in-process with the serving loop replaced: returns what it would have served."""
    from simulators.common import standalone

    seen: dict = {}

    def fake_serve(application, sock, banner, on_close=lambda: None):
        seen["app"], seen["address"], seen["banner"] = application, sock.getsockname(), banner
        sock.close()
        return 0

    monkeypatch.setattr(standalone, "serve_forever", fake_serve)

    def invoke(*args: str) -> dict:
        result = CliRunner().invoke(cli_app, ["serve", "kt1", *args])
        assert result.exit_code == 0, result.output
        seen["output"] = seen.get("banner", "") + result.output
        return seen

    return invoke


def test_serve_options_reach_the_server(captured, tmp_path):
    seen = captured("--db", ":memory:", "--claim-timeout", "7.5", "--port", "0")
    assert seen["address"][0] == "127.0.0.1" and seen["address"][1] > 0  # loopback unless told otherwise
    assert f"http://127.0.0.1:{seen['address'][1]}" in seen["banner"]  # --port 0: the port it got
    ctx = seen["app"].state.ctx
    assert ctx.settings.claim_timeout_seconds == 7.5
    assert ctx.store.path == ":memory:"
    ctx.store.close()


def test_public_base_is_the_host_of_every_minted_link(kt1, captured):
    seen = captured("--db", ":memory:", "--public-base", PUBLIC)
    assert f"FHIR base {PUBLIC}/FHIR/Koppeltaal" in seen["output"]
    kt1.plug(seen["app"])
    metadata = kt1.request("GET", METADATA, None).json()
    assert {e["valueUri"].split("/OAuth2/")[0] for e in metadata["rest"][0]["security"]["extension"]} == {PUBLIC}
    activities = kt1.request("GET", OTHER_SEARCH, params={"code": "ActivityDefinition"}).json()
    assert all(e["id"].startswith(PUBLIC + "/FHIR/Koppeltaal/Other/") for e in activities["entry"])
    assert all(link["href"].startswith(PUBLIC) for link in activities["link"])
    world = Kt1World(seed=130)
    reply = kt1.send(world.careplan_message(*world.careplan_set()))
    assert reply["entry"][0]["content"]["source"]["endpoint"] == PUBLIC + MAILBOX
    claimed = kt1.claimed("module")
    assert claimed["entry"][0]["id"].startswith(PUBLIC + "/FHIR/Koppeltaal/MessageHeader/")
    assert self_link(claimed["entry"][0]).startswith(PUBLIC)
    launch = kt1.request("GET", LAUNCH, params={"client_id": "ktbench-module", "patient": "https://p/Patient/1",
                                                "user": "https://p/Practitioner/1"})
    assert httpx.URL(launch.headers["location"]).params["iss"] == PUBLIC + "/FHIR/Koppeltaal"


def test_serve_for_real_with_public_base(tmp_path):
    """The real command in its own process: it listens, answers, and mints links on the public base."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "ktbench.cli", "serve", "kt1", "--port", str(port),
                             "--db", ":memory:", "--public-base", PUBLIC], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        body = None
        with httpx.Client(base_url=url, timeout=2) as http:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    body = http.get(OTHER_SEARCH, params={"code": "ActivityDefinition"}, auth=CREDS["portal"])
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert body is not None, f"server did not answer; exit={proc.poll()}"
            assert body.status_code == 200
            assert all(e["id"].startswith(PUBLIC) for e in body.json()["entry"])
            empty = http.get(MH_SEARCH, params={"_query": CLAIM}, auth=CREDS["module"]).json()
            assert empty["entry"] == []
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert f"FHIR base {PUBLIC}/FHIR/Koppeltaal" in out and f"KT1 reference server on http://127.0.0.1:{port}" in out
    assert "Traceback" not in err

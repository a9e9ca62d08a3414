"""The generation seam: a throw-away generation from the test folder runs through `ktbench run` unchanged.

tests/toy_generation declares one target kind, one suite of one scenario and an embedded toy server; it is
registered with `ktbench --generation tests.toy_generation:GENERATION` and runs without a line of engine
code knowing about it: against its embedded server, against one given by URL, and against a faulty one
(where the failure names the toy requirement).  Its catalogue's not_tested entry reaches the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from simulators.common.host import running_asgi
from tests.toy_generation import toy_app

REPO = Path(__file__).resolve().parents[1]
TOY = "tests.toy_generation:GENERATION"


def ktbench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    summary = tmp_path / "summary.json"
    command = [sys.executable, "-m", "ktbench", "--generation", TOY, "run", "--suite", "toy",
               "--alluredir", str(tmp_path / "allure"), "--junitxml", str(tmp_path / "junit.xml"),
               "--summary", str(summary), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    data = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
    return proc, data


def test_a_throwaway_generation_runs_against_its_embedded_target(tmp_path: Path) -> None:
    proc, data = ktbench(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert data["suite"] == "toy" and data["target"]["kind"] == "toy-server" and data["target"]["embedded"]
    assert data["counts"]["passed"] == 1 and data["counts"]["total"] == 1
    assert data["requirements"]["TOY-HELLO"]["outcome"] == "passed"
    assert data["not_tested"] == {"TOY-FAREWELL": "A toy has no farewells."}
    assert "toy-visitor-secret" not in (tmp_path / "junit.xml").read_text() + json.dumps(data)


def test_the_same_suite_against_a_url_and_against_a_faulty_server(tmp_path: Path) -> None:
    with running_asgi(toy_app(), name="toy-good") as good, running_asgi(toy_app(["rude"]), name="toy-rude") as rude:
        proc, data = ktbench(tmp_path / "good", "--target", good.url)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert data["target"]["url"] == good.url and not data["target"]["embedded"]
        proc, data = ktbench(tmp_path / "rude", "--target", rude.url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (scenario,) = data["scenarios"]
    assert scenario["outcome"] == "failed" and scenario["failed_requirement"] == "TOY-HELLO"
    assert "go away" in scenario["message"]


def test_an_unloadable_generation_is_a_usage_error(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ktbench", "--generation", "tests.no_such_generation:X", "run"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "cannot import generation module 'tests.no_such_generation'" in proc.stderr
    assert "Traceback" not in proc.stderr

"""`ktbench run --suite kt1-apps|kt2-apps --role portal|module [--fault NAME]`: how the command line reaches the
application-under-test suites, and the usage errors around it (exit 2, one clear sentence, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

KTBENCH = [sys.executable, "-m", "ktbench"]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KTBENCH, "run", "--summary", str(tmp_path / "summary.json"), "--alluredir",
                           str(tmp_path / "allure"), "--junitxml", str(tmp_path / "junit.xml"), *args],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["--suite", "kt1-apps"], "suite kt1-apps needs --role module or portal"),
    (["--suite", "kt2-apps", "--role", "ehr"], "suite kt2-apps has no role 'ehr' (roles: module, portal)"),
    (["--suite", "kt1", "--role", "portal"], "--role goes with an application suite"),
    (["--suite", "kt1-apps", "--role", "portal", "-n", "2"], "runs serially"),
    (["--suite", "kt2-apps", "--role", "module", "--fault", "nosuch"], "suite kt2-apps-module has no fault 'nosuch'"),
    (["--suite", "kt1", "--fault", "double-claim", "--target", "http://127.0.0.1:9"], "leave out --target"),
    (["--suite", "all", "--fault", "double-claim"], "leave out --target and --suite all"),
    (["--suite", "kt2-apps", "--role", "portal", "--target", "http://127.0.0.1:9"], "a bare URL cannot describe"),
])
def test_bad_app_suite_invocations_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    run = _run(tmp_path, *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr, run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_a_fault_of_the_simulated_portal_is_caught_through_the_command_line(tmp_path: Path) -> None:
    run = _run(tmp_path, "--suite", "kt1-apps", "--role", "portal", "--fault", "portal-ignores-409",
               "--tags", "@req:KT1-APP-PORTAL-CONFLICT-RECOVER")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["suite"] == "kt1-apps-portal" and summary["target"]["embedded"] is True
    failed = [s for s in summary["scenarios"] if s["outcome"] == "failed"]
    assert failed and {s["failed_requirement"] for s in failed} == {"KT1-APP-PORTAL-CONFLICT-RECOVER"}
    # the briefing (what to configure in the application) is printed at start, on the console only
    assert "The bench plays the KT1.3 server for this portal" in run.stdout

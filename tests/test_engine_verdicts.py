"""Verdicts a test team can sign off on: each misleading verdict of earlier versions, reproduced, now right.

- a user's own set-up mistake (wrong password, the FHIR base pasted as the target, a web server that is no
  Koppeltaal server, nothing listening) is a configuration verdict from the preflight - exit 2 (3 when
  unreachable), one sentence per problem, no scenario run, let alone failed;
- a 401 in the middle of a run, after the preflight passed, is the target's failure;
- a run that could not verify what it selected (skipped scenarios) is incomplete - exit 4, listing the
  requirements and the keys that would let them run - not "all passed";
- a failed run blames exactly the requirements its failures name, and the Allure tree counts every scenario
  once; the catalogue's not-tested requirements are in the summary and the report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from simulators.common.host import running_asgi

REPO = Path(__file__).resolve().parents[1]
KTBENCH = [sys.executable, "-m", "ktbench"]


@contextmanager
def served_kt1(tmp_path: Path, *faults: str) -> Iterator[str]:
    """`ktbench serve kt1 --port 0` in its own process; yields the FHIR base its banner prints."""
    command = [*KTBENCH, "serve", "kt1", "--port", "0", "--db", str(tmp_path / "kt1.sqlite3")]
    for fault in faults:
        command += ["--fault", fault]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = server.stdout.readline()
        match = re.search(r"FHIR base (\S+)", banner)
        assert match, f"no banner: {banner!r} {server.stderr.read() if server.poll() is not None else ''}"
        yield match.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)


def ktbench_run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    summary = tmp_path / "summary.json"
    proc = subprocess.run([*KTBENCH, "run", "--suite", "kt1", "--summary", str(summary),
                           "--alluredir", str(tmp_path / "allure"), "--junitxml", str(tmp_path / "junit.xml"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=400,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    data = json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {}
    return proc, data


def targets_file(tmp_path: Path, url: str, password: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(f'[targets.acc]\nkind = "kt1-server"\nurl = "{url}"\n\n'
                    f'[targets.acc.roles.portal]\napp_id = "ktbench-portal"\npassword = "{password}"\n'
                    f'client_secret = "portal-oauth-secret"\n\n'
                    f'[targets.acc.roles.module]\napp_id = "ktbench-module"\npassword = "module-secret"\n'
                    f'client_secret = "module-oauth-secret"\n', encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# Set-up mistakes are configuration verdicts
# ---------------------------------------------------------------------------------------------------------------
def test_wrong_passwords_are_a_configuration_verdict_not_80_failures(tmp_path: Path) -> None:
    with served_kt1(tmp_path) as fhir_base:
        proc, data = ktbench_run(tmp_path, "--targets", str(targets_file(tmp_path, fhir_base, "wrong")),
                                 "--target", "acc")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "preflight: role portal: the target refused the credentials of user 'ktbench-portal' (HTTP 401)" \
        in proc.stderr
    assert "check [targets.acc.roles.portal] username and password" in proc.stderr
    assert data["verdict"] == "configuration" and data["scenarios"] == [] and data["counts"]["failed"] == 0
    assert [p["kind"] for p in data["preflight"]] == ["credentials"]
    assert "wrong" not in json.dumps(data) and "Traceback" not in proc.stderr


def test_a_web_server_that_is_no_koppeltaal_server_is_a_configuration_verdict(tmp_path: Path) -> None:
    async def page(request: Request) -> Response:
        return HTMLResponse("<html><body>Welcome to nginx!</body></html>")

    with running_asgi(Starlette(routes=[Mount("/", routes=[Route("/{path:path}", page)])]), name="web") as web:
        proc, data = ktbench_run(tmp_path, "--target", web.url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{web.url} does not answer a KT1 Conformance statement at /FHIR/Koppeltaal/metadata (HTTP 200, " \
           "text/html; charset=utf-8)" in proc.stderr
    assert data["verdict"] == "configuration" and not data["scenarios"]


def test_nothing_listening_is_unreachable_exit_3(tmp_path: Path) -> None:
    with running_asgi(Starlette(), name="gone") as gone:
        url = gone.url
    proc, data = ktbench_run(tmp_path, "--target", url)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"the target {url} cannot be reached" in proc.stderr and data["verdict"] == "unreachable"


def test_a_401_after_the_preflight_is_the_targets_failure(tmp_path: Path) -> None:
    """The preflight's credential check passes; later every Mailbox POST is refused: conformance failures."""
    from simulators.kt1.app import create_app

    reference = create_app(None, db=":memory:")

    async def refuse(request: Request) -> Response:
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "security", "details": "Authentication failed"}]}, status_code=401)

    double = Starlette(routes=[Route("/FHIR/Koppeltaal/Mailbox", refuse, methods=["POST"]), Mount("/", reference)])
    with running_asgi(double, name="flaky") as flaky:
        proc, data = ktbench_run(tmp_path, "--target", flaky.url, "--tags", "@req:KT1-MSG-ACCEPT")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not data.get("preflight")
    failed = [s for s in data["scenarios"] if s["outcome"] == "failed"]
    assert failed and {s["failed_requirement"] for s in failed} == {"KT1-MSG-ACCEPT"}


# ---------------------------------------------------------------------------------------------------------------
# The banner's URL works; incomplete is not passed
# ---------------------------------------------------------------------------------------------------------------
def test_the_banners_fhir_base_works_and_skips_make_the_run_incomplete(tmp_path: Path) -> None:
    with served_kt1(tmp_path) as fhir_base:
        assert fhir_base.endswith("/FHIR/Koppeltaal")
        proc, data = ktbench_run(tmp_path / "strict", "--target", fhir_base, "-n", "2")
        # --allow-incomplete, over the scenarios of the unverifiable requirements only (the rest passed above)
        timers = "@req:KT1-CLAIM-EXPIRY or @req:KT1-CLAIM-MAX-RETRIES or @req:KT1-HOOK-NOTIFY"
        allowed, allowed_data = ktbench_run(tmp_path / "allowed", "--target", fhir_base, "--tags", timers,
                                            "--allow-incomplete")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output
    assert data["target"]["url"] == fhir_base.removesuffix("/FHIR/Koppeltaal")
    assert data["counts"]["failed"] == 0 and data["counts"]["broken"] == 0 and data["counts"]["passed"] >= 80
    incomplete = data["incomplete"]
    assert {"KT1-CLAIM-EXPIRY", "KT1-CLAIM-MAX-RETRIES", "KT1-HOOK-NOTIFY"} <= set(incomplete)
    assert any("[targets.127.0.0.1:" in r and "] claim_timeout_seconds" in r for r in incomplete["KT1-CLAIM-EXPIRY"])
    assert any("webhook_receiver_url and" in r for r in incomplete["KT1-HOOK-NOTIFY"])
    assert "incomplete:" in output and "pass --allow-incomplete" in output
    assert "Unverified (" in output and "KT1-CLAIM-EXPIRY:" in output
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert set(allowed_data["incomplete"]) >= {"KT1-CLAIM-EXPIRY", "KT1-CLAIM-MAX-RETRIES", "KT1-HOOK-NOTIFY"}
    for req in ("KT1-CLAIM-EXPIRY", "KT1-CLAIM-MAX-RETRIES", "KT1-HOOK-NOTIFY"):
        assert allowed_data["incomplete"][req] == incomplete[req]


def test_a_server_with_timer_defects_no_longer_passes_against_a_bare_url(tmp_path: Path) -> None:
    faults = ("claim-never-expires", "no-max-retries", "no-webhook")
    with served_kt1(tmp_path, *faults) as fhir_base:
        proc, data = ktbench_run(tmp_path, "--target", fhir_base, "--tags",
                                 "@req:KT1-CLAIM-EXPIRY or @req:KT1-CLAIM-MAX-RETRIES or @req:KT1-HOOK-NOTIFY")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert set(data["incomplete"]) >= {"KT1-CLAIM-EXPIRY", "KT1-CLAIM-MAX-RETRIES", "KT1-HOOK-NOTIFY"}
    assert "all scenarios passed" not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------------------------
# Requirement verdicts and the report
# ---------------------------------------------------------------------------------------------------------------
def test_a_fault_blames_only_the_requirements_its_failures_name(tmp_path: Path) -> None:
    from ktbench.cli.registry import build_registry
    from ktbench.runner.suite_run import RunOptions, run_suite
    from simulators.kt1.faults import FAULTS

    alluredir = tmp_path / "allure"
    run = run_suite(build_registry(), "kt1", faults=("reply-wrong-identifier",), workdir=tmp_path / "w",
                    options=RunOptions(capture_output=True, quiet=True, alluredir=alluredir, workers="2"))
    summary = run.summary
    failed = [s for s in summary["scenarios"] if s["outcome"] == "failed"]
    named = {s["failed_requirement"] for s in failed}
    blamed = {req for req, r in summary["requirements"].items() if r["outcome"] == "failed"}
    assert failed and blamed == named, (blamed, named)
    assert named <= set(FAULTS["reply-wrong-identifier"].breaks)
    # each failed scenario's other requirements are not blamed by it
    for s in failed:
        for req in set(s["requirements"]) - named:
            assert summary["requirements"][req]["outcome"] != "failed"
    # Allure: one result per scenario (+ one not-tested listing), each once in its feature and story
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    assert len(results) == len(summary["scenarios"]) + 1
    for r in results:
        labels = Counter(label["name"] for label in r["labels"])
        assert labels["feature"] == 1 and labels["story"] == 1 and labels["suite"] == 1, r["name"]
    assert sum(Counter(next(l["value"] for l in r["labels"] if l["name"] == "feature") for r in results).values()) \
        == len(results)
    listing = next(r for r in results if r["name"].startswith("Not tested by this suite"))
    assert "KT1-SEC-TLS: A transport property" in listing["statusDetails"]["message"]
    assert summary["not_tested"]["KT1-SEC-TLS"].startswith("A transport property")
    steps = [s for r in results for s in r.get("steps", [])]
    assert not [p for s in steps for p in s.get("parameters", []) if p["value"].startswith("<")], \
        "internal objects (worlds, clients) must not appear as step parameters"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/FHIR/Koppeltaal", "http://127.0.0.1:8080/FHIR/Koppeltaal/",
                                 "http://127.0.0.1:8080/"])
def test_a_kt1_target_url_is_normalised_to_the_server_root(url: str) -> None:
    from ktbench.generations.kt1 import GENERATION

    assert GENERATION.target_for_url(url).url == "http://127.0.0.1:8080"

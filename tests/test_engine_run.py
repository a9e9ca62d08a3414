"""`ktbench run` end to end, in a subprocess as CI runs it: exit codes 0/1/2/3 and what lands in the reports.

The targets are the embedded reference server (when simulators/kt1 is present)
and tiny Starlette doubles on 127.0.0.1: one that gets the Conformance
statement wrong, one that leaks the caller's credentials back, and a closed port.
Runs select the smoke feature (`--tags @smoke`): the engine is under test here,
not the KT1 suite.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ktbench.generations.kt1 import GENERATION as KT1

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SECRETS = KT1.target_for_url("http://x").secrets()
PORTAL_BASIC = base64.b64encode(b"ktbench-portal:portal-secret").decode()


# ---------------------------------------------------------------------------------------------------------------
# Target doubles
# ---------------------------------------------------------------------------------------------------------------
def conformance(base: str, fhir_version: str, publisher: str) -> dict[str, Any]:
    """A Conformance statement that passes the KT1 profiles (live validation fails a scenario on an error)."""
    family = "http://fhir-registry.smartplatforms.org/Profile/oauth-uris"
    return {
        "resourceType": "Conformance", "name": "Koppeltaal", "fhirVersion": fhir_version, "publisher": publisher,
        "date": "2024-01-01", "acceptUnknown": False, "format": ["application/json"],
        "rest": [{"mode": "server", "security": {"extension": [
            {"url": f"{family}#authorize", "valueUri": base + "/OAuth2/Koppeltaal/Authorize"},
            {"url": f"{family}#token", "valueUri": base + "/OAuth2/Koppeltaal/Token"},
        ]}, "resource": [{"type": "MessageHeader", "operation": [{"code": "search-type"}]}]}],
    }


def make_app(mode: str) -> Starlette:
    async def metadata(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        auth = request.headers.get("authorization", "")
        if mode == "leaky":  # echoes the credentials and puts the password where an assertion will quote it
            body = conformance(base, "portal-secret", publisher=auth or "leaky double")
        else:
            body = conformance(base, "1.0.2", publisher="wrong version double")
        return JSONResponse(body, media_type="application/json; charset=utf-8",
                            headers={"X-Echo-Authorization": auth})

    return Starlette(routes=[Route("/FHIR/Koppeltaal/metadata", metadata), Route("/", metadata)])


@pytest.fixture(scope="module")
def double() -> Iterator[dict[str, str]]:
    """Both doubles on one uvicorn each, bound to 127.0.0.1:0."""
    urls: dict[str, str] = {}
    servers = []
    for mode in ("wrong-version", "leaky"):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(make_app(mode), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "test double did not start"
            time.sleep(0.01)
        servers.append((server, thread, sock))
        urls[mode] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield urls
    for server, thread, sock in servers:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------------------------
# Running ktbench and reading what it wrote
# ---------------------------------------------------------------------------------------------------------------
class Outputs:
    def __init__(self, root: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.root = root
        self.proc = proc
        self.allure = root / "allure-results"
        self.junit = root / "junit.xml"
        self.summary_path = root / "summary.json"

    @property
    def rc(self) -> int:
        return self.proc.returncode

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    def results(self) -> list[dict[str, Any]]:
        """The scenarios' Allure results (not the catalogue's not-tested listing)."""
        found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.allure.glob("*-result.json"))]
        return [r for r in found if not r["name"].startswith("Not tested by this suite")]

    def result(self, name_part: str) -> dict[str, Any]:
        (found,) = [r for r in self.results() if name_part in r["name"]]
        return found

    def all_text(self) -> str:
        files = [p for p in self.root.rglob("*") if p.is_file()]
        return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


def ktbench_run(tmp_path: Path, *args: str, timeout: float = 120) -> Outputs:
    command = [sys.executable, "-m", "ktbench.cli", "run",
               "--alluredir", str(tmp_path / "allure-results"), "--junitxml", str(tmp_path / "junit.xml"),
               "--summary", str(tmp_path / "summary.json"), "--pytest-args", "-p no:cacheprovider", *args]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                          env={**__import__("os").environ, "NO_COLOR": "1", "COLUMNS": "120"})
    return Outputs(tmp_path, proc)


def validator_available() -> bool:
    try:
        from ktbench.validation import validate_bytes  # noqa: F401
    except ImportError:
        return False
    return True


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def attachments(result: dict[str, Any], root: Path) -> list[tuple[str, str]]:
    found = []
    for step in result["steps"]:
        for att in step.get("attachments", []):
            found.append((att["name"], (root / att["source"]).read_text(encoding="utf-8")))
    return found


def assert_no_secrets(out: Outputs, extra: tuple[str, ...] = ()) -> None:
    text = out.all_text()
    for secret in (*DEFAULT_SECRETS, PORTAL_BASIC, *extra):
        assert secret not in text, f"secret {secret[:3]}... leaked into the reports"


# ---------------------------------------------------------------------------------------------------------------
# Exit code 0
# ---------------------------------------------------------------------------------------------------------------
def test_embedded_reference_server_passes(tmp_path: Path) -> None:
    pytest.importorskip("simulators.kt1.embedded", reason="the embedded KT1 reference server is not there yet")
    # the smoke feature only: the whole suite is the suite's business (tox -e suite), not the engine's
    out = ktbench_run(tmp_path, "--suite", "kt1", "--tags", "@smoke")
    assert out.rc == 0, out.output
    assert "embedded" in out.output and "npx allure" in out.output
    summary = out.summary()
    assert summary["verdict"] == "passed" and summary["target"]["embedded"] is True
    assert summary["counts"]["passed"] == summary["counts"]["total"] >= 2
    assert {"KT1-META-CONFORMANCE", "KT1-META-OAUTH-URIS"} <= set(summary["requirements"])

    results = out.results()
    assert len(results) == summary["counts"]["total"]  # one Allure test per scenario
    conf = out.result("returns the Koppeltaal Conformance statement")
    assert conf["status"] == "passed"
    assert [s["name"] for s in conf["steps"]] == [
        "When the portal requests GET /FHIR/Koppeltaal/metadata",
        "Then the response status is 200",
        'And the response header "Content-Type" is "application/json; charset=utf-8"',
        'And the response body is a FHIR "Conformance" resource',
        'And the response JSON at "fhirVersion" is "0.0.82"',
        'And the response JSON at "name" is "Koppeltaal"',
    ]
    assert labels(conf, "requirement") == ["KT1-META-CONFORMANCE"]
    assert "req:KT1-META-CONFORMANCE" in labels(conf, "tag") and labels(conf, "role") == ["portal"]
    found = attachments(conf, out.allure)
    ((name, body),) = [(n, b) for n, b in found if not n.startswith("validation:")]
    assert name.startswith("portal: GET /FHIR/Koppeltaal/metadata -> 200")
    assert "authorization: Basic ***" in body and '"fhirVersion": "0.0.82"' in body
    if validator_available():  # live validation: the verdict is attached next to the exchange
        (validation,) = [b for n, b in found if n.startswith("validation:")]
        assert "Validated: response to GET" in validation
    env = (out.allure / "environment.properties").read_text()
    assert "Target.embedded=true" in env
    assert (out.allure / "categories.json").is_file()

    junit = out.junit.read_text(encoding="utf-8")
    assert 'failures="0"' in junit and 'errors="0"' in junit
    assert '<property name="requirement" value="KT1-META-CONFORMANCE" />' in junit
    assert_no_secrets(out)


def test_tags_select_scenarios(tmp_path: Path, double: dict[str, str]) -> None:
    # the wrong-version double only breaks the Conformance scenario, which the expression leaves out
    out = ktbench_run(tmp_path, "--target", double["wrong-version"], "--tags", "@req:KT1-META-OAUTH* and @smoke")
    assert out.rc == 0, out.output
    summary = out.summary()
    assert summary["counts"] == {"passed": 1, "failed": 0, "broken": 0, "skipped": 0, "total": 1}
    assert list(summary["requirements"]) == ["KT1-META-OAUTH-URIS"]
    assert len(out.results()) == 1


# ---------------------------------------------------------------------------------------------------------------
# Exit code 1
# ---------------------------------------------------------------------------------------------------------------
def test_nonconforming_target_fails(tmp_path: Path, double: dict[str, str]) -> None:
    out = ktbench_run(tmp_path, "--target", double["wrong-version"], "--tags", "@smoke",
                      "--events", str(tmp_path / "events.ndjson"))
    assert out.rc == 1, out.output
    summary = out.summary()
    assert summary["verdict"] == "failed"
    assert summary["requirements"]["KT1-META-CONFORMANCE"]["outcome"] == "failed"
    assert summary["requirements"]["KT1-META-OAUTH-URIS"]["outcome"] == "passed"
    (failed,) = [s for s in summary["scenarios"] if s["outcome"] == "failed"]
    assert "fhirVersion" in failed["message"] and "1.0.2" in failed["message"]
    assert failed["message"].count("KT1-META-CONFORMANCE: ") == 1 and failed["http_exchanges"] == 1
    assert failed["failed_requirement"] == "KT1-META-CONFORMANCE"

    conf = out.result("returns the Koppeltaal Conformance statement")
    assert conf["status"] == "failed"
    statuses = [s["status"] for s in conf["steps"]]
    assert statuses == ["passed", "passed", "passed", "passed", "failed", "skipped"]
    assert "fhirVersion" in conf["statusDetails"]["message"]
    assert out.result("advertises the OAuth")["status"] == "passed"

    junit = out.junit.read_text(encoding="utf-8")
    assert 'failures="1"' in junit and 'errors="0"' in junit
    assert "KT1-META-CONFORMANCE" in out.output and "Failed (target does not conform)" in out.output
    assert_event_order(tmp_path / "events.ndjson")


def assert_event_order(path: Path) -> None:
    """The plugin's stream: run > scenario > step > exchange (> validation) > step end > scenario end > run end."""
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert kinds.count("ScenarioStarted") == kinds.count("ScenarioFinished") == 2
    # within one scenario: strictly nested, each exchange inside the step that sent it
    expected_next = {
        "RunStarted": {"ScenarioStarted"},
        "ScenarioStarted": {"StepStarted"},
        "StepStarted": {"HttpExchange", "StepFinished"},
        "HttpExchange": {"ValidationReported", "HttpExchange", "StepFinished"},
        "ValidationReported": {"HttpExchange", "StepFinished"},
        "StepFinished": {"StepStarted", "ScenarioFinished"},
        "ScenarioFinished": {"ScenarioStarted", "RunFinished"},
    }
    for current, following in zip(kinds, kinds[1:]):
        assert following in expected_next[current], f"{following} after {current}"
    steps = [e for e in events if e["event"] == "StepFinished"]
    assert [s["outcome"] for s in steps if s["outcome"] != "passed"] == ["failed"]
    exchanges = [e for e in events if e["event"] == "HttpExchange"]
    assert len(exchanges) == 2 and all(e["status"] == 200 for e in exchanges)
    assert {h[1] for e in exchanges for h in e["request_headers"] if h[0] == "authorization"} == {"Basic ***"}


def test_leaked_credentials_never_reach_reports_under_xdist(tmp_path: Path, double: dict[str, str]) -> None:
    out = ktbench_run(tmp_path, "--target", double["leaky"], "-n", "2", "--tags", "@smoke")
    assert out.rc == 1, out.output
    summary = out.summary()  # aggregated on the controller from both workers
    assert summary["counts"]["total"] == 2 and summary["counts"]["failed"] == 1
    assert len(out.results()) == 2
    conf = out.result("returns the Koppeltaal Conformance statement")
    # the assertion quoted the echoed password: the report keeps the finding, not the secret
    assert "***" in conf["statusDetails"]["message"]
    bodies = "".join(body for _, body in attachments(conf, out.allure))
    assert "x-echo-authorization: Basic ***" in bodies
    assert 'failures="1"' in out.junit.read_text(encoding="utf-8")
    assert_no_secrets(out)


# ---------------------------------------------------------------------------------------------------------------
# Exit code 3
# ---------------------------------------------------------------------------------------------------------------
def test_an_unreachable_target_is_caught_by_the_preflight(tmp_path: Path) -> None:
    url = closed_port_url()
    started = time.monotonic()
    out = ktbench_run(tmp_path, "--target", url, "--tags", "@smoke")
    assert out.rc == 3, out.output
    assert time.monotonic() - started < 60
    assert "target unreachable" in out.output.lower() and f"the target {url} cannot be reached" in out.output
    summary = out.summary()
    assert summary["verdict"] == "unreachable" and summary["scenarios"] == []
    assert summary["preflight"][0]["kind"] == "unreachable"


def test_a_target_that_dies_mid_run_leaves_broken_not_failed_scenarios(tmp_path: Path) -> None:
    """The preflight passed; then the server goes away: the scenarios after that are BROKEN (exit 3)."""
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    server = subprocess.Popen([sys.executable, "-m", "ktbench", "serve", "kt1", "--port", str(number), "--db",
                               ":memory:", "--claim-timeout", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        server.stdout.readline()
        targets = tmp_path / "targets.toml"
        targets.write_text(f'[targets.local]\nkind = "kt1-server"\nurl = "http://127.0.0.1:{number}"\n'
                           "claim_timeout_seconds = 1\nmax_claim_expiries = 5\n", encoding="utf-8")
        command = [sys.executable, "-m", "ktbench", "run", "--targets", str(targets), "--target", "local",
                   "--tags", "@req:KT1-CLAIM-* or @req:KT1-ACK-*", "--summary", str(tmp_path / "summary.json"),
                   "--alluredir", str(tmp_path / "allure-results"), "--junitxml", str(tmp_path / "junit.xml")]
        run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "[" not in (line := run.stdout.readline()) and line:
            pass  # the first progress line: scenarios are running
        server.terminate()
        server.wait(timeout=10)
        output = run.communicate(timeout=120)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert run.returncode == 3, output
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "unreachable" and summary["counts"]["failed"] == 0
    broken = [s for s in summary["scenarios"] if s["outcome"] == "broken"]
    assert broken and {s["error_type"] for s in broken} == {"TargetUnreachable"}
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert "<error " in junit and "<failure" not in junit


# ---------------------------------------------------------------------------------------------------------------
# Exit code 2
# ---------------------------------------------------------------------------------------------------------------
def test_bad_targets_file_is_a_usage_error(tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.acc]\nkind = "kt1-server"\nulr = "http://x"\n', encoding="utf-8")
    out = ktbench_run(tmp_path, "--targets", str(targets), "--target", "acc")
    assert out.rc == 2
    assert "unknown key 'ulr' (did you mean 'url'?)" in out.proc.stderr
    assert "Traceback" not in out.output
    assert not out.summary_path.exists()


@pytest.mark.parametrize("args, message", [
    (("--suite", "kt9"), "unknown suite 'kt9'"),
    (("--target", "nosuch"), "neither a URL nor a target name"),
    (("--target", "http://127.0.0.1:1", "--tags", "@a and (@b"), "--tags"),
    (("--target", "http://127.0.0.1:1", "-n", "many"), "-n must be a number"),
    (("--target", "http://127.0.0.1:1", "--validate", "sometimes"), "--validate must be"),
    (("--targets", "{tmp}/targets.toml", "--target", "acceptanse"), "did you mean 'acceptance'"),
    (("--targets", "{tmp}/missing.toml", "--target", "x"), "does not exist"),
])
def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str) -> None:
    """Rejected before anything runs: checked in-process (the subprocess path is covered above)."""
    from typer.testing import CliRunner

    from ktbench.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "targets.toml").write_text('[targets.acceptance]\nkind = "kt1-server"\nurl = "http://127.0.0.1:1"\n',
                                            encoding="utf-8")
    result = CliRunner().invoke(app, ["run", *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "reports").exists()  # nothing was run or written


def test_no_selected_scenario_is_a_usage_error(tmp_path: Path) -> None:
    out = ktbench_run(tmp_path, "--tags", "@no-such-tag")
    assert out.rc == 2, out.output
    assert "no scenario was selected" in out.proc.stderr

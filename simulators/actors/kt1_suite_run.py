"""Run the KT1 suite (steps/kt1) in a subprocess against an embedded server and read its JUnit verdicts.

Used by the kill matrix (tests/test_suite_kill_matrix.py) and the speed
benchmark (benchmarks/kt1_suite.py): start the reference server - possibly
with a fault switched on - with the bench's short timers and webhook
receiver, run `pytest steps/kt1 --kt-targets FILE --kt-target embedded`, and
turn the JUnit XML into per-scenario outcomes plus the requirement each
failure names.  Live profile validation is on by default (`validate`), so a
fault only the validator can see is killed too (KT1-PROFILE-EXCHANGE).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simulators.actors.kt1_bench import running_kt1_bench_server

REPO = Path(__file__).resolve().parents[2]
SUITE_DIR = REPO / "steps" / "kt1"
_REQ_RE = re.compile(r"\bKT1-[A-Z0-9]+(?:-[A-Z0-9]+)*\b")


@dataclass(frozen=True)
class ScenarioResult:
    nodeid: str                       # module::test name
    outcome: str                      # passed | failed | broken | skipped
    requirements: tuple[str, ...]     # the scenario's @req tags
    failed_requirement: str | None    # the requirement id the failure message names
    message: str = ""


@dataclass
class SuiteRun:
    faults: tuple[str, ...]
    returncode: int
    wall_seconds: float
    scenarios: list[ScenarioResult] = field(default_factory=list)
    output: str = ""

    def with_outcome(self, outcome: str) -> list[ScenarioResult]:
        return [s for s in self.scenarios if s.outcome == outcome]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "broken": 0, "skipped": 0}
        for s in self.scenarios:
            counts[s.outcome] = counts.get(s.outcome, 0) + 1
        return counts


def read_junit(path: Path) -> list[ScenarioResult]:
    root = ET.parse(path).getroot()
    results = []
    for case in root.iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        nodeid = f"{module}::{case.get('name', '')}"
        props = case.find("properties")
        reqs = tuple(p.get("value", "") for p in props.iter("property")
                     if p.get("name") == "requirement") if props is not None else ()
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "broken"), ("skipped", "skipped")):
            element = case.find(tag)
            if element is not None:
                outcome = name
                message = (element.get("message") or element.text or "").strip()
                break
        named = _REQ_RE.search(message) if outcome == "failed" else None
        results.append(ScenarioResult(nodeid, outcome, reqs, named.group(0) if named else None, message[:500]))
    return results


def run_kt1_suite(workdir: Path, *, faults: Sequence[str] = (), workers: int | None = None,
                  claim_timeout: float = 1.0, extra_args: Sequence[str] = (), timeout: float = 600.0,
                  pycache: Path | None = None, validate: str = "on", fail_on: str = "error") -> SuiteRun:
    """Start an embedded server (with `faults`), run the whole KT1 suite against it, return its verdicts.

    `validate` / `fail_on`: the plugin's --kt-validate and --kt-fail-on (profile findings in the server's
    answers fail scenarios at or above `fail_on`).
    `pycache`: a directory for compiled (and assertion-rewritten) modules shared by several runs
    (PYTHONPYCACHEPREFIX), so repeated runs do not recompile everything when the environment sets
    PYTHONDONTWRITEBYTECODE; the source tree stays free of __pycache__ directories.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    junit = workdir / "junit.xml"
    with running_kt1_bench_server(faults=tuple(faults), claim_timeout=claim_timeout, workdir=workdir) as bench:
        targets = workdir / "targets.toml"
        targets.write_text(bench.targets_toml("embedded"), encoding="utf-8")
        args = [sys.executable, "-m", "pytest", str(SUITE_DIR), "--rootdir", str(REPO), "-q",
                "-p", "no:cacheprovider", "-p", "no:allure_pytest", "-p", "no:anyio", "-p", "no:faker",
                "-p", "no:allure_pytest_bdd",
                "--kt-targets", str(targets), "--kt-target", "embedded", "--kt-validate", validate,
                "--kt-fail-on", fail_on,
                "--junitxml", str(junit), "--tb", "line", *extra_args]
        if workers:
            args += ["-n", str(workers)]
        env = dict(os.environ)
        env.pop("KTBENCH_TARGETS", None)
        env.update(bench.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        if pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        started = time.perf_counter()
        proc = subprocess.run(args, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        wall = time.perf_counter() - started
    scenarios = read_junit(junit) if junit.is_file() else []
    return SuiteRun(tuple(faults), proc.returncode, wall, scenarios, (proc.stdout + proc.stderr)[-4000:])

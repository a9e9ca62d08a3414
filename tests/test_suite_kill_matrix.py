"""The kill matrix: the whole KT1 suite must pass on the reference server and catch every catalogued fault.

A conformance suite is worth the defects it catches.  For each realistic
defect in simulators/kt1/faults.py the reference server is started with that
fault switched on and the complete suite (steps/kt1) runs against it in a
subprocess; at least one scenario must FAIL - a broken scenario (a bench
problem) does not count as a kill.  Against the server without faults every
scenario must pass - with live profile validation on (--fail-on error), so
neither the server's answers nor the bench's own requests may break the KT1
profiles.  The faults only profile validation can see (VALIDATION_ONLY_FAULTS)
must be killed by the end-of-scenario profile check (KT1-PROFILE-EXCHANGE).

The matrix (fault -> killing scenarios and the requirement each failure
names) is merged into `<pytest temp root>/kt1-kill-matrix.json` and printed
(`-s` shows it); benchmarks/kt1_suite.py prints the same matrix as JSON.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from simulators.actors.kt1_suite_run import SuiteRun, run_kt1_suite
from simulators.kt1.faults import FAULTS, VALIDATION_ONLY_FAULTS

CLAIM_TIMEOUT = 1.0
PROFILE_REQUIREMENT = "KT1-PROFILE-EXCHANGE"


def _matrix_dir(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    root = base.parent if hasattr(request.config, "workerinput") else base  # shared by all xdist workers
    return root


def _record(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, key: str, run: SuiteRun) -> dict:
    """Merge this run's row into the shared matrix file (under a lock: workers finish concurrently)."""
    root = _matrix_dir(request, factory)
    row = {
        "description": FAULTS.get(key, "reference server without faults"),
        "counts": run.counts,
        "wall_seconds": round(run.wall_seconds, 2),
        "killed_by": [{"scenario": s.nodeid, "requirement": s.failed_requirement}
                      for s in run.with_outcome("failed")],
        "broken": [s.nodeid for s in run.with_outcome("broken")],
    }
    target = root / "kt1-kill-matrix.json"
    with open(root / "kt1-kill-matrix.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        matrix = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
        matrix[key] = row
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(matrix.items())), indent=2), encoding="utf-8")
        tmp.replace(target)
        fcntl.flock(lock, fcntl.LOCK_UN)
    print(f"\nkill matrix {target}:\n{key}: {json.dumps(row, indent=2)}")
    return row


def _diagnose(run: SuiteRun) -> str:
    lines = [f"{s.outcome.upper()} {s.nodeid}: {s.message[:300]}" for s in run.scenarios if s.outcome != "passed"]
    return "\n".join(lines[:15]) or run.output[-3000:]


def _run(request, tmp_path, tmp_path_factory, faults=()) -> SuiteRun:
    pycache = _matrix_dir(request, tmp_path_factory) / "kt1-suite-pycache"  # compiled once, shared by all runs
    return run_kt1_suite(tmp_path, faults=faults, claim_timeout=CLAIM_TIMEOUT, pycache=pycache)


def test_the_reference_server_passes_the_whole_suite(request, tmp_path, tmp_path_factory) -> None:
    run = _run(request, tmp_path, tmp_path_factory)
    _record(request, tmp_path_factory, "(no fault)", run)
    assert run.scenarios, f"the suite produced no results:\n{run.output[-3000:]}"
    assert len(run.scenarios) >= 90, f"only {len(run.scenarios)} scenarios ran"
    bad = [s for s in run.scenarios if s.outcome != "passed"]
    assert not bad, f"{len(bad)} scenario(s) did not pass on the fault-free server:\n{_diagnose(run)}"
    assert run.returncode == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_suite_kills_the_fault(fault: str, request, tmp_path, tmp_path_factory) -> None:
    run = _run(request, tmp_path, tmp_path_factory, faults=[fault])
    row = _record(request, tmp_path_factory, fault, run)
    assert run.scenarios, f"the suite produced no results:\n{run.output[-3000:]}"
    assert row["killed_by"], (f"no scenario failed against a server with fault {fault!r} ({FAULTS[fault]}); "
                              f"broken: {row['broken']}")
    assert all(k["requirement"] for k in row["killed_by"]), \
        f"every failure should name the requirement it checks: {row['killed_by']}"
    if fault in VALIDATION_ONLY_FAULTS:  # no step sees it: the profile check at the end of a scenario must
        assert {k["requirement"] for k in row["killed_by"]} == {PROFILE_REQUIREMENT}, row["killed_by"]

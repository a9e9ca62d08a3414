"""The kill matrix: the whole KT1 suite passes on the reference server and kills every catalogued fault,
each kill naming a requirement the fault declares it breaks (ktbench.runner.kill_matrix).

A conformance suite is worth the defects it catches.  Against the server without faults every scenario must
pass - with live profile validation on (--fail-on error), so neither the server's answers nor the bench's
own requests may break the KT1 profiles, and no check may name a requirement its scenario does not carry.
For each fault of simulators/kt1/faults.py the scenarios that carry one of its `breaks` requirements run
against the server with that fault on; one must FAIL naming one of them.  The matrix (fault -> killing
scenarios and requirements) is merged into `<pytest temp root>/kt1-kill-matrix.json` and printed (`-s`);
benchmarks/kt1_suite.py prints the same matrix as JSON.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from ktbench.cli.registry import build_registry
from ktbench.runner.kill_matrix import kill_run
from ktbench.runner.suite_run import RunOptions, SuiteRun, run_suite
from simulators.kt1.faults import FAULTS

SUITE = "kt1"
PROFILE_REQUIREMENT = "KT1-PROFILE-EXCHANGE"


def _root(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base  # shared by all xdist workers


def _options(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> RunOptions:
    # compiled once, shared by all runs
    return RunOptions(capture_output=True, quiet=True, pycache=_root(request, factory) / "kt1-suite-pycache",
                      timeout=600)


def _record(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, key: str, row: dict) -> None:
    """Merge this run's row into the shared matrix file (under a lock: workers finish concurrently)."""
    root = _root(request, factory)
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


def _diagnose(run: SuiteRun) -> str:
    lines = [f"{s.outcome.upper()} {s.nodeid}: {s.message[:300]}" for s in run.scenarios if s.outcome != "passed"]
    return "\n".join(lines[:15]) or run.output[-3000:]


def test_the_reference_server_passes_the_whole_suite(request, tmp_path, tmp_path_factory) -> None:
    run = run_suite(build_registry(), SUITE, workdir=tmp_path, options=_options(request, tmp_path_factory))
    _record(request, tmp_path_factory, "(no fault)", {"counts": run.counts, "wall_seconds": run.wall_seconds})
    assert run.scenarios, f"the suite produced no results:\n{run.output[-3000:]}"
    assert len(run.scenarios) >= 90, f"only {len(run.scenarios)} scenarios ran"
    bad = [s for s in run.scenarios if s.outcome != "passed"]
    assert not bad, f"{len(bad)} scenario(s) did not pass on the fault-free server:\n{_diagnose(run)}"
    assert run.returncode == 0 and run.verdict == "passed"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_suite_kills_the_fault_naming_a_requirement_it_breaks(fault: str, request, tmp_path,
                                                                   tmp_path_factory) -> None:
    result = kill_run(build_registry(), SUITE, FAULTS[fault], tmp_path, _options(request, tmp_path_factory))
    _record(request, tmp_path_factory, fault, result.row())
    assert result.run.scenarios, f"the suite produced no results:\n{result.run.output[-3000:]}"
    assert not result.bench_defects, f"the bench misnamed a requirement under fault {fault!r}: {result.bench_defects}"
    assert result.killed, (f"no scenario failed naming one of {FAULTS[fault].breaks} against a server with fault "
                           f"{fault!r} ({FAULTS[fault].description}); failures: {result.other_failures}; "
                           f"{_diagnose(result.run)}")
    if FAULTS[fault].validation_only:  # no step sees it: the profile check of the exchanges must
        assert {k["requirement"] for k in result.kills} == {PROFILE_REQUIREMENT}, result.kills

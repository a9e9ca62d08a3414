"""The kill matrix: the whole KT1 and KT2 suites pass on their reference simulators and kill every catalogued
fault, each kill naming a requirement the fault declares it breaks (ktbench.runner.kill_matrix).

A conformance suite is worth the defects it catches.  Against the server without faults every scenario must
pass - with live profile validation on (--fail-on error), so neither the server's answers nor the bench's
own requests may break the profiles, and no check may name a requirement its scenario does not carry.
For each fault of simulators/kt1/faults.py and simulators/kt2/faults.py the scenarios that carry one of its
`breaks` requirements run against the simulator with that fault on; one must FAIL naming one of them.  The
matrix (fault -> killing scenarios and requirements) is merged into `<pytest temp root>/<suite>-kill-matrix.json`
and printed (`-s`); benchmarks/kill_faults.py prints the same matrix as JSON.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
from pathlib import Path

import pytest

from ktbench.cli.registry import build_registry
from ktbench.runner.kill_matrix import kill_run
from ktbench.runner.suite_run import RunOptions, SuiteRun, run_suite
from simulators.kt1.faults import FAULTS as KT1_FAULTS
from simulators.kt2.faults import FAULTS as KT2_FAULTS

# suite -> (its simulator's fault catalogue, the requirement profile findings name, the fewest scenarios it has)
SUITES = {"kt1": (KT1_FAULTS, "KT1-PROFILE-EXCHANGE", 90), "kt2": (KT2_FAULTS, "KT2-PROFILE-EXCHANGE", 100)}
CASES = [(suite, fault) for suite, (faults, _, _) in SUITES.items() for fault in faults]


def _root(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base  # shared by all xdist workers


def _options(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> RunOptions:
    # compiled once, shared by all runs
    return RunOptions(capture_output=True, quiet=True, pycache=_root(request, factory) / "suite-pycache",
                      timeout=600)


def _record(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, suite: str, key: str,
            row: dict) -> None:
    """Merge this run's row into the shared matrix file (under a lock: workers finish concurrently)."""
    root = _root(request, factory)
    target = root / f"{suite}-kill-matrix.json"
    with open(root / f"{suite}-kill-matrix.lock", "w") as lock:
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


@pytest.mark.parametrize("suite", list(SUITES))
def test_the_reference_simulator_passes_the_whole_suite(suite: str, request, tmp_path, tmp_path_factory) -> None:
    # two workers: the suite waits on timers and notifications much of the time, so this halves its wall time
    options = dataclasses.replace(_options(request, tmp_path_factory), workers="2")
    run = run_suite(build_registry(), suite, workdir=tmp_path, options=options)
    _record(request, tmp_path_factory, suite, "(no fault)", {"counts": run.counts, "wall_seconds": run.wall_seconds})
    assert run.scenarios, f"the suite produced no results:\n{run.output[-3000:]}"
    assert len(run.scenarios) >= SUITES[suite][2], f"only {len(run.scenarios)} scenarios ran"
    bad = [s for s in run.scenarios if s.outcome != "passed"]
    assert not bad, f"{len(bad)} scenario(s) did not pass on the fault-free server:\n{_diagnose(run)}"
    assert run.returncode == 0 and run.verdict == "passed"


@pytest.mark.parametrize(("suite", "fault"), CASES)
def test_the_suite_kills_the_fault_naming_a_requirement_it_breaks(suite: str, fault: str, request, tmp_path,
                                                                   tmp_path_factory) -> None:
    faults, profile_requirement, _ = SUITES[suite]
    result = kill_run(build_registry(), suite, faults[fault], tmp_path, _options(request, tmp_path_factory))
    _record(request, tmp_path_factory, suite, fault, result.row())
    assert result.run.scenarios, f"the suite produced no results:\n{result.run.output[-3000:]}"
    assert not result.bench_defects, f"the bench misnamed a requirement under fault {fault!r}: {result.bench_defects}"
    assert result.killed, (f"no scenario failed naming one of {faults[fault].breaks} against a server with fault "
                           f"{fault!r} ({faults[fault].description}); failures: {result.other_failures}; "
                           f"{_diagnose(result.run)}")
    if faults[fault].validation_only:  # no step sees it: the profile check of the exchanges must
        assert {k["requirement"] for k in result.kills} == {profile_requirement}, result.kills

"""Helpers shared by the KT1 application-under-test tests (no tests here): run options, outcome listing, kill runs."""

from __future__ import annotations

import pytest

from ktbench.runner.suite_run import RunOptions


def options(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, **extra) -> RunOptions:
    base = factory.getbasetemp()
    root = base.parent if hasattr(request.config, "workerinput") else base
    return RunOptions(capture_output=True, quiet=True, pycache=root / "suite-pycache", timeout=300, **extra)


def outcome_lines(run) -> str:
    return "\n".join(f"{s.nodeid.split('::')[-1]}: {s.outcome} {s.failed_requirement or ''} {s.message[:300]}"
                     for s in run.scenarios) + (f"\npreflight: {run.preflight}" if run.preflight else "") + \
        f"\n{run.output[-2000:]}"


def kt1_roles(kind: str):
    from ktbench.generations.kt1 import GENERATION
    return GENERATION.default_roles(kind)


def assert_killed(suite: str, catalogue, fault: str, request: pytest.FixtureRequest,
                  factory: pytest.TempPathFactory) -> None:
    """Run the scenarios that can kill `fault` against the simulated application with it switched on."""
    from ktbench.cli.registry import build_registry
    from ktbench.runner.kill_matrix import kill_run

    # live validation off: every fault is seen by a step (none is validation_only), and the runs are faster;
    # the fault-free runs (test_kt1_apps_suites.py) keep it on
    assert not catalogue[fault].validation_only
    result = kill_run(build_registry(), suite, catalogue[fault], factory.mktemp(fault),
                      options(request, factory, validate="off"))
    assert not result.bench_defects, result.bench_defects
    assert result.killed, outcome_lines(result.run)
    print(f"{fault}: killed by {result.kills} in {result.run.wall_seconds:.1f} s")

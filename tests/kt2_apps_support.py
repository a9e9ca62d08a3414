"""Shared by the KT2 application kill-matrix tests (split in four files so each stays well under a minute
with two workers): run one fault of a simulated application under test against its role suite."""

from __future__ import annotations

import getpass
import tempfile
from pathlib import Path

from ktbench.cli.registry import build_registry
from ktbench.runner.kill_matrix import kill_run
from ktbench.runner.suite_run import RunOptions

# compiled once for every kill run of every file and session (the cache checks the sources' mtimes)
PYCACHE = Path(tempfile.gettempdir()) / f"ktbench-kt2-apps-pycache-{getpass.getuser()}"


def assert_killed(suite: str, fault, tmp_path: Path) -> None:
    """The suite's scenarios for the fault's requirements fail naming one of them; no bench defect."""
    options = RunOptions(capture_output=True, quiet=True, timeout=300, pycache=PYCACHE)
    result = kill_run(build_registry(), suite, fault, tmp_path, options)
    assert not result.bench_defects, result.bench_defects
    assert result.killed, (f"{fault.name} was not caught: counts {result.run.counts}, other failures "
                           f"{result.other_failures}\n{result.run.output[-3000:]}")
    print(f"\n{fault.name}: killed by {result.kills} in {result.run.wall_seconds:.1f} s")


def split_covers(catalogue, *groups: tuple[str, ...]) -> bool:
    """The kill files together name every fault of a catalogue exactly once."""
    names = [n for group in groups for n in group]
    return sorted(names) == sorted(catalogue) and len(names) == len(set(names))

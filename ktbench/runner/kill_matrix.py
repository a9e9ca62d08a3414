"""The kill matrix: a suite proves its power by failing, for the right reason, against each catalogued fault.

For a fault the suite's embedded reference simulator is started with that defect switched on and the suite
runs against it - only the scenarios that carry a requirement the fault declares it `breaks` (a kill by any
other scenario would not count anyway, and running only these keeps the matrix fast), or every scenario when
the fault breaks a requirement they all carry (live profile validation, exchange rules).  The fault is
*killed* when a scenario FAILS naming one of those requirements.  A scenario broken by a bench defect
(a check naming a requirement its scenario does not carry) is reported apart: that is the bench's bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktbench.core.generation import GenerationRegistry
from ktbench.runner.suite_run import RunOptions, SuiteRun, run_suite

BENCH_DEFECT = "bench defect"


@dataclass
class KillResult:
    fault: str
    breaks: tuple[str, ...]
    run: SuiteRun
    kills: list[dict[str, str]] = field(default_factory=list)          # failures naming a declared requirement
    other_failures: list[dict[str, str]] = field(default_factory=list)  # failures naming something else
    bench_defects: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return bool(self.kills)

    def row(self) -> dict[str, Any]:
        return {"breaks": list(self.breaks), "killed": self.killed, "counts": self.run.counts,
                "wall_seconds": round(self.run.wall_seconds, 2), "killed_by": self.kills,
                "other_failures": self.other_failures, "bench_defects": self.bench_defects}


def tags_for(breaks: tuple[str, ...]) -> str:
    return " or ".join(f"@req:{req}" for req in breaks)


def judge(fault: str, breaks: tuple[str, ...], run: SuiteRun) -> KillResult:
    result = KillResult(fault, breaks, run)
    for scenario in run.scenarios:
        if scenario.outcome == "failed":
            entry = {"scenario": scenario.nodeid, "requirement": scenario.failed_requirement or ""}
            (result.kills if scenario.failed_requirement in breaks else result.other_failures).append(entry)
        elif scenario.outcome == "broken" and BENCH_DEFECT in scenario.message:
            result.bench_defects.append(f"{scenario.nodeid}: {scenario.message[:300]}")
    return result


def kill_run(registry: GenerationRegistry, suite: str, fault: Any, workdir: Path,
             options: RunOptions = RunOptions(capture_output=True, quiet=True)) -> KillResult:
    """Run the scenarios of `suite` that can kill `fault` (a simulators.common.faults.Fault) against the
    embedded simulator with that fault switched on: those carrying a requirement it breaks - all of them
    when it breaks one every scenario carries (the profile and exchange rules)."""
    _, spec = registry.suite(suite)
    every = any(req in spec.implicit_requirements for req in fault.breaks)
    opts = RunOptions(**{**options.__dict__, "tags": None if every else tags_for(fault.breaks)})
    run = run_suite(registry, suite, faults=(fault.name,), workdir=workdir, options=opts)
    return judge(fault.name, fault.breaks, run)

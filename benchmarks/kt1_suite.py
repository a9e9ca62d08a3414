"""How long does the KT1 conformance suite take, and which faults does it catch?

Why: the VZVZ test team runs the suite on every release candidate; it must
finish in seconds, and it is only worth running if it catches realistic server
defects.  This script measures the full suite's wall time against the embedded
reference server (bench timers: 1 s claim timeout) run serially and with
`-n 2`, then runs the suite once per fault of simulators/kt1/faults.py and
reports which scenarios (and requirement ids) kill each fault.

Usage: python benchmarks/kt1_suite.py [--repeat N] [--jobs J] [--no-kill-matrix]  -> JSON on stdout.
Goal: a full serial run under 15 s; every fault killed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.actors.kt1_suite_run import SuiteRun, run_kt1_suite  # noqa: E402
from simulators.kt1.faults import FAULTS  # noqa: E402


def _timed(workdir: Path, workers: int | None, repeat: int) -> dict:
    runs: list[SuiteRun] = [run_kt1_suite(workdir / f"w{workers or 1}-{i}", workers=workers,
                                          pycache=workdir / "pycache") for i in range(repeat)]
    walls = [r.wall_seconds for r in runs]
    return {
        "workers": workers or 1,
        "wall_seconds": [round(w, 2) for w in walls],
        "median_seconds": round(statistics.median(walls), 2),
        "counts": runs[-1].counts,
        "all_passed": all(r.counts["passed"] == len(r.scenarios) and r.scenarios for r in runs),
    }


def _kill_matrix(workdir: Path, jobs: int) -> dict:
    def one(fault: str) -> tuple[str, SuiteRun]:
        return fault, run_kt1_suite(workdir / fault, faults=[fault], pycache=workdir / "pycache")

    started = time.perf_counter()
    matrix = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for fault, run in pool.map(one, sorted(FAULTS)):
            matrix[fault] = {
                "killed": bool(run.with_outcome("failed")),
                "killed_by": [{"scenario": s.nodeid, "requirement": s.failed_requirement}
                              for s in run.with_outcome("failed")],
                "broken": [s.nodeid for s in run.with_outcome("broken")],
            }
    return {
        "faults": len(matrix),
        "killed": sum(1 for row in matrix.values() if row["killed"]),
        "survivors": sorted(f for f, row in matrix.items() if not row["killed"]),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "jobs": jobs,
        "matrix": matrix,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="full-suite runs per mode (median reported)")
    parser.add_argument("--jobs", type=int, default=2, help="fault runs in parallel for the kill matrix")
    parser.add_argument("--no-kill-matrix", action="store_true", help="only time the suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ktbench-suite-bench-") as tmp:
        workdir = Path(tmp)
        # A first, untimed run compiles every module into the shared pycache (the environment may set
        # PYTHONDONTWRITEBYTECODE); the timed runs then measure the suite, not the compiler.
        warmup = run_kt1_suite(workdir / "warmup", pycache=workdir / "pycache")
        result: dict = {
            "benchmark": "kt1_suite",
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cold_first_run_seconds": round(warmup.wall_seconds, 2),
            "serial": _timed(workdir, None, args.repeat),
            "parallel_n2": _timed(workdir, 2, args.repeat),
        }
        if not args.no_kill_matrix:
            result["kill_matrix"] = _kill_matrix(workdir, args.jobs)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

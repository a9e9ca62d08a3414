"""How long does the KT1 conformance suite take, and which faults does it catch?

Why: the VZVZ test team runs the suite on every release candidate; it must
finish in seconds, and it is only worth running if it catches realistic server
defects.  This script measures the full suite's wall time against the embedded
reference server (bench timers: 1 s claim timeout) run serially and with
`-n 2`, then runs, once per fault of simulators/kt1/faults.py, the scenarios that carry
a requirement the fault breaks, and reports which scenarios (and requirement ids)
kill each fault (ktbench.runner.kill_matrix: the same runner the tests use).

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

from ktbench.cli.registry import build_registry  # noqa: E402
from ktbench.runner.kill_matrix import kill_run  # noqa: E402
from ktbench.runner.suite_run import RunOptions, SuiteRun, run_suite  # noqa: E402
from simulators.kt1.faults import FAULTS  # noqa: E402

REGISTRY = build_registry()


def _options(workdir: Path, workers: int | None = None) -> RunOptions:
    return RunOptions(workers=str(workers) if workers else None, capture_output=True, quiet=True,
                      pycache=workdir / "pycache")


def _timed(workdir: Path, workers: int | None, repeat: int) -> dict:
    runs: list[SuiteRun] = [run_suite(REGISTRY, "kt1", workdir=workdir / f"w{workers or 1}-{i}",
                                      options=_options(workdir, workers)) for i in range(repeat)]
    walls = [r.wall_seconds for r in runs]
    return {
        "workers": workers or 1,
        "wall_seconds": [round(w, 2) for w in walls],
        "median_seconds": round(statistics.median(walls), 2),
        "counts": runs[-1].counts,
        "all_passed": all(r.counts["passed"] == len(r.scenarios) and r.scenarios for r in runs),
    }


def _kill_matrix(workdir: Path, jobs: int) -> dict:
    def one(fault: str) -> tuple[str, dict]:
        return fault, kill_run(REGISTRY, "kt1", FAULTS[fault], workdir / fault, _options(workdir)).row()

    started = time.perf_counter()
    matrix = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for fault, row in pool.map(one, list(FAULTS)):
            matrix[fault] = row
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
        warmup = run_suite(REGISTRY, "kt1", workdir=workdir / "warmup", options=_options(workdir))
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

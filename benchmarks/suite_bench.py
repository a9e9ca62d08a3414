"""How long does a conformance suite take, and which faults does it catch?  (benchmarks/kt1_suite.py and
benchmarks/kt2_suite.py run this for their suite.)

Why: the VZVZ test team runs the suites on every release candidate; they must finish in seconds, and they are
only worth running if they catch realistic defects.  This measures the full suite's wall time against its
embedded reference simulator run serially and with `-n 2`, then runs, once per fault of the simulator's
catalogue, the scenarios that carry a requirement the fault breaks, and reports which scenarios (and
requirement ids) kill each fault (ktbench.runner.kill_matrix: the same runner the tests use).
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

REGISTRY = build_registry()


def _options(workdir: Path, workers: int | None = None) -> RunOptions:
    return RunOptions(workers=str(workers) if workers else None, capture_output=True, quiet=True,
                      pycache=workdir / "pycache")


def _timed(suite: str, workdir: Path, workers: int | None, repeat: int) -> dict:
    runs: list[SuiteRun] = [run_suite(REGISTRY, suite, workdir=workdir / f"w{workers or 1}-{i}",
                                      options=_options(workdir, workers)) for i in range(repeat)]
    walls = [r.wall_seconds for r in runs]
    return {
        "workers": workers or 1,
        "wall_seconds": [round(w, 2) for w in walls],
        "median_seconds": round(statistics.median(walls), 2),
        "counts": runs[-1].counts,
        "all_passed": all(r.counts["passed"] == len(r.scenarios) and r.scenarios for r in runs),
    }


def _kill_matrix(suite: str, workdir: Path, jobs: int) -> dict:
    generation, spec = REGISTRY.suite(suite)
    faults = generation.fault_catalogue(spec)

    def one(fault: str) -> tuple[str, dict]:
        return fault, kill_run(REGISTRY, suite, faults[fault], workdir / fault, _options(workdir)).row()

    started = time.perf_counter()
    matrix = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for fault, row in pool.map(one, list(faults)):
            matrix[fault] = row
    return {
        "faults": len(matrix),
        "killed": sum(1 for row in matrix.values() if row["killed"]),
        "survivors": sorted(f for f, row in matrix.items() if not row["killed"]),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "jobs": jobs,
        "matrix": matrix,
    }


def main(suite: str, description: str, goal: str) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=1, help="full-suite runs per mode (median reported)")
    parser.add_argument("--jobs", type=int, default=2, help="fault runs in parallel for the kill matrix")
    parser.add_argument("--no-kill-matrix", action="store_true", help="only time the suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ktbench-suite-bench-") as tmp:
        workdir = Path(tmp)
        # A first, untimed run compiles every module into the shared pycache (the environment may set
        # PYTHONDONTWRITEBYTECODE); the timed runs then measure the suite, not the compiler.
        warmup = run_suite(REGISTRY, suite, workdir=workdir / "warmup", options=_options(workdir))
        result: dict = {
            "benchmark": f"{suite}_suite",
            "goal": goal,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cold_first_run_seconds": round(warmup.wall_seconds, 2),
            "serial": _timed(suite, workdir, None, args.repeat),
            "parallel_n2": _timed(suite, workdir, 2, args.repeat),
        }
        if not args.no_kill_matrix:
            result["kill_matrix"] = _kill_matrix(suite, workdir, args.jobs)
    print(json.dumps(result, indent=2))
    return 0


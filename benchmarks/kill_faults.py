"""Kill a suite's catalogued faults and print the matrix as JSON: `python benchmarks/kill_faults.py --suite kt2
[FAULT ...] [--parallel N]`.

For each fault the embedded reference simulator runs with that defect and the scenarios that carry a
requirement the fault declares it breaks run against it (ktbench.runner.kill_matrix); a row says whether a
scenario failed naming one of those requirements, which ones did, and what else failed or broke.  Exit code
1 when a fault survives.  The bench's own tests (tests/test_suite_kill_matrix*.py) assert the same matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ktbench.cli.registry import build_registry  # noqa: E402
from ktbench.runner.kill_matrix import kill_run  # noqa: E402
from ktbench.runner.suite_run import RunOptions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="kt2")
    parser.add_argument("--parallel", type=int, default=2, help="faults run at the same time (default 2)")
    parser.add_argument("faults", nargs="*", help="fault names (default: every fault of the suite's catalogue)")
    args = parser.parse_args()
    registry = build_registry()
    generation, spec = registry.suite(args.suite)
    catalogue = generation.fault_catalogue(spec)
    names = args.faults or list(catalogue)
    options = RunOptions(capture_output=True, quiet=True, timeout=600)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ktbench-kill-") as tmp:
        def one(name: str):
            return name, kill_run(registry, args.suite, catalogue[name], Path(tmp) / name, options)

        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            rows = {name: result.row() for name, result in pool.map(one, names)}
    survivors = sorted(n for n, row in rows.items() if not row["killed"])
    print(json.dumps({"suite": args.suite, "faults": len(rows), "killed": len(rows) - len(survivors),
                      "survivors": survivors, "wall_seconds": round(time.perf_counter() - started, 1),
                      "matrix": rows}, indent=2))
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())

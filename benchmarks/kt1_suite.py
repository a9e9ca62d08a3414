"""How long does the KT1 conformance suite take, and which faults does it catch?

The full suite against the embedded reference server (bench timers: 1 s claim timeout), serial and with
`-n 2`, then the kill matrix over simulators/kt1/faults.py (benchmarks/suite_bench.py does the work).

Usage: python benchmarks/kt1_suite.py [--repeat N] [--jobs J] [--no-kill-matrix]  -> JSON on stdout.
Goal: a full serial run under 15 s; every fault killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_bench import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main("kt1", __doc__.split("\n\n")[0], "full serial run under 15 s; every fault killed"))

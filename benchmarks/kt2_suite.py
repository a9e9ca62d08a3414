"""How long does the KT2 conformance suite take, and which faults does it catch?

The full suite against the embedded reference voorziening (https, access tokens of 3 s), serial and with
`-n 2`, then the kill matrix over simulators/kt2/faults.py (benchmarks/suite_bench.py does the work).

Usage: python benchmarks/kt2_suite.py [--repeat N] [--jobs J] [--no-kill-matrix]  -> JSON on stdout.
Goal: the full suite under 60 s with -n 2 on 2 cores; every fault killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite_bench import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main("kt2", __doc__.split("\n\n")[0], "full suite under 60 s with -n 2; every fault killed"))

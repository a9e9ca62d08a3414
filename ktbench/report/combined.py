"""One report over several suites (`ktbench run --suite all`): a combined summary.json and one JUnit file.

Each suite's run writes its own summary and JUnit file (kept as <name>-<suite>.<ext>); a pipeline that
publishes one file per job gets these merged copies.  The combined summary keeps every suite's summary
whole under `suites` and adds totals, so a dashboard reads one verdict and can still drill into each suite.
Allure needs no merging: every suite writes into the same results directory.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ktbench.report.summary_json import SCHEMA_VERSION

VERDICT_ORDER = ("configuration", "unreachable", "failed", "broken", "empty", "passed")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def combine_summaries(parts: Mapping[str, Path], out: Path, exit_codes: Mapping[str, int], exit_code: int) -> dict:
    suites = {name: _read(path) for name, path in parts.items()}
    counts = {"passed": 0, "failed": 0, "broken": 0, "skipped": 0, "total": 0}
    verdicts = []
    for data in suites.values():
        if data is None:
            verdicts.append("configuration")
            continue
        verdicts.append(str(data.get("verdict", "broken")))
        for key in counts:
            counts[key] += int((data.get("counts") or {}).get(key, 0))
    verdict = next((v for v in VERDICT_ORDER if v in verdicts), "broken")
    combined = {"schema": SCHEMA_VERSION, "suite": "all", "verdict": verdict, "exit_code": exit_code,
                "counts": counts, "exit_codes": dict(exit_codes), "suites": suites}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(combined, indent=2) + "\n", encoding="utf-8")
    return combined


def combine_junit(parts: Sequence[Path], out: Path) -> int:
    """<testsuites> holding every part's <testsuite> elements; returns how many testsuites it holds."""
    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in parts:
        if not path.is_file():
            continue
        tree = ET.parse(path).getroot()
        suites = [tree] if tree.tag == "testsuite" else list(tree.iter("testsuite"))
        for suite in suites:
            root.append(suite)
            for key in totals:
                totals[key] += int(suite.get(key, "0") or 0)
    for key, value in totals.items():
        root.set(key, str(value))
    out.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return len(root)

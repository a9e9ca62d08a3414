"""reports/out/summary.json: the machine-readable verdict of a run, for pipelines and dashboards.

Inferno users asked for years for machine-readable results (inferno-core#594,
#652); this file is small, stable and documented in reports/README.md.  It is
written when RunFinished arrives.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import ktbench
from ktbench.core.events import Event, RunFinished, ScenarioFinished
from ktbench.report.results import RunResults

SCHEMA_VERSION = 2


def _scenario(s: ScenarioFinished) -> dict[str, Any]:
    return {
        "nodeid": s.nodeid,
        "feature": s.feature,
        "name": s.name,
        "outcome": s.outcome,
        "requirements": list(s.requirements),
        "roles": list(s.roles),
        "tags": list(s.tags),
        "message": s.message,
        "error_type": s.error_type,
        "failed_requirement": s.failed_requirement,
        "checked_requirements": list(s.checked_requirements),
        "duration_seconds": round(s.duration, 3),
        "http_exchanges": s.http_exchanges,
        "validation_errors": s.validation_errors,
    }


def build_summary(results: RunResults) -> dict[str, Any]:
    run = results.run
    finished = results.finished
    requirements = {
        req: {"outcome": r.outcome, "counts": r.counts(), "scenarios": [s.nodeid for s in r.scenarios],
              "failed_by": [s.nodeid for s, o in r.outcomes() if o == "failed"]}
        for req, r in results.requirements().items()
    }
    counts = results.counts()
    return {
        "schema": SCHEMA_VERSION,
        "ktbench_version": ktbench.__version__,
        "python": platform.python_version(),
        "suite": run.suite if run else None,
        "target": {
            "name": run.target_name, "url": run.target_url, "kind": run.target_kind, "embedded": run.embedded,
        } if run else None,
        "started": run.at if run else None,
        "duration_seconds": round(finished.duration, 3) if finished else None,
        "verdict": results.verdict,
        "counts": {**counts, "total": sum(counts.values())},
        "requirements": requirements,
        "incomplete": results.incomplete(),
        "not_tested": dict(sorted(results.not_tested.items())),
        "untraced_scenarios": [s.nodeid for s in results.untraced()],
        "scenarios": [_scenario(s) for s in sorted(results.scenarios, key=lambda s: s.nodeid)],
    }


class JsonSummaryWriter:
    """Subscriber: collects results and writes the summary file on RunFinished."""

    def __init__(self, path: str | os.PathLike[str], results: RunResults | None = None) -> None:
        self.path = Path(path)
        self.results = results or RunResults()
        self._own_results = results is None

    def __call__(self, event: Event) -> None:
        if self._own_results:
            self.results(event)
        if isinstance(event, RunFinished):
            self.write()

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(build_summary(self.results), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)
        return self.path

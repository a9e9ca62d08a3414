"""Scenario outcomes of one run, aggregated per requirement.

The console and JSON summaries show the same numbers; computing them once here
keeps the two from disagreeing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ktbench.events import (
    OUTCOMES,
    Event,
    Outcome,
    RunFinished,
    RunStarted,
    ScenarioFinished,
)

UNREACHABLE_ERROR = "TargetUnreachable"


def combine_outcomes(outcomes: Iterable[Outcome]) -> Outcome:
    """A requirement's verdict from its scenarios' outcomes.

    failed beats broken (a definite non-conformance is the most useful fact),
    broken beats passed (we could not check everything), skipped only when
    nothing ran.
    """
    seen = set(outcomes)
    for outcome in ("failed", "broken", "passed"):
        if outcome in seen:
            return outcome  # type: ignore[return-value]
    return "skipped"


@dataclass
class RequirementResult:
    requirement: str
    scenarios: list[ScenarioFinished] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return combine_outcomes(s.outcome for s in self.scenarios)

    def counts(self) -> dict[str, int]:
        counter = Counter(s.outcome for s in self.scenarios)
        return {o: counter.get(o, 0) for o in OUTCOMES}


class RunResults:
    """Collects RunStarted / ScenarioFinished / RunFinished events."""

    def __init__(self) -> None:
        self.run: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.scenarios: list[ScenarioFinished] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted) and self.run is None:
            self.run = event
        elif isinstance(event, ScenarioFinished):
            self.scenarios.append(event)
        elif isinstance(event, RunFinished):
            self.finished = event

    def counts(self) -> dict[str, int]:
        counter = Counter(s.outcome for s in self.scenarios)
        return {o: counter.get(o, 0) for o in OUTCOMES}

    def requirements(self) -> dict[str, RequirementResult]:
        result: dict[str, RequirementResult] = {}
        for scenario in self.scenarios:
            for req in scenario.requirements:
                result.setdefault(req, RequirementResult(req)).scenarios.append(scenario)
        return dict(sorted(result.items()))

    def untraced(self) -> list[ScenarioFinished]:
        """Scenarios without any @req: tag (every scenario should trace to a requirement)."""
        return [s for s in self.scenarios if not s.requirements]

    @property
    def target_unreachable(self) -> bool:
        return any(s.error_type == UNREACHABLE_ERROR for s in self.scenarios)

    @property
    def verdict(self) -> str:
        """passed | failed | broken | unreachable | empty - what the run as a whole says."""
        counts = self.counts()
        if not self.scenarios:
            return "empty"
        if self.target_unreachable:
            return "unreachable"
        if counts["failed"]:
            return "failed"
        if counts["broken"]:
            return "broken"
        return "passed"

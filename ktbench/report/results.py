"""Scenario outcomes of one run, aggregated per requirement.

The console and JSON summaries show the same numbers; computing them once here
keeps the two from disagreeing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ktbench.core.events import (
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


def outcome_for(scenario: ScenarioFinished, requirement: str) -> Outcome | None:
    """What one scenario says about one of its requirements.

    A failed scenario fails only the requirement its failing check names; requirements it verified before
    that stay passed, and those it never got to are not judged by it (None).  A broken scenario could not
    tell, except for what it verified before it broke.
    """
    if scenario.outcome in ("passed", "skipped"):
        return scenario.outcome
    if scenario.outcome == "failed" and scenario.failed_requirement == requirement:
        return "failed"
    if requirement in scenario.checked_requirements:
        return "passed"
    return "broken" if scenario.outcome == "broken" else None


@dataclass
class RequirementResult:
    requirement: str
    scenarios: list[ScenarioFinished] = field(default_factory=list)

    def outcomes(self) -> list[tuple[ScenarioFinished, Outcome | None]]:
        return [(s, outcome_for(s, self.requirement)) for s in self.scenarios]

    @property
    def outcome(self) -> Outcome:
        return combine_outcomes(o for _, o in self.outcomes() if o is not None)

    def counts(self) -> dict[str, int]:
        counter = Counter(o for _, o in self.outcomes() if o is not None)
        return {o: counter.get(o, 0) for o in OUTCOMES}

    def skip_reasons(self) -> list[str]:
        return sorted({s.message for s, o in self.outcomes() if o == "skipped" and s.message})


class RunResults:
    """Collects RunStarted / ScenarioFinished / RunFinished events."""

    def __init__(self, not_tested: dict[str, str] | None = None) -> None:
        self.run: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.scenarios: list[ScenarioFinished] = []
        self.not_tested: dict[str, str] = dict(not_tested or {})   # catalogued requirements no scenario verifies

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
            reqs = set(scenario.requirements)
            if scenario.failed_requirement:
                reqs.add(scenario.failed_requirement)  # the suite's profile requirement is carried implicitly
            for req in sorted(reqs):
                result.setdefault(req, RequirementResult(req)).scenarios.append(scenario)
        return dict(sorted(result.items()))

    def incomplete(self) -> dict[str, list[str]]:
        """Requirements the selected scenarios were written to verify but did not, with why (skip reasons)."""
        return {req: r.skip_reasons() or ["its scenarios were skipped"]
                for req, r in self.requirements().items() if r.outcome == "skipped"}

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

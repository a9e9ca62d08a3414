"""The profile verdict at the end of a scenario: keyed on who sent each message, not on its direction.

Live validation reports every FHIR message of a scenario with its sender.  Findings at or above the run's
`--fail-on` threshold:

- in a message the **target** sent fail the scenario (`ProfileViolation`, naming the suite's profile
  requirement): for a server target those are its answers, for an application target its requests;
- in a message the **bench** sent make the scenario broken (`InvalidBenchMessage`): the bench built a bad
  message and cannot judge what came back - unless the scenario is tagged @invalid-request, which sends bad
  input on purpose.

Bench findings are judged first: a scenario that sent a bad message cannot judge the answer.  The first
line names the first finding (JUnit shows only that line); the rest lists them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from ktbench.core.errors import BenchError, RequirementFailed
from ktbench.core.events import Finding, ValidationReported
from ktbench.runner.tags import INVALID_REQUEST_TAG
from ktbench.validation_policy import ValidationPolicy

MAX_LISTED_FINDINGS = 10
TARGET, BENCH = "target", "bench"


class ProfileViolation(RequirementFailed):
    """A message the target sent breaks the profiles at or above --fail-on (the scenario FAILS)."""


class InvalidBenchMessage(BenchError):
    """A message the bench sent breaks the profiles: the bench built a bad message (the scenario is BROKEN)."""


def _finding_line(event: ValidationReported, finding: Finding) -> str:
    return (f"{finding.severity} {finding.rule} at {finding.location or '(document)'}: {finding.message} "
            f"({event.subject})")


def _listed(found: list[tuple[ValidationReported, Finding]]) -> str:
    lines = [f"  {_finding_line(event, f)}" for event, f in found[:MAX_LISTED_FINDINGS]]
    if len(found) > MAX_LISTED_FINDINGS:
        lines.append(f"  ... and {len(found) - MAX_LISTED_FINDINGS} more (see the validation attachments)")
    return "\n".join(lines)


def sender_of(event: ValidationReported) -> str:
    """Who sent the validated message; events without a sender follow the server-target convention."""
    if event.sender:
        return event.sender
    return {"request": BENCH, "response": TARGET}.get(event.direction, "")


def profile_verdict(validations: Iterable[ValidationReported], policy: ValidationPolicy, tags: Iterable[str],
                    requirement: str | None) -> BaseException | None:
    """The exception that ends a scenario whose exchanged messages break the profiles, or None."""
    tagset = {t.lstrip("@") for t in tags}
    blocking: dict[str, list[tuple[ValidationReported, Finding]]] = {TARGET: [], BENCH: []}
    for event in validations:
        sender = sender_of(event)
        if sender in blocking:
            blocking[sender] += [(event, f) for f in policy.blocking(event.findings)]
    threshold = f"--fail-on {policy.fail_on}"
    if blocking[BENCH] and INVALID_REQUEST_TAG not in tagset:
        found = blocking[BENCH]
        return InvalidBenchMessage(
            f"the bench sent a message that breaks the profiles: {_finding_line(*found[0])}; "
            f"{len(found)} finding(s) at or above {threshold} in messages the bench sent (a bench defect; tag "
            f"the scenario @{INVALID_REQUEST_TAG} if it sends bad input on purpose):\n" + _listed(found))
    if blocking[TARGET]:
        found = blocking[TARGET]
        text = (f"the target's message breaks the profiles: {_finding_line(*found[0])}; {len(found)} finding(s) "
                f"at or above {threshold} in messages the target sent:\n" + _listed(found))
        return ProfileViolation(requirement, text) if requirement else AssertionError(text)
    return None

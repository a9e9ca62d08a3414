"""The xdist relay: finished scenarios and learned secrets travel from each worker to the controller.

Workers emit their own events (Allure attachments are written where the step runs); the summaries are the
controller's, so every worker hands its ScenarioFinished events and the secrets its redactor learned
(tokens, codes) to the controller through `workeroutput`, where they are replayed on the controller's stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from ktbench.core.events import event_from_dict, to_dict
from ktbench.runner.state import RunState

_WORKER_SCENARIOS = "ktbench_scenarios"
_WORKER_SECRETS = "ktbench_learned_secrets"


def hand_over(config: pytest.Config, state: RunState) -> None:
    """Worker side, at session finish."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None and state.relay is not None:
        workeroutput[_WORKER_SCENARIOS] = [to_dict(e) for e in state.relay.events]
        workeroutput[_WORKER_SECRETS] = sorted(state.redactor.known_secrets)


def take_over(node: Any, state: RunState) -> None:
    """Controller side, when a worker goes down."""
    output = getattr(node, "workeroutput", {}) or {}
    for data in output.get(_WORKER_SCENARIOS, []):
        state.events.emit(event_from_dict(data))
    for secret in output.get(_WORKER_SECRETS, []):
        state.redactor.learn(secret)

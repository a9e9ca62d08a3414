"""What one run and one scenario hold while pytest runs them (kept in pytest's stash, never in globals).

Under pytest-xdist every worker has its own RunState; finished scenarios travel to the controller through
the xdist relay, where the summaries are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ktbench.core.events import EventRecorder, EventStream, HttpExchange, Outcome, ValidationReported
from ktbench.core.redact import Redactor
from ktbench.runner.tags import TagExpression
from ktbench.validation_policy import ValidationPolicy

TAGS_ATTR = "_ktbench_tags"
CONFIGS: list[pytest.Config] = []  # the config(s) being configured; pytest-bdd's tag hook does not get one


@dataclass
class ItemState:
    name: str
    feature: str
    tags: tuple[str, ...] = ()
    outcome: Outcome | None = None
    message: str = ""
    error_type: str | None = None
    failed_requirement: str | None = None
    checked: set[str] = field(default_factory=set)    # requirements whose checks passed
    started: float = field(default_factory=time.perf_counter)
    step_started: float = 0.0
    open_step: tuple[str, str] | None = None  # (keyword, text) of a step that started and did not finish
    http_exchanges: int = 0
    validation_errors: int = 0
    validations: list[ValidationReported] = field(default_factory=list)  # live validation of its exchanges
    exchanges: list[HttpExchange] = field(default_factory=list)          # its HTTP exchanges (redacted)
    step_failed: bool = False
    checks_scope: Any = None                  # the open ktbench.core.requirements scope (entered in setup)


@dataclass
class RunState:
    active: bool
    is_worker: bool
    suite: str = ""
    suite_spec: Any = None                    # ktbench.core.generation.SuiteSpec
    generation: Any = None
    kind: Any = None                          # ktbench.core.generation.TargetKind
    target: Any = None                        # ktbench.targets.Target
    profile_requirement: str | None = None
    implicit_requirements: tuple[str, ...] = ()   # carried by every scenario (profile and exchange rules)
    exchange_rules: Any = None                # the suite's exchange check, imported from SuiteSpec.exchange_rules
    tag_expression: TagExpression | None = None
    keep_going: bool = False
    slow: bool = False                        # --kt-slow: wait for long timers of a real server
    validator: Callable[[bytes, str | None], Any] | None = None
    policy: ValidationPolicy = field(default_factory=ValidationPolicy)
    summary_path: Path | None = None
    events: EventStream = field(default_factory=EventStream)
    redactor: Redactor = field(default_factory=Redactor)
    relay: EventRecorder | None = None
    console_text: list[str] = field(default_factory=list)
    current: ItemState | None = None
    started: float = field(default_factory=time.perf_counter)
    results: Any = None
    ndjson: Any = None
    catalogue: Any = None                     # ktbench.core.requirements.Catalogue of the suite, if any


RUN = pytest.StashKey[RunState]()
ITEM = pytest.StashKey[ItemState]()


def run_state(config: pytest.Config) -> RunState:
    state = config.stash.get(RUN, None)
    if state is None:  # plugin registered after configure (should not happen); behave inert
        state = RunState(active=False, is_worker=hasattr(config, "workerinput"))
        config.stash[RUN] = state
    return state


def item_state(item: pytest.Item) -> ItemState:
    ist = item.stash.get(ITEM, None)
    if ist is None:
        tags = tuple(getattr(getattr(item, "obj", None), TAGS_ATTR, ()))
        doc = (getattr(getattr(item, "obj", None), "__doc__", None) or "").strip()
        feature, _, name = doc.partition(": ")
        ist = ItemState(name=name or item.name, feature=feature if name else "", tags=tags)
        item.stash[ITEM] = ist
    return ist

"""Configuring a run: load the generations, resolve the target and suite, subscribe the report writers.

Inert unless `--kt-target` or `--kt-suite` is given, so the bench's own tests are unaffected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ktbench.core.errors import ConfigurationError
from ktbench.core.events import (
    Event,
    EventRecorder,
    HttpExchange,
    RunFinished,
    ScenarioFinished,
    ValidationReported,
)
from ktbench.core.generation import import_object, registry_of
from ktbench.core.redact import Redactor
from ktbench.core.requirements import load_catalogue
from ktbench.runner import allure_bridge
from ktbench.runner.options import load_validator
from ktbench.runner.state import CONFIGS, RUN, RunState
from ktbench.runner.tags import TagExpression, TagExpressionError
from ktbench.targets.reader import resolve_target
from ktbench.validation_policy import PolicyError, load_policy


def pytest_configure(config: pytest.Config) -> None:
    CONFIGS.append(config)
    config.addinivalue_line("markers", "allure_label: allure label marker (set from Gherkin tags by ktbench)")
    opt = config.option
    spec = getattr(opt, "kt_target", None)
    suite_name = getattr(opt, "kt_suite", None)
    state = RunState(active=spec is not None or suite_name is not None, is_worker=hasattr(config, "workerinput"))
    config.stash[RUN] = state
    if not state.active:
        return
    try:
        _configure_run(config, state, spec, suite_name)
    except (ConfigurationError, PolicyError, TagExpressionError) as exc:
        raise pytest.UsageError(str(exc)) from None
    _subscribe_writers(config, state)
    if config.option.kt_progress and not state.is_worker:
        from ktbench.runner.progress import ProgressLines

        config.pluginmanager.register(ProgressLines(config), "ktbench-progress")


def _configure_run(config: pytest.Config, state: RunState, spec: str | None, suite_name: str | None) -> None:
    opt = config.option
    paths = list(opt.kt_generations) or list(config.getini("kt_generations"))
    if not paths:
        raise ConfigurationError("no ktbench generation to load: pass --kt-generation module:attr "
                                 "(`ktbench run` does this) or set kt_generations in the pytest ini")
    registry = registry_of(paths)
    if suite_name is not None:
        generation, suite = registry.suite(suite_name)
        kind_name = suite.kind
    else:
        suite = None
        kinds = registry.kinds()
        if len(kinds) > 1:  # a generation's application kinds need their suite named; its server kind does not
            kinds = {name: entry for name, entry in kinds.items() if entry[1].bench_is_client}
        if len(kinds) != 1:
            raise ConfigurationError("--kt-suite NAME is needed to know which target kind to expect")
        kind_name = next(iter(kinds))
    target = resolve_target(spec, opt.kt_targets, registry, kind=kind_name)
    if target is None:
        raise ConfigurationError("no target given: pass --kt-target URL|NAME "
                                 "(`ktbench run` without --target starts the embedded reference simulators)")
    generation, kind = registry.kind(target.kind)
    if suite is None:
        suite = next((s for s in generation.suites if s.kind == kind.name), None)
    elif suite.kind != target.kind:
        raise ConfigurationError(f"suite {suite.name!r} tests a {suite.kind} target, but {target.name!r} is a "
                                 f"{target.kind}")
    state.generation, state.kind, state.target, state.suite_spec = generation, kind, target, suite
    state.suite = suite.name if suite is not None else generation.name
    state.profile_requirement = suite.profile_requirement if suite is not None else None
    state.implicit_requirements = suite.implicit_requirements if suite is not None else ()
    if suite is not None and suite.exchange_rules:
        state.exchange_rules = import_object(suite.exchange_rules)
    if suite is not None and Path(suite.catalogue).is_file():
        state.catalogue = load_catalogue(suite.catalogue)
    state.tag_expression = TagExpression(opt.kt_tags) if opt.kt_tags else None
    state.keep_going = bool(opt.kt_keep_going)
    state.slow = bool(opt.kt_slow)
    state.redactor = Redactor(target.secrets())
    state.policy = load_policy(opt.kt_validation_policy, fail_on=opt.kt_fail_on)
    state.validator = load_validator(opt.kt_validate, kt=generation.validation_kt,
                                     suppressions=state.policy.suppressions)
    state.summary_path = Path(opt.kt_summary) if opt.kt_summary else None


def _subscribe_writers(config: pytest.Config, state: RunState) -> None:
    opt = config.option
    stream = state.events
    stream.subscribe(_ScenarioCounter(state), HttpExchange, ValidationReported)
    if opt.kt_events:
        from ktbench.report.ndjson import NdjsonEventWriter, worker_path

        worker_id = config.workerinput.get("workerid") if state.is_worker else None  # type: ignore[attr-defined]
        state.ndjson = NdjsonEventWriter(worker_path(opt.kt_events, worker_id))
        stream.subscribe(state.ndjson)
    if allure_bridge.alluredir(config):
        from ktbench.report.allure_writer import AllureAttachmentWriter

        stream.subscribe(AllureAttachmentWriter(), HttpExchange, ValidationReported)
    if state.is_worker:
        state.relay = EventRecorder(stream, ScenarioFinished)
        return
    from ktbench.report.console import ConsoleSummary
    from ktbench.report.results import RunResults
    from ktbench.report.summary_json import JsonSummaryWriter

    not_tested = state.catalogue.not_tested() if state.catalogue is not None else {}
    state.results = RunResults(not_tested=not_tested)
    stream.subscribe(state.results)
    if state.summary_path is not None:
        stream.subscribe(JsonSummaryWriter(state.summary_path, state.results), RunFinished)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    width = getattr(getattr(terminal, "_tw", None), "fullwidth", 100) or 100
    color = bool(getattr(getattr(terminal, "_tw", None), "hasmarkup", False))
    stream.subscribe(ConsoleSummary(state.console_text.append, state.results, width=min(width, 140),
                                    color=color), RunFinished)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in CONFIGS:
        CONFIGS.remove(config)
    state = config.stash.get(RUN, None)
    if state is not None and state.ndjson is not None:
        state.ndjson.close()


class _ScenarioCounter:
    """Counts exchanges and validation errors of the scenario that is running; keeps its validations."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def __call__(self, event: Event) -> None:
        current = self.state.current
        if current is None:
            return
        if isinstance(event, HttpExchange):
            current.http_exchanges += 1
            current.exchanges.append(event)
        elif isinstance(event, ValidationReported):
            current.validation_errors += len(event.errors)
            if event.direction in ("request", "response"):
                current.validations.append(event)

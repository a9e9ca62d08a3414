"""The bridge to allure-pytest-bdd: labels from tags, run-level files, and scenarios it never saw.

allure-pytest-bdd reports one test per scenario with its Gherkin steps.  The bench adds: requirement and
role labels from @req:/@role: tags, exactly one `parentSuite`/`suite`/`feature`/`story` per scenario (so
every scenario appears once per feature and no total double counts), the target as a parameter, the
Environment widget, failure categories, a result for scenarios whose setup failed or skipped (pytest-bdd
never started them, so Allure has nothing), and one listing the catalogue's not-tested requirements.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ktbench.runner.state import ItemState, RunState
from ktbench.runner.tags import REQUIREMENT_PREFIX


def alluredir(config: pytest.Config) -> str | None:
    return getattr(config.option, "allure_report_dir", None)


def mark_tag(function: Any, tag: str) -> Any:
    """`req:X` / `role:X` (any `prefix:value`): Allure labels instead of an (invalid) pytest marker."""
    prefix, _, value = tag.partition(":")
    label = {REQUIREMENT_PREFIX: "requirement"}.get(prefix, prefix)
    function = pytest.mark.allure_label(value, label_type=label)(function)
    return pytest.mark.allure_label(tag, label_type="tag")(function)


def label_scenario(state: RunState, ist: ItemState) -> None:
    """One feature, one story per scenario: the Behaviors tree counts each scenario exactly once.  Every
    requirement it carries is a `requirement` label (the requirement view may list it under each)."""
    import allure

    from ktbench.runner.tags import split_tags

    allure.dynamic.label("parentSuite", f"{state.suite} suite")
    allure.dynamic.label("suite", ist.feature)
    requirements = split_tags(ist.tags)[0]
    if requirements:
        allure.dynamic.story(requirements[0])
    if state.target is not None:
        allure.dynamic.parameter("target", state.target.name)


def write_run_files(config: pytest.Config, state: RunState) -> None:
    """environment.properties (which target was tested: a reviewer's first question) and categories.json."""
    directory = alluredir(config)
    if not directory or state.is_worker or state.target is None:
        return
    from ktbench.report.allure_writer import (
        environment_values,
        install_categories,
        write_environment,
    )

    write_environment(directory, environment_values(state.suite, state.target))
    categories = _categories_file(config)
    if categories is not None:
        install_categories(directory, categories)


def _categories_file(config: pytest.Config) -> Path | None:
    for root in (Path(str(config.rootpath)), Path(__file__).resolve().parents[2]):
        candidate = root / "reports" / "categories.json"
        if candidate.is_file():
            return candidate
    return None


def attach_final_check(config: pytest.Config, state: RunState, keyword: str, text: str,
                       problem: BaseException) -> None:
    """An end-of-scenario check (profiles, exchange rules) as a final Allure step with what it found
    attached; re-raises."""
    if alluredir(config):
        import allure

        with allure.step(f"{keyword} {text}"):
            allure.attach(state.redactor.text(str(problem)), name="findings that decide the verdict",
                          attachment_type=allure.attachment_type.TEXT)
            raise problem
    raise problem


def write_not_tested(config: pytest.Config, state: RunState) -> None:
    """One informational result listing the requirements the suite's catalogue says it does not test, with
    why: sign-off must see what is out of scope."""
    directory = alluredir(config)
    if not directory or state.is_worker or state.catalogue is None:
        return
    not_tested = state.catalogue.not_tested()
    if not not_tested:
        return
    from allure_commons.utils import now

    from ktbench.report.allure_writer import write_unstarted_scenario

    lines = [f"{req}: {reason}" for req, reason in sorted(not_tested.items())]
    stamp = now()
    write_unstarted_scenario(
        directory, name=f"Not tested by this suite: {len(lines)} catalogued requirement(s)",
        full_name=f"{state.suite}:catalogue:not-tested", status="skipped", message="\n".join(lines), trace="",
        labels=[("parentSuite", f"{state.suite} suite"), ("suite", "Catalogue"), ("feature", "Catalogue"),
                ("story", "not tested")] + [("requirement", req) for req in sorted(not_tested)],
        steps=[], parameters=[], start_ms=stamp, stop_ms=stamp)


def primitive_step_arguments(step_func_args: dict[str, Any]) -> dict[str, Any]:
    """The step's own arguments (parsed from its text), without the fixtures it also receives: allure-pytest-bdd
    writes every argument's repr() as a step parameter, which would put `<Kt1World ...>` in the report."""
    return {k: v for k, v in step_func_args.items() if v is None or isinstance(v, (str, int, float, bool))}


def _scenario_template(item: pytest.Item) -> Any:
    """pytest-bdd's scenario template of a test function (None for plain tests or other pytest-bdd versions)."""
    try:
        from pytest_bdd.scenario import scenario_wrapper_template_registry
    except ImportError:  # pragma: no cover - pytest-bdd internals moved
        return None
    try:
        return scenario_wrapper_template_registry.get(getattr(item, "obj", None))
    except TypeError:
        return None


def write_unstarted(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[Any], ist: ItemState,
                    state: RunState, skip_reason: str) -> None:
    """Setup failed or skipped: pytest-bdd never started the scenario, so allure-pytest-bdd has no test case."""
    from allure_commons.utils import now, represent

    from ktbench.report.allure_writer import write_unstarted_scenario

    template = _scenario_template(item)
    if template is not None:
        name = template.name
        feature = template.feature.name or Path(template.feature.filename).name
        full_name = f"{os.path.normpath(template.feature.rel_filename)}:{template.name}"
        steps = [f"{step.keyword} {step.name}" for step in template.steps]
    else:
        name, feature, full_name, steps = ist.name, ist.feature or item.nodeid, item.nodeid, []
    ist.name, ist.feature = name, feature
    labels = [("feature", feature), ("suite", feature), ("parentSuite", f"{state.suite} suite"),
              ("framework", "pytest-bdd")]
    for mark in item.iter_markers(name="allure_label"):
        label_type = mark.kwargs.get("label_type")
        labels += [(label_type, str(value)) for value in mark.args if label_type]
    status = "skipped" if report.skipped else "broken"
    message = skip_reason if report.skipped else (call.excinfo.exconly() if call.excinfo else "")
    parameters = [("target", represent(state.target.name))] if state.target is not None else []
    stop = now()
    write_unstarted_scenario(
        alluredir(item.config) or "", name=name, full_name=full_name, status=status,
        message=state.redactor.text(message), trace=state.redactor.text(str(report.longrepr or "")),
        labels=labels, steps=steps, parameters=parameters,
        start_ms=stop - int(report.duration * 1000), stop_ms=stop,
    )

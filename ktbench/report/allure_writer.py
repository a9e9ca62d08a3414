"""Allure output fed by the event stream: attachments per step, plus run-level files.

`AllureAttachmentWriter` attaches each HTTP exchange and each validation report
to the Allure step that is running when the event is emitted (allure-pytest-bdd
keeps the Gherkin step open while its function runs).  `write_environment` and
`install_categories` add the Environment widget (which target and URL were
tested: the first thing a reviewer of a report asks) and the failure categories
(target unreachable / bench error / conformance failure).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ktbench.core.events import Event, HttpExchange, ValidationReported
from ktbench.report.formatting import (
    exchange_title,
    format_exchange,
    format_findings,
    validation_title,
)

Attach = Callable[..., Any]


def _default_attach() -> Attach:
    import allure

    def attach(body: str, name: str) -> None:
        allure.attach(body, name=name, attachment_type=allure.attachment_type.TEXT)

    return attach


class AllureAttachmentWriter:
    """Subscriber: HttpExchange and ValidationReported -> text attachments on the current Allure step."""

    def __init__(self, attach: Attach | None = None) -> None:
        self._attach = attach or _default_attach()

    def __call__(self, event: Event) -> None:
        if isinstance(event, HttpExchange):
            self._attach(format_exchange(event), name=exchange_title(event))
        elif isinstance(event, ValidationReported):
            self._attach(format_findings(event), name=validation_title(event))


def _escape_property(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=").replace(":", "\\:"))


def write_environment(alluredir: str | Path, values: Mapping[str, str]) -> Path:
    """environment.properties: shown as the Environment widget of the Allure report."""
    path = Path(alluredir) / "environment.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape_property(k.replace(' ', '.'))}={_escape_property(str(v))}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def environment_values(suite: str, target: Any) -> dict[str, str]:
    """What the Environment widget shows about a run: suite, target (name, URL, kind), domain, bench version."""
    import ktbench

    values = {"Suite": suite, "Target": target.name, "Target.URL": target.url, "Target.kind": target.kind,
              "Target.embedded": str(target.embedded).lower(), "ktbench": ktbench.__version__}
    domain = target.setting("domain")
    if domain:
        values["Domain"] = domain
    return values


def install_categories(alluredir: str | Path, categories_file: str | Path) -> Path | None:
    """Copy categories.json into the results directory (Allure reads it from there)."""
    source = Path(categories_file)
    if not source.is_file():
        return None
    json.loads(source.read_text(encoding="utf-8"))  # refuse to install a broken file
    target = Path(alluredir) / "categories.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


# Files allure-pytest-bdd and this module write into a results directory.
_RESULT_PATTERNS = ("*-result.json", "*-container.json", "*-attachment*", "environment.properties",
                    "categories.json", "executor.json")


def clean_results_dir(alluredir: str | Path) -> int:
    """Delete a previous run's result files, keeping anything else (e.g. a copied `history/` for trends).

    This replaces `--clean-alluredir`, which races between pytest-xdist workers.
    """
    root = Path(alluredir)
    if not root.is_dir():
        return 0
    removed = 0
    for pattern in _RESULT_PATTERNS:
        for path in root.glob(pattern):
            if path.is_file():
                path.unlink()
                removed += 1
    return removed


def write_unstarted_scenario(
    alluredir: str | Path,
    *,
    name: str,
    full_name: str,
    status: str,
    message: str,
    trace: str,
    labels: list[tuple[str, str]],
    steps: list[str],
    parameters: list[tuple[str, str]],
    start_ms: int,
    stop_ms: int,
) -> None:
    """An Allure result for a scenario whose fixtures failed (or skipped) before it started.

    allure-pytest-bdd opens a test case only when pytest-bdd starts the scenario, so a scenario whose
    setup fails would be missing from the report altogether; this writes it, BROKEN (or SKIPPED), with
    its Gherkin steps shown as not run.  Ids follow allure-pytest-bdd's so history lines up.
    """
    from allure_commons.logger import AllureFileLogger
    from allure_commons.model2 import (
        Label,
        Parameter,
        StatusDetails,
        TestResult,
        TestStepResult,
    )
    from allure_commons.utils import md5, uuid4

    test_case_id = md5(full_name)
    result = TestResult(
        uuid=uuid4(),
        name=name,
        fullName=full_name,
        testCaseId=test_case_id,
        historyId=f"{test_case_id}.{md5(*(value for _, value in sorted(parameters)))}",
        status=status,
        statusDetails=StatusDetails(message=message, trace=trace or None),
        labels=[Label(name=k, value=v) for k, v in labels],
        parameters=[Parameter(name=k, value=v) for k, v in parameters],
        steps=[TestStepResult(name=text, status="skipped", start=start_ms, stop=start_ms) for text in steps],
        start=start_ms,
        stop=stop_ms,
    )
    AllureFileLogger(alluredir).report_result(result)

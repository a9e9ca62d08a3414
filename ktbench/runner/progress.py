"""The console a tester reads: one line per finished scenario, with its feature and a running count.

pytest's own progress (dots per Python file) means nothing to a tester; with `--kt-progress` (what `ktbench
run` passes) the controller prints, as each scenario finishes - also under pytest-xdist, where the workers'
reports arrive at the controller -

    [ 12/100] PASSED  The claim cycle › A claimed message is not handed out twice
    [ 13/100] FAILED  The claim cycle › Messages are claimed oldest first
              KT1-CLAIM-ORDER: the first claim should hand out the oldest message ...
    [ 14/100] SKIPPED Webhooks › The observer's webhook ... - the target declares no webhook receiver ...

A failure shows the requirement it blames and one sentence; the traceback only with `ktbench run --debug`.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from ktbench.report.junit import OUTCOME_PROPERTY

SCENARIO = "ktbench.scenario"
FEATURE = "ktbench.feature"
LINE = "ktbench.line"
_STYLE = {"passed": "green", "failed": "bold red", "broken": "yellow", "skipped": "dim"}


def first_sentence(text: str, limit: int = 240) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    for prefix in ("ktbench.core.errors.", "AssertionError: ", "Failed: ", "Skipped: "):
        line = line.replace(prefix, "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def note_scenario(report: pytest.TestReport, name: str, feature: str, message: str) -> None:
    """Worker side, on the teardown report: what the controller's progress line needs."""
    report.user_properties += [(SCENARIO, name), (FEATURE, feature), (LINE, first_sentence(message))]


def _props(report: pytest.TestReport) -> dict[str, str]:
    return {str(k): str(v) for k, v in getattr(report, "user_properties", ())}


def _render(text: Text, color: bool, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=color, color_system="standard" if color else None, no_color=not color,
            width=width, highlight=False, soft_wrap=True).print(text, end="")
    return buffer.getvalue()


class ProgressLines:
    """Registered on the controller by ktbench.runner.configure when --kt-progress is given."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.total = 0
        self.done = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.total = max(self.total, len(ids))

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """pytest's own letters (dots per file) are left out: the lines say it per scenario."""
        if report.when != "call":
            return None
        outcome = getattr(report, "kt_outcome", None) or report.outcome
        return ("error" if outcome == "broken" else outcome), "", outcome.upper()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        props = _props(report)
        if SCENARIO not in props:
            return
        self.done += 1
        total = max(self.total, self.done)
        outcome = props.get(OUTCOME_PROPERTY, "skipped")
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        tw = getattr(terminal, "_tw", None)
        color, width = bool(getattr(tw, "hasmarkup", False)), min(getattr(tw, "fullwidth", 120) or 120, 160)
        digits = len(str(total))
        line = Text(f"[{self.done:>{digits}}/{total}] ")
        line.append(f"{outcome.upper():<8}", style=_STYLE.get(outcome, ""))
        line.append(f"{props.get(FEATURE) or '-'} › {props[SCENARIO]}")
        if outcome == "skipped" and props.get(LINE):
            line.append(f" - {props[LINE]}", style="dim")
        terminal.write_line(_render(line, color, width))
        if outcome in ("failed", "broken") and props.get(LINE):
            indent = " " * (digits * 2 + 4)
            terminal.write_line(_render(Text(indent + props[LINE], style=_STYLE[outcome]), color, width))

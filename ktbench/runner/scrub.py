"""After the run: scrub every configured or learned secret from everything the run wrote.

allure-pytest-bdd writes the repr() of every step argument, captured logs and tracebacks into its results;
redaction at the source covers what the bench emits, this pass covers what others wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktbench.report.junit import mark_broken_as_errors
from ktbench.report.scrub import scrub_files
from ktbench.runner.allure_bridge import alluredir
from ktbench.runner.state import RunState


def scrub_outputs(config: pytest.Config, state: RunState) -> None:
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath:  # LogXML wrote the file in its (earlier) sessionfinish
        mark_broken_as_errors(xmlpath)
    outputs: list[Any] = [p for p in (alluredir(config), xmlpath, state.summary_path) if p]
    events = getattr(config.option, "kt_events", None)
    if events:
        path = Path(events)
        outputs += [path, *path.parent.glob(f"{path.stem}.gw*{path.suffix}")]
    scrub_files(outputs, state.redactor.known_secrets)

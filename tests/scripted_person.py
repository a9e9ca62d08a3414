"""A script standing in for the person at the console in interactive driver mode (used by both generations'
driver-form tests): run `ktbench run` against a target whose driver is "interactive", read the bench's output,
and carry out each `ktbench-action:` line by handing the action to the simulated application's trigger - as a
person would click in the application."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ktbench.driver.drivers import PROMPT_PREFIX
from ktbench.targets.writer import write_targets_file

REPO = Path(__file__).resolve().parents[1]


@dataclass
class InteractiveRun:
    code: int
    output: str
    answered: list[str] = field(default_factory=list)


def run_interactively(tmp_path: Path, started: Any, suite: str, tags: str, **settings: Any) -> InteractiveRun:
    """`started`: an embedded application target (its settings name the trigger the script uses)."""
    trigger = started.settings.trigger_url
    changed = started.settings.model_copy(update={"driver": "interactive", "trigger_url": None, **settings})
    target = started.model_copy(update={"settings": changed, "name": "scripted-person", "embedded": False})
    targets = write_targets_file(tmp_path / "targets.toml", [target])
    command = [str(Path(sys.executable).parent / "ktbench"), "run", "--suite", suite, "--targets", str(targets),
               "--target", "scripted-person", "--tags", tags, "--alluredir", str(tmp_path / "allure"),
               "--junitxml", str(tmp_path / "junit.xml"), "--summary", str(tmp_path / "summary.json")]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    answered: list[str] = []
    lines: list[str] = []

    def person() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(PROMPT_PREFIX):
                action = json.loads(line[len(PROMPT_PREFIX):])
                httpx.post(trigger, json=action, timeout=30).raise_for_status()
                answered.append(action["action"])

    reader = threading.Thread(target=person, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    reader.join(timeout=10)
    return InteractiveRun(code, "".join(lines), answered)

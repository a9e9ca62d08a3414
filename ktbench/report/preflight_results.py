"""Allure and JUnit results for a run its preflight stopped.

When the preflight finds the target unreachable or the bench's set-up wrong, no scenario runs - and a CI
pipeline that publishes the Allure report or the JUnit file would otherwise show an empty page or a missing
file, which reads like "nothing to see".  This writes one BROKEN result per preflight problem instead, named
for what was checked, with a message the failure categories recognise (`TargetUnreachable` /
`TargetConfigError`), so the report says at a glance that this is a configuration verdict, not the target's
failure.  summary.json keeps no scenarios: none ran.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from ktbench.core.generation import PreflightProblem
from ktbench.report.allure_writer import install_categories, write_environment

FEATURE = "Preflight (configuration verdict, no scenario ran)"
_CHECKS = {
    "unreachable": ("The target can be reached", "TargetUnreachable"),
    "protocol": ("The target speaks the suite's protocol", "TargetConfigError"),
    "credentials": ("The targets file's credentials are accepted", "TargetConfigError"),
    "configuration": ("The bench's configuration is usable", "TargetConfigError"),
}


def check_title(problem: PreflightProblem) -> tuple[str, str]:
    """(what was checked, the error class name the categories match)."""
    return _CHECKS.get(problem.kind, _CHECKS["configuration"])


def write_allure(alluredir: Path, suite: str, target_name: str, problems: Sequence[PreflightProblem],
                 environment: Mapping[str, str], categories: Path | None) -> list[Path]:
    """One broken Allure result per problem, plus the Environment widget and the failure categories."""
    alluredir.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    written = []
    for index, problem in enumerate(problems):
        title, error = check_title(problem)
        history = hashlib.sha256(f"preflight:{suite}:{problem.kind}:{index}".encode()).hexdigest()[:32]
        result_id = str(uuid.uuid4())
        result = {
            "uuid": result_id, "historyId": history, "testCaseId": history,
            "name": f"Preflight: {title}", "fullName": f"preflight:{suite}:{problem.kind}",
            "status": "broken", "stage": "finished", "start": now, "stop": now,
            "statusDetails": {"message": f"{error}: {problem.message}"},
            "labels": [{"name": "parentSuite", "value": f"{suite} suite"}, {"name": "suite", "value": FEATURE},
                       {"name": "feature", "value": FEATURE}, {"name": "tag", "value": "preflight"}],
            "parameters": [{"name": "target", "value": target_name}],
        }
        path = alluredir / f"{result_id}-result.json"
        path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        written.append(path)
    write_environment(alluredir, environment)
    if categories is not None and categories.is_file():
        install_categories(alluredir, categories)
    return written


def write_junit(path: Path, suite: str, problems: Sequence[PreflightProblem]) -> Path:
    """A JUnit file with one <error> testcase per problem: dashboards show an error, not a missing file."""
    root = ET.Element("testsuites")
    element = ET.SubElement(root, "testsuite", name=f"ktbench {suite} preflight", tests=str(len(problems)),
                            errors=str(len(problems)), failures="0", skipped="0", time="0")
    for problem in problems:
        title, error = check_title(problem)
        case = ET.SubElement(element, "testcase", classname=f"preflight.{suite}", name=title, time="0")
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="ktbench.outcome", value="broken")
        ET.SubElement(case, "error", type=error, message=problem.message).text = problem.message
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path

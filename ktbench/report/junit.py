"""Post-processing of pytest's JUnit XML: broken scenarios become <error>, not <failure>.

pytest writes any exception raised during a test's call phase as <failure>.
For a conformance bench that conflates "the target violated a requirement"
with "we could not test" (target unreachable, bench or configuration error),
and CI dashboards (GitLab, Jenkins) show the two differently.  The pytest plugin
records the outcome as a testcase property (`ktbench.outcome`); this module
rewrites the matching <failure> elements to <error> and fixes the counters.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

OUTCOME_PROPERTY = "ktbench.outcome"


def _outcome(testcase: ET.Element) -> str | None:
    for prop in testcase.iterfind("properties/property"):
        if prop.get("name") == OUTCOME_PROPERTY:
            return prop.get("value")
    return None


def mark_broken_as_errors(path: str | Path) -> int:
    """Rewrite <failure> of broken testcases as <error>; returns how many were changed."""
    path = Path(path)
    if not path.is_file():
        return 0
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    changed_total = 0
    for suite in suites:
        changed = 0
        for testcase in suite.iter("testcase"):
            if _outcome(testcase) != "broken":
                continue
            for failure in testcase.findall("failure"):
                failure.tag = "error"
                changed += 1
        if changed:
            suite.set("failures", str(max(0, int(suite.get("failures", "0")) - changed)))
            suite.set("errors", str(int(suite.get("errors", "0")) + changed))
        changed_total += changed
    if changed_total:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed_total

"""Suppressions silence known findings without hiding them."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_validation_support import NS, careplan_message, errors, mutated
from ktbench.validation import SuppressionError, load_suppressions, validate_bytes, validate_resource

BROKEN = mutated(careplan_message(), lambda m: m["entry"][1]["content"].update(status="running"))
LOC = "Bundle.entry[1].content.status"


def _toml(rule: str, location: str, reason: str = "partner X sends it; ticket KT-12") -> str:
    return f'version = 1\n\n[[suppression]]\nrule = "{rule}"\nlocation = "{location}"\nreason = "{reason}"\n'


def test_unsuppressed_finding_makes_the_result_invalid() -> None:
    result = validate_resource(BROKEN, kt=1)
    assert errors(result) == [("kt1.binding", LOC)]
    assert not result.ok


@pytest.mark.parametrize(
    ("rule", "location"),
    [
        ("kt1.binding", LOC),  # exact
        ("kt1.*", "Bundle.entry[*].content.status"),  # globs; [ ] are literal
        ("kt1.binding", "re:^Bundle\\\\.entry\\\\[\\\\d+\\\\]\\\\.content\\\\.status$"),  # regex
    ],
    ids=["exact", "glob", "regex"],
)
def test_suppressed_finding_no_longer_invalidates_but_stays_visible(rule: str, location: str) -> None:
    sset = load_suppressions(_toml(rule, location))
    result = validate_resource(BROKEN, kt=1, suppressions=sset)
    assert result.ok, result.to_text()
    [finding] = [f for f in result.findings if f.rule == "kt1.binding"]
    assert finding.suppressed_reason == "partner X sends it; ticket KT-12"
    assert finding.severity == "error"  # the original severity is kept
    text = result.to_text()
    assert f"information [kt1.binding] {LOC}" in text and "suppressed error: partner X sends it" in text
    issue = next(i for i in result.to_operation_outcome()["issue"] if i["expression"] == [LOC])
    assert issue["severity"] == "information"
    assert "partner X sends it" in issue["diagnostics"]


def test_non_matching_suppression_changes_nothing() -> None:
    sset = load_suppressions(_toml("kt1.binding", "Bundle.entry[2].content.status"))
    result = validate_resource(BROKEN, kt=1, suppressions=sset)
    assert not result.ok
    assert all(f.suppressed_reason is None for f in result.findings)


def test_glob_brackets_are_literal() -> None:
    # "[1]" must not act as a character class matching "1"
    sset = load_suppressions(_toml("kt1.binding", "Bundle.entry1.content.status"))
    assert not validate_resource(BROKEN, kt=1, suppressions=sset).ok


def test_suppression_file_from_path_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "suppressions.toml"
    path.write_text(_toml("kt1.binding", LOC))
    assert validate_resource(BROKEN, kt=1, suppressions=path).ok
    assert validate_resource(BROKEN, kt=1, suppressions=str(path)).ok
    import json

    assert validate_bytes(json.dumps(BROKEN).encode(), suppressions=path.read_bytes()).ok


@pytest.mark.parametrize(
    "text",
    [
        'version = 2\n[[suppression]]\nrule="a"\nlocation="b"\nreason="c"\n',
        '[[suppression]]\nrule="a"\nlocation="b"\nreason="c"\n',
        'version = 1\n[[suppression]]\nrule="a"\nlocation="b"\n',
        'version = 1\n[[suppression]]\nrule="a"\nlocation="re:("\nreason="c"\n',
        "version = = 1",
    ],
    ids=["future-version", "no-version", "no-reason", "bad-regex", "bad-toml"],
)
def test_bad_suppression_files_are_rejected_clearly(text: str) -> None:
    with pytest.raises(SuppressionError):
        load_suppressions(text)


def test_missing_suppression_file(tmp_path: Path) -> None:
    with pytest.raises(SuppressionError, match="does not exist"):
        load_suppressions(tmp_path / "nope.toml")


def test_warnings_can_be_suppressed_too() -> None:
    quirky = mutated(careplan_message(), lambda m: m["entry"][2].update(link=m["entry"][2]["link"][0]))
    sset = load_suppressions(_toml("kt1.feed.link", "Bundle.entry[*].link", "Kick-ASS game"))
    result = validate_resource(quirky, kt=1, suppressions=sset)
    [f] = result.findings
    assert f.suppressed_reason == "Kick-ASS game" and f.effective_severity == "information"
    assert result.warnings == []
    assert NS  # the message is a KT1 message

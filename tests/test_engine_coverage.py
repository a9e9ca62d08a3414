"""`ktbench coverage`: requirement x scenarios x last verdict, Markdown and CSV, listing what has no scenario."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from ktbench.cli import app
from ktbench.core.requirements import load_catalogue

REPO = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(app, ["coverage", *args])


def test_markdown_lists_every_requirement_with_actor_conformance_and_scenarios(tmp_path: Path) -> None:
    result = invoke("--suite", "kt1", "--summary", str(tmp_path / "none.json"))
    assert result.exit_code == 0, result.output
    catalogue = load_catalogue(REPO / "features" / "kt1" / "requirements.toml")
    lines = [line for line in result.stdout.splitlines() if line.startswith("| KT1-")]
    assert len(lines) == len(catalogue.requirement)
    conformance = next(line for line in lines if line.startswith("| KT1-META-CONFORMANCE |"))
    assert "| server | SHALL |" in conformance and "| not run |" in conformance
    tls = next(line for line in lines if line.startswith("| KT1-SEC-TLS |"))
    assert "| not tested |" in tls and "TLS scanner" in tls


def test_csv_with_the_last_verdict_from_a_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"suite": "kt1", "requirements": {
        "KT1-META-CONFORMANCE": {"outcome": "failed"}, "KT1-META-OAUTH-URIS": {"outcome": "passed"}}}))
    result = invoke("--suite", "kt1", "--summary", str(summary), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {r["requirement"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["KT1-META-CONFORMANCE"]["last verdict"] == "failed"
    assert rows["KT1-META-OAUTH-URIS"]["last verdict"] == "passed"
    assert int(rows["KT1-MSG-ACCEPT"]["scenarios"]) > 5
    assert rows["KT1-SSO-ID-TOKEN"]["conformance"] == "MAY" and rows["KT1-SSO-ID-TOKEN"]["last verdict"] == "not tested"


def test_a_requirement_without_a_scenario_is_listed(tmp_path: Path) -> None:
    from ktbench.cli.coverage import coverage_rows, render_markdown

    catalogue = load_catalogue(REPO / "features" / "kt1" / "requirements.toml")
    rows = coverage_rows(catalogue, {}, None, "kt1")
    text = render_markdown(rows, "KT1")
    assert "without a scenario: KT1-META-CONFORMANCE" in text


def test_bad_input_is_a_clear_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args, message in ((("--suite", "kt9"), "unknown suite 'kt9'"),
                          (("--summary", str(bad)), "is not a readable summary"),
                          (("--out", str(tmp_path)), "cannot write")):
        result = invoke(*args)
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert "Traceback" not in result.output
    out = tmp_path / "cov.md"
    assert invoke("--out", str(out), "--summary", str(tmp_path / "none.json")).exit_code == 0
    assert out.read_text().startswith("# Requirement coverage: KT1.3 server")

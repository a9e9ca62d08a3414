"""`ktbench coverage`: requirement x scenarios x last verdict, as Markdown or CSV.

Inferno publishes requirement coverage sheets; a test team signing a release off wants the same: every
catalogued requirement with its actor and conformance level, the scenarios that verify it, and what the
last run (a summary.json) said - and the requirements no scenario verifies, with the reason.

Exit codes: 0 printed; 2 an unknown suite, an unreadable catalogue or summary.
"""

from __future__ import annotations

import csv
import io
import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_SUMMARY = Path("reports") / "out" / "summary.json"


class Format(str, Enum):
    markdown = "markdown"
    csv = "csv"


def coverage_rows(catalogue: Any, scenarios: dict[str, list[str]], summary: dict[str, Any] | None,
                  suite: str) -> list[dict[str, str]]:
    """One row per catalogued requirement."""
    verdicts = {}
    if summary is not None and summary.get("suite") == suite:
        verdicts = {req: data.get("outcome", "") for req, data in (summary.get("requirements") or {}).items()}
    rows = []
    for req in catalogue.requirement:
        names = scenarios.get(req.id, [])
        if req.not_tested:
            verdict = "not tested"
        elif not names:
            verdict = "no scenario"
        else:
            verdict = verdicts.get(req.id, "not run")
        rows.append({"requirement": req.id, "actor": req.actor, "conformance": req.conformance,
                     "scenarios": str(len(names)), "scenario names": "; ".join(names),
                     "last verdict": verdict, "note": req.not_tested or ""})
    return rows


def scenarios_by_requirement(features: Path) -> dict[str, list[str]]:
    from pytest_bdd.parser import FeatureParser

    found: dict[str, list[str]] = {}
    for path in sorted(Path(features).glob("*.feature")):  # apps/ below holds other suites
        feature = FeatureParser(str(path.parent), path.name).parse()
        for scenario in feature.scenarios.values():
            for tag in set(scenario.tags) | set(feature.tags):
                if tag.startswith("req:"):
                    found.setdefault(tag[4:], []).append(scenario.name)
    return found


def render_markdown(rows: list[dict[str, str]], title: str) -> str:
    columns = ["requirement", "actor", "conformance", "scenarios", "last verdict", "note"]
    out = [f"# Requirement coverage: {title}", "", "| " + " | ".join(columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        out.append("| " + " | ".join(row[c].replace("|", "\\|") for c in columns) + " |")
    missing = [r["requirement"] for r in rows if r["last verdict"] == "no scenario"]
    out += ["", f"{len(rows)} requirements; {len(missing)} without a scenario"
                + (f": {', '.join(missing)}" if missing else "")]
    return "\n".join(out) + "\n"


def render_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["requirement"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def coverage_command(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option("--suite", help="Suite whose catalogue to show.")] = "kt1",
    summary: Annotated[Path, typer.Option("--summary", help="A run's summary.json for the last verdict.")] =
        DEFAULT_SUMMARY,
    output_format: Annotated[Format, typer.Option("--format", help="markdown or csv.")] = Format.markdown,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print requirement x scenarios x last verdict for a suite (Markdown or CSV)."""
    from ktbench.cli.registry import registry_from_context
    from ktbench.core.errors import ConfigurationError
    from ktbench.core.requirements import load_catalogue

    try:
        registry = registry_from_context(ctx)
        _, spec = registry.suite(suite)
        catalogue = load_catalogue(spec.catalogue)
    except ConfigurationError as exc:
        typer.secho(f"ktbench coverage: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    data = None
    if summary.exists() and not summary.is_file():
        typer.secho(f"ktbench coverage: {summary} is not a readable summary (not a file)", err=True,
                    fg=typer.colors.RED)
        raise typer.Exit(2)
    if summary.is_file():
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            typer.secho(f"ktbench coverage: {summary} is not a readable summary: {exc}", err=True,
                        fg=typer.colors.RED)
            raise typer.Exit(2) from None
    scenarios = scenarios_by_requirement(spec.features)
    every = sorted({name for names in scenarios.values() for name in names})
    for req in spec.implicit_requirements:  # checked on every exchange of every scenario (profiles, exchange rules)
        scenarios[req] = every
    rows = coverage_rows(catalogue, scenarios, data, spec.name)
    text = render_csv(rows) if output_format is Format.csv else render_markdown(rows, spec.title)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.secho(f"ktbench coverage: cannot write {out}: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    typer.echo(f"ktbench coverage: wrote {out}")

"""The end-of-run console summary: one row per requirement, then what went wrong and why.

pytest's own summary counts tests; a tester wants to know which Koppeltaal
requirements the target meets.  Broken scenarios (the bench could not test:
target unreachable, configuration, bench bug) are listed apart from failed
ones (the target violated a requirement) so nobody files a conformance defect
for a network problem.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ktbench.core.events import Event, RunFinished
from ktbench.report.results import RunResults

_STYLE = {"passed": "green", "failed": "bold red", "broken": "yellow", "skipped": "dim"}


def _first_line(text: str, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    line = line.replace("ktbench.core.errors.", "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def render_summary(results: RunResults, *, width: int = 100, color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, soft_wrap=False)
    run = results.run
    if run is not None:
        embedded = " (embedded reference server)" if run.embedded else ""
        console.print(f"ktbench suite [bold]{run.suite}[/] against target [bold]{run.target_name}[/] "
                      f"({run.target_url}){embedded}", soft_wrap=True)
    counts = results.counts()
    total = sum(counts.values())
    parts = [Text(f"{counts[o]} {o}", style=_STYLE[o]) for o in counts if counts[o]]
    line = Text(f"{total} scenario(s): ")
    line.append_text(Text(", ").join(parts) if parts else Text("none ran"))
    console.print(line)

    requirements = results.requirements()
    if requirements:
        table = Table(title="Requirements", title_justify="left", show_lines=False)
        table.add_column("Requirement")
        table.add_column("Verdict")
        for outcome in ("passed", "failed", "broken", "skipped"):
            table.add_column(outcome.capitalize(), justify="right")
        for req, r in requirements.items():
            c = r.counts()
            table.add_row(req, Text(r.outcome.upper(), style=_STYLE[r.outcome]),
                          *(str(c[o]) if c[o] else "" for o in ("passed", "failed", "broken", "skipped")))
        console.print(table)
    untraced = results.untraced()
    if untraced:
        console.print(f"[yellow]{len(untraced)} scenario(s) carry no @req: tag[/] "
                      f"(e.g. {untraced[0].nodeid})")
    for outcome, heading in (("failed", "Failed (target does not conform)"),
                             ("broken", "Broken (could not be tested)"),
                             ("skipped", "Skipped")):
        bad = [s for s in results.scenarios if s.outcome == outcome]
        if not bad:
            continue
        console.print(Text(heading + ":", style=_STYLE[outcome]))
        for s in sorted(bad, key=lambda s: s.nodeid):
            blamed = s.failed_requirement or ", ".join(s.requirements) or "no requirement"
            console.print(f"  - {s.feature}: {s.name} [{blamed}]", markup=False, soft_wrap=True)
            if s.message:
                console.print(f"      {_first_line(s.message)}", markup=False, soft_wrap=True)
    incomplete = results.incomplete()
    if incomplete:
        console.print(Text(f"Unverified ({len(incomplete)} selected requirement(s) whose scenarios were all "
                           "skipped; the run is incomplete):", style="yellow"))
        for req, reasons in incomplete.items():
            console.print(f"  - {req}: {'; '.join(reasons)}", markup=False, soft_wrap=True)
    if results.not_tested:
        console.print(Text(f"Not tested by this suite ({len(results.not_tested)} catalogued requirement(s)):",
                           style="dim"))
        for req, reason in sorted(results.not_tested.items()):
            console.print(f"  - {req}: {reason}", markup=False, soft_wrap=True)
    if results.target_unreachable:
        console.print("[yellow]The target was unreachable: check the URL, that it is running, and the network "
                      "(scenarios above are BROKEN, not failed).[/]", soft_wrap=True)
    return buffer.getvalue()


class ConsoleSummary:
    """Subscriber: renders the summary on RunFinished and hands the text to `write`."""

    def __init__(self, write: Callable[[str], None], results: RunResults | None = None, *,
                 width: int = 100, color: bool = False) -> None:
        self.write = write
        self.results = results or RunResults()
        self._own_results = results is None
        self.width = width
        self.color = color

    def __call__(self, event: Event) -> None:
        if self._own_results:
            self.results(event)
        if isinstance(event, RunFinished):
            self.write(render_summary(self.results, width=self.width, color=self.color))

"""Last line of defence: remove every known secret from the files a run wrote.

Redaction happens before events are created, but some text reaches reports by
other routes: an assertion message quoting a response, pytest's traceback
locals, a captured log line.  After the run the plugin passes every output file
(allure-results, JUnit XML, summary.json) through `scrub_files` with all
configured secrets (passwords, client secrets) and all secrets the client
learned from traffic (tokens, codes), so none of them survive in a report.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ktbench.core.redact import Redactor

_TEXT_SUFFIXES = {".json", ".txt", ".xml", ".properties", ".html", ".csv", ".log", ".uri", ""}


def _files(paths: Iterable[str | Path]) -> Iterable[Path]:
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from (f for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            yield path


def scrub_files(paths: Iterable[str | Path], secrets: Iterable[str]) -> int:
    """Replace known secrets in the given files/directories; returns the number of files changed."""
    redactor = Redactor(secrets)
    if not redactor.known_secrets:
        return 0
    changed = 0
    for path in _files(paths):
        if path.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        clean = redactor.scrub_known(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")
            changed += 1
    return changed

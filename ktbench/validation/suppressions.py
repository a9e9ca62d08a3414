"""Versioned suppression files: silence known findings without hiding them.

A test bench meets partners with known, accepted deviations (e.g. the KT1 JS
game's gender system).  Rather than weakening the profiles, a suppression names
the rule and the location pattern and says why; the finding then stays in the
output as information with that reason, and no longer makes the result invalid.

File format (TOML)::

    version = 1

    [[suppression]]
    rule = "kt1.binding"                               # exact id or glob (kt1.*)
    location = "Bundle.entry[*].content.gender*"      # glob: * and ? only; [ ] are literal
    reason = "Kick-ASS game sends the value-set URL as Coding.system"

    [[suppression]]
    rule = "kt2.cardinality"
    location = "re:^Task\\.owner$"                     # 're:' prefix = Python regular expression
    reason = "..."
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ktbench.core.tomlfile import parse_toml, read_toml
from ktbench.validation.findings import Finding

SUPPORTED_VERSIONS = (1,)


class SuppressionError(ValueError):
    """The suppression file cannot be used (syntax, version, missing fields)."""


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    if pattern.startswith("re:"):
        try:
            return re.compile(pattern[3:])
        except re.error as exc:
            raise SuppressionError(f"invalid regular expression in {what}: {exc}") from None
    return _glob_to_regex(pattern)


@dataclass(frozen=True, slots=True)
class Suppression:
    rule: str
    location: str
    reason: str
    _rule_re: re.Pattern[str]
    _loc_re: re.Pattern[str]
    _loc_is_regex: bool

    def matches(self, finding: Finding) -> bool:
        if not self._rule_re.match(finding.rule):
            return False
        if self._loc_is_regex:
            return self._loc_re.search(finding.location) is not None
        return self._loc_re.match(finding.location) is not None


@dataclass(frozen=True, slots=True)
class SuppressionSet:
    version: int
    items: tuple[Suppression, ...]
    source: str = "<memory>"

    def apply(self, findings: Iterable[Finding]) -> None:
        """Mark matching findings as suppressed (in place); the first matching entry wins."""
        for finding in findings:
            if finding.suppressed_reason is not None:
                continue
            for item in self.items:
                if item.matches(finding):
                    finding.suppressed_reason = item.reason
                    break

    def __len__(self) -> int:
        return len(self.items)


def make_suppression(rule: str, location: str, reason: str) -> Suppression:
    if not rule or not location or not reason:
        raise SuppressionError("a suppression needs a non-empty rule, location and reason")
    return Suppression(
        rule, location, reason, _compile(rule, "rule"), _compile(location, "location"), location.startswith("re:")
    )


def load_suppressions(source: str | Path | bytes | dict) -> SuppressionSet:
    """Load a suppression file (path), TOML text/bytes, or an already parsed dict."""
    origin = "<memory>"
    if isinstance(source, dict):
        data = source
    else:
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and "=" not in source):
            origin = str(source)
            data = read_toml(source, "suppression file", SuppressionError)
        else:
            raw = source.encode() if isinstance(source, str) else source
            data = parse_toml(raw, f"suppression file {origin}", SuppressionError)
    version = data.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise SuppressionError(
            f"suppression file {origin}: unsupported or missing version {version!r} (supported: {SUPPORTED_VERSIONS})"
        )
    raw_items = data.get("suppression", [])
    if not isinstance(raw_items, list):
        raise SuppressionError(f"suppression file {origin}: 'suppression' must be an array of tables")
    items = []
    for i, item in enumerate(raw_items):
        if not isinstance(item, dict):
            raise SuppressionError(f"suppression file {origin}: entry {i} is not a table")
        missing = [k for k in ("rule", "location", "reason") if not isinstance(item.get(k), str) or not item.get(k)]
        if missing:
            raise SuppressionError(f"suppression file {origin}: entry {i} lacks {', '.join(missing)}")
        items.append(make_suppression(item["rule"], item["location"], item["reason"]))
    return SuppressionSet(int(version), tuple(items), origin)


_by_path: dict[tuple[str, int], SuppressionSet] = {}


def coerce_suppressions(value) -> SuppressionSet | None:
    """Accept None, a SuppressionSet, a path/TOML text, a dict or an iterable of Suppression.

    A file named by path is parsed once per modification time (validators run per message).
    """
    if value is None or isinstance(value, SuppressionSet):
        return value
    if isinstance(value, Path) or (isinstance(value, str) and "\n" not in value and "=" not in value):
        try:
            key = (str(value), Path(value).stat().st_mtime_ns)
        except OSError:
            return load_suppressions(value)  # raises the clear "cannot read" error
        cached = _by_path.get(key)
        if cached is None:
            cached = _by_path[key] = load_suppressions(value)
        return cached
    if isinstance(value, (str, Path, bytes, dict)):
        return load_suppressions(value)
    items = tuple(value)
    if all(isinstance(i, Suppression) for i in items):
        return SuppressionSet(1, items)
    raise TypeError("suppressions must be a SuppressionSet, a path, TOML text or a list of Suppression")

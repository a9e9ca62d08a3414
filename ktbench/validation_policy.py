"""Which validation findings decide a scenario's verdict: the threshold (`--fail-on`) and the policy file.

Live validation (ktbench.http.client) reports findings on every exchange; this module
says what they mean for the verdict, so the validator's profiles stay the same
for every partner while a run can still be told "this rule is only a warning
here" or "this deviation is known and accepted":

* `--fail-on error|warning|never` is the threshold: findings at or above it
  decide the verdict (a response finding fails the scenario, a request finding
  makes it broken); `never` keeps findings in the report only.
* `--validation-policy FILE` (TOML, versioned) overrides severities per rule id
  and names suppressions in the validator's own format (ktbench/validation/
  suppressions.py); see reports/README.md for the file format.

A finding whose severity the policy changed keeps its original severity (shown
in the report); a suppressed finding stays in the report as information with
its reason; only `ignore` drops a finding from the report altogether.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ktbench.core.events import Finding
from ktbench.core.tomlfile import read_toml

FAIL_ON_CHOICES = ("error", "warning", "never")
DEFAULT_FAIL_ON = "error"
POLICY_VERSIONS = (1,)
IGNORE = "ignore"
SEVERITIES = ("error", "warning", "information", IGNORE)
_RANK = {"fatal": 3, "error": 3, "warning": 2, "information": 1}
_THRESHOLD = {"error": 3, "warning": 2, "never": 99}
_TOP_LEVEL_KEYS = {"version", "severity", "suppressions", "suppression"}


class PolicyError(ValueError):
    """The validation policy cannot be used (file, syntax, version, unknown key or value)."""


def check_fail_on(value: str) -> str:
    if value not in FAIL_ON_CHOICES:
        raise PolicyError(f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}, not {value!r}")
    return value


@dataclass(frozen=True)
class ValidationPolicy:
    """The threshold plus per-rule severity overrides and suppressions; the default changes nothing."""

    fail_on: str = DEFAULT_FAIL_ON
    overrides: tuple[tuple[str, str], ...] = ()   # (rule id or glob, severity), as written in the file
    suppressions: Any = None                      # a ktbench.validation SuppressionSet, or None
    source: str = ""
    _exact: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _globs: tuple[tuple[str, str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_fail_on(self.fail_on)
        exact = {rule: sev for rule, sev in self.overrides if not _is_glob(rule)}
        # the most specific (longest) pattern first: "kt1.feed.*" beats "kt1.*"
        globs = tuple(sorted(((r, s) for r, s in self.overrides if _is_glob(r)), key=lambda rs: -len(rs[0])))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_globs", globs)

    def with_fail_on(self, fail_on: str) -> ValidationPolicy:
        return replace(self, fail_on=fail_on)

    def severity_for(self, rule: str, severity: str) -> str:
        """The severity a finding of `rule` has under this policy (`ignore` = leave it out)."""
        if rule in self._exact:
            return self._exact[rule]
        for pattern, sev in self._globs:
            if fnmatch.fnmatchcase(rule, pattern):
                return sev
        return severity

    def review(self, finding: Finding) -> Finding | None:
        """The finding as this run reports it: severity overridden, or None when the policy ignores it.

        A suppressed finding arrives as information (ktbench.http.client) and is left alone.
        """
        if not self.overrides:
            return finding
        wanted = self.severity_for(finding.rule, finding.severity)
        if wanted == IGNORE:
            return None
        if wanted == finding.severity:
            return finding
        return replace(finding, severity=wanted, original_severity=finding.original_severity or finding.severity)

    def blocks(self, severity: str) -> bool:
        """Does a finding of this severity decide the verdict (at or above the --fail-on threshold)?"""
        return _RANK.get(severity, 0) >= _THRESHOLD[self.fail_on]

    def blocking(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if self.blocks(f.severity)]


def _is_glob(rule: str) -> bool:
    return any(ch in rule for ch in "*?[")


def load_policy(path: str | Path | None, fail_on: str = DEFAULT_FAIL_ON) -> ValidationPolicy:
    """The policy of a run: `path` (None = no file) plus the --fail-on threshold.  Raises PolicyError."""
    check_fail_on(fail_on)
    if path is None:
        return ValidationPolicy(fail_on=fail_on)
    path = Path(path)
    data = read_toml(path, "validation policy", PolicyError)
    return policy_from_dict(data, fail_on=fail_on, source=str(path), base_dir=path.parent)


def policy_from_dict(data: dict[str, Any], *, fail_on: str = DEFAULT_FAIL_ON, source: str = "<memory>",
                     base_dir: Path | None = None) -> ValidationPolicy:
    where = f"validation policy {source}"
    version = data.get("version")
    if version not in POLICY_VERSIONS:
        raise PolicyError(f"{where}: unsupported or missing version {version!r} (supported: "
                          f"{', '.join(map(str, POLICY_VERSIONS))}); start the file with `version = 1`")
    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_LEVEL_KEYS))})")
    overrides = _overrides(data.get("severity", {}), where)
    suppressions = _suppressions(data, where, base_dir or Path.cwd())
    return ValidationPolicy(fail_on=fail_on, overrides=overrides, suppressions=suppressions, source=source)


def _overrides(table: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: [severity] must be a table of rule id = severity")
    found = []
    for rule, severity in table.items():
        if isinstance(severity, dict):  # `"kt1.binding" = ...` written unquoted: TOML made kt1 -> binding tables
            raise PolicyError(f"{where}: [severity] {rule!r} is a table; quote rule ids that contain dots "
                              f'("{rule}.x" = "warning")')
        if rule == "suppressions" and isinstance(severity, str) and severity not in SEVERITIES:
            raise PolicyError(f"{where}: `suppressions = ...` landed inside [severity]; put it above the "
                              "first [table] of the file")
        if not isinstance(severity, str) or severity not in SEVERITIES:
            raise PolicyError(f"{where}: [severity] {rule!r} = {severity!r}: the severity must be one of "
                              f"{', '.join(SEVERITIES)}")
        if not rule.strip():
            raise PolicyError(f"{where}: [severity] has an empty rule id")
        found.append((rule, severity))
    return tuple(found)


def _suppressions(data: dict[str, Any], where: str, base_dir: Path) -> Any:
    """The `suppressions` file (relative to the policy file) and the inline [[suppression]] entries, merged."""
    ref = data.get("suppressions")
    inline = data.get("suppression")
    if ref is None and inline is None:
        return None
    from ktbench.validation.suppressions import (
        SuppressionError,
        SuppressionSet,
        load_suppressions,
    )

    items: list[Any] = []
    sources = []
    try:
        if ref is not None:
            if not isinstance(ref, str) or not ref.strip():
                raise PolicyError(f"{where}: `suppressions` must be the path of a suppression file")
            path = Path(ref)
            if not path.is_absolute():
                path = base_dir / path
            loaded = load_suppressions(path)
            items += loaded.items
            sources.append(loaded.source)
        if inline is not None:
            if not isinstance(inline, list):
                raise PolicyError(f"{where}: `suppression` must be an array of tables ([[suppression]])")
            loaded = load_suppressions({"version": 1, "suppression": inline})
            items += loaded.items
            sources.append("inline")
    except SuppressionError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    return SuppressionSet(1, tuple(items), " + ".join(sources))

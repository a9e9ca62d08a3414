"""The run's command-line options (`--kt-*`) and the live validator they select."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from ktbench.validation_policy import DEFAULT_FAIL_ON, FAIL_ON_CHOICES


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("kt_generations", type="linelist", default=[],
                  help="ktbench generations (module:attribute) to load when --kt-generation is not given")
    group = parser.getgroup("ktbench", "ktbench (Koppeltaal conformance bench)")
    group.addoption("--kt-target", dest="kt_target", metavar="URL|NAME", default=None,
                    help="target to test: a URL (the generation's default credentials) or a name from --kt-targets")
    group.addoption("--kt-targets", dest="kt_targets", metavar="FILE", default=None,
                    help="TOML targets file (default: $KTBENCH_TARGETS)")
    group.addoption("--kt-generation", dest="kt_generations", metavar="MODULE:ATTR", action="append", default=[],
                    help="a ktbench generation to load (repeatable; default: the kt_generations ini value)")
    group.addoption("--kt-suite", dest="kt_suite", metavar="NAME", default=None,
                    help="the suite being run (default: the first suite of the target's kind)")
    group.addoption("--kt-tags", dest="kt_tags", metavar="EXPR", default=None,
                    help="run only scenarios whose tags match, e.g. '@req:KT1-META-* and not @slow'")
    group.addoption("--kt-summary", dest="kt_summary", metavar="FILE", default=None,
                    help="write the JSON run summary to FILE")
    group.addoption("--kt-events", dest="kt_events", metavar="FILE", default=None,
                    help="write every event (redacted) as NDJSON to FILE (xdist workers: FILE stem + .gwN)")
    group.addoption("--kt-keep-going", dest="kt_keep_going", action="store_true", default=False,
                    help="keep sending requests to a target that refused connections (default: fail fast)")
    group.addoption("--kt-validate", dest="kt_validate", choices=("auto", "on", "off"), default="auto",
                    help="validate every JSON/XML message of FHIR endpoints with ktbench.validation "
                         "(auto: if installed)")
    group.addoption("--kt-fail-on", dest="kt_fail_on", choices=FAIL_ON_CHOICES, default=DEFAULT_FAIL_ON,
                    help="validation findings at or above this severity decide the verdict: in a message the "
                         "target sent they fail the scenario, in one the bench sent they make it broken")
    group.addoption("--kt-slow", dest="kt_slow", action="store_true", default=False,
                    help="also run the scenarios that wait for a real server's long timers (minutes)")
    group.addoption("--kt-progress", dest="kt_progress", action="store_true", default=False,
                    help="print one line per finished scenario (feature, name, outcome, requirement)")
    group.addoption("--kt-validation-policy", dest="kt_validation_policy", metavar="FILE", default=None,
                    help="TOML validation policy: per-rule severity overrides and suppressions "
                         "(see reports/README.md)")


def load_validator(mode: str, kt: int | None = None,
                   suppressions: Any = None) -> Callable[[bytes, str | None], Any] | None:
    """The live validator hook: ktbench.validation.validate_bytes, when present (optional component)."""
    if mode == "off":
        return None
    try:
        module = importlib.import_module("ktbench.validation")
    except ModuleNotFoundError as exc:
        if exc.name != "ktbench.validation":
            raise
        module = None
    validate_bytes = getattr(module, "validate_bytes", None)
    if validate_bytes is None:
        if mode == "on":
            raise pytest.UsageError("--kt-validate on: ktbench.validation.validate_bytes is not available")
        return None

    def validate(data: bytes, content_type: str | None) -> Any:
        return validate_bytes(data, content_type=content_type, kt=kt, suppressions=suppressions)

    return validate

"""Entry points: bytes or a parsed resource in, a `ValidationResult` out.

Validation never raises for bad input: unreadable bodies become an
`input.unreadable` finding, and an unexpected internal error becomes a
`validator.internal` finding (so a proxy keeps running and the tester sees it).
"""

from __future__ import annotations

from ktbench.validation.findings import ERROR, INFORMATION, Finding, ValidationResult
from ktbench.validation.suppressions import SuppressionSet, coerce_suppressions


MAX_FINDINGS = 1000


def _finish(result: ValidationResult, suppressions) -> ValidationResult:
    sset: SuppressionSet | None = coerce_suppressions(suppressions)
    if sset is not None:
        sset.apply(result.findings)
    findings = result.findings
    if len(findings) > MAX_FINDINGS:
        # a flood (e.g. 10,000 broken entries) stays readable; the verdict does not change
        dropped = findings[MAX_FINDINGS:]
        del findings[MAX_FINDINGS:]
        worst = ERROR if any(f.severity == ERROR and f.suppressed_reason is None for f in dropped) else INFORMATION
        findings.append(Finding(worst, "validator.truncated", "$", f"{len(dropped)} more finding(s) not listed (limit {MAX_FINDINGS})"))
    return result


def _run(obj: dict, kt: int, fmt: str, result: ValidationResult, package=None) -> None:
    out = result.findings
    try:
        if kt == 1:
            from ktbench.validation import kt1

            result.profiles = kt1.validate(obj, out, xml=(fmt == "xml"))
        else:
            from ktbench.validation import kt2

            result.profiles = kt2.validate(obj, out, package=package)
    except RecursionError:
        out.append(Finding(ERROR, "input.unreadable", _root(obj), "document nested too deeply to validate"))
    except Exception as exc:  # a validator bug must not take the proxy or the CLI down
        out.append(Finding(ERROR, "validator.internal", _root(obj), f"internal validator error ({type(exc).__name__}: {exc}); please report"))


def _package(package):
    """A loaded Package, or None; a bad path raises PackageError (a caller mistake, not a finding)."""
    if package is None:
        return None
    from ktbench.validation.sdpackage import coerce_package

    return coerce_package(package)


def _root(obj) -> str:
    rt = obj.get("resourceType") if isinstance(obj, dict) else None
    return rt if isinstance(rt, str) else "$"


def validate_resource(obj: dict, kt: int, suppressions=None, package=None) -> ValidationResult:
    """Validate an already parsed JSON model (KT1 DSTU1 JSON or KT2 R4 JSON)."""
    result = ValidationResult(kt=kt, format="json")
    if kt not in (1, 2):
        raise ValueError("kt must be 1 or 2")
    package = _package(package)
    if not isinstance(obj, dict):
        result.findings.append(Finding(ERROR, "input.unreadable", "$", f"expected a JSON object, got {type(obj).__name__}"))
        return _finish(result, suppressions)
    _run(obj, kt, "json", result, package)
    return _finish(result, suppressions)


def validate_bytes(
    data: bytes,
    content_type: str | None = None,
    kt: int | None = None,
    suppressions=None,
    package=None,
) -> ValidationResult:
    """Validate a raw body: detects JSON vs XML and (unless `kt` is given) KT1 vs KT2."""
    from ktbench.validation.reader import read

    if kt not in (None, 1, 2):
        raise ValueError("kt must be None, 1 or 2")
    package = _package(package)
    parsed = read(data, content_type)
    result = ValidationResult(kt=kt, format=parsed.format)
    if parsed.obj is None:
        result.findings.append(Finding(ERROR, "input.unreadable", "$", parsed.problem or "unreadable input"))
        return _finish(result, suppressions)
    obj = parsed.obj
    if parsed.format == "xml":
        if kt == 2:
            result.findings.append(Finding(ERROR, "input.unsupported", "$", "KT2 XML is not supported by this validator (KT2 JSON only); XML is read as KT1 DSTU1"))
            return _finish(result, suppressions)
        result.kt = 1
    elif kt is None:
        from ktbench.validation.detect import detect_kt

        detected, reason = detect_kt(obj)
        result.kt = detected
        if reason.startswith("no KT1 markers"):
            result.findings.append(Finding(INFORMATION, "input.detect", "$", f"validated as KT{detected}: {reason} (pass kt=1 or --kt 1 to force KT1)"))
    _run(obj, result.kt, parsed.format, result, package)
    return _finish(result, suppressions)


def preload() -> None:
    """Compile the KT1 and KT2 profile tables now (e.g. in a proxy worker before traffic arrives)."""
    from ktbench.validation import kt1, kt2

    kt1.standard()
    kt2.standard()

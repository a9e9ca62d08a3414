"""Koppeltaal profile validator: KT1.3 (DSTU1 JSON and Atom/XML) and KT2 (R4 JSON).

Public API (others code against it; keep it stable)::

    from ktbench.validation import validate_bytes, validate_resource, Finding, ValidationResult, load_suppressions
    result = validate_bytes(data, content_type=None, kt=None, suppressions=None)
    result = validate_resource(obj, kt, suppressions=None)
    result.findings, result.ok, result.kt, result.format
    result.to_operation_outcome(), result.to_text()

Profiles are data (profiles/); see profiles/README.md for the formats and the
rule ids.  Importing this package is cheap: the profile tables are compiled on
the first validation and cached for the life of the process.
"""

from __future__ import annotations

from ktbench.validation.engine import preload, validate_bytes, validate_resource
from ktbench.validation.findings import ERROR, INFORMATION, WARNING, Finding, ValidationResult
from ktbench.validation.suppressions import SuppressionError, SuppressionSet, load_suppressions

__all__ = [
    "ERROR",
    "INFORMATION",
    "WARNING",
    "Finding",
    "SuppressionError",
    "SuppressionSet",
    "ValidationResult",
    "load_suppressions",
    "preload",
    "validate_bytes",
    "validate_resource",
]

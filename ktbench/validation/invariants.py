"""Invariants (FHIRPath constraints) with a fast path for the trivial ones.

Most profile invariants are of the form `x.hasValue()` / `x.exists()`; those are
compiled to plain Python.  Anything else goes to `fhirpathpy`, imported only on
first use so that validations without such invariants never pay its import
cost (cold start budget).
"""

from __future__ import annotations

import re
from typing import Any

from ktbench.validation.model import Invariant

_SIMPLE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)\.(hasValue|exists|empty)\(\)\s*$")
_fhirpath = None


def _get(obj: Any, path: str) -> list:
    items = [obj]
    for part in path.split("."):
        nxt = []
        for it in items:
            if isinstance(it, dict) and part in it:
                v = it[part]
                if isinstance(v, list):
                    nxt.extend(v)
                elif v is not None:
                    nxt.append(v)
        items = nxt
    return items


def compile_invariant(inv: Invariant) -> None:
    m = _SIMPLE.match(inv.expression)
    if m:
        path, fn = m.group(1), m.group(2)
        if fn == "hasValue":
            inv.compiled = ("py", lambda o: any(not isinstance(v, (dict, list)) for v in _get(o, path)))
        elif fn == "exists":
            inv.compiled = ("py", lambda o: bool(_get(o, path)))
        else:
            inv.compiled = ("py", lambda o: not _get(o, path))
        return
    inv.compiled = ("fhirpath", None)


def _fhirpath_module():
    global _fhirpath
    if _fhirpath is None:
        import fhirpathpy  # noqa: PLC0415 - deliberately lazy

        _fhirpath = fhirpathpy
    return _fhirpath


def evaluate(inv: Invariant, node: Any) -> bool | str | None:
    """True/False for a verdict, a string when the expression could not be evaluated."""
    if inv.compiled is None:
        compile_invariant(inv)
    kind, fn = inv.compiled
    if kind == "py":
        return bool(fn(node))
    fp = _fhirpath_module()
    try:
        if fn is None:
            fn = fp.compile(inv.expression)
            inv.compiled = ("fhirpath", fn)
        result = fn(node)
    except Exception as exc:  # fhirpathpy raises many exception types for odd input
        return f"{type(exc).__name__}: {exc}"
    if result == [] or result is None:
        return None
    if isinstance(result, list):
        if all(isinstance(r, bool) for r in result):
            return all(result)
        return True
    return bool(result)

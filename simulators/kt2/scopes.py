"""SMART v2 system scopes computed from a role, and the permission checks the FHIR store makes with them.

The authorisation server writes the caller's permissions into the access token's `scope` (kt2-protocol.md
§1.5): per resource type and scope kind one token `system/<Type>.<letters>[?resource-origin=<Device list>]`,
letters in the order c, r, u, d, s, with `s` (search) whenever `r` is granted.  ALL has no suffix; OWN names
the caller's own Device; GRANTED names the Devices of the granted applications' instances.  The store trusts
only the scope (a changed role takes effect with the next token, as in the reference implementation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from simulators.kt2.data import RESOURCE_TYPES, Role

_LETTER_ORDER = "cruds"
_TOKEN_RE = re.compile(r"^system/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<letters>[cruds]+)"
                       r"(?:\?resource-origin=(?P<origins>[^\s]+))?$")


def scope_for_role(role: Role, own_device: str, granted_devices: Callable[[str], Iterable[str]]) -> str:
    """The `scope` string for an instance with `role` whose Device is `own_device` ("Device/<client id>").

    `granted_devices(app_id)` gives the Device references of an application's instances in the domain.
    """
    tokens: list[str] = []
    types = [t for t in RESOURCE_TYPES if t in role.permissions] if "*" not in role.permissions else \
        list(RESOURCE_TYPES)
    for rtype in types:
        by_suffix: dict[str, set[str]] = {}
        for op in "CRUD":
            perm = role.permission(rtype, op)
            if perm is None:
                continue
            if perm.scope == "ALL":
                suffix = ""
            elif perm.scope == "OWN":
                suffix = f"?resource-origin={own_device}"
            else:
                devices = sorted({d for app in perm.granted for d in granted_devices(app)})
                if not devices:
                    continue  # nothing granted exists (yet): no access rather than an empty list
                suffix = f"?resource-origin={','.join(devices)}"
            letters = by_suffix.setdefault(suffix, set())
            letters.add(op.lower())
            if op == "R":
                letters.add("s")
        for suffix, letters in sorted(by_suffix.items()):
            ordered = "".join(ch for ch in _LETTER_ORDER if ch in letters)
            tokens.append(f"system/{rtype}.{ordered}{suffix}")
    return " ".join(tokens)


@dataclass(frozen=True)
class _Grant:
    rtype: str
    letters: frozenset[str]
    origins: frozenset[str] | None   # None: any origin (ALL)


class ScopeSet:
    """A parsed `scope`; tokens it does not understand (openid, launch, ...) grant nothing."""

    def __init__(self, text: str) -> None:
        self.text = text
        grants = []
        for token in text.split():
            match = _TOKEN_RE.match(token)
            if match:
                origins = frozenset(o for o in (match["origins"] or "").split(",") if o) if match["origins"] \
                    else None
                grants.append(_Grant(match["type"], frozenset(match["letters"]), origins))
        self._grants = tuple(grants)

    def __repr__(self) -> str:
        return f"ScopeSet({self.text!r})"

    def _matching(self, rtype: str, letter: str) -> list[_Grant]:
        return [g for g in self._grants if g.rtype in (rtype, "*") and letter in g.letters]

    def allows(self, rtype: str, letter: str, origin: str | None) -> bool:
        """May the caller do `letter` (c/r/u/d/s) on a resource of `rtype` whose resource-origin is `origin`?

        Resources without an origin (the voorziening's own Devices, say) match any origin restriction, as in
        the reference implementation.
        """
        for grant in self._matching(rtype, letter):
            if grant.origins is None or origin is None or origin in grant.origins:
                return True
        return False

    def any(self, rtype: str, letter: str) -> bool:
        return bool(self._matching(rtype, letter))

    def narrowing(self, rtype: str, letter: str = "s") -> frozenset[str] | None:
        """For searches: None = every origin; a set = only resources with one of these origins (silent
        narrowing); an empty set = no grant at all (the caller gets a 403)."""
        grants = self._matching(rtype, letter)
        if any(g.origins is None for g in grants):
            return None
        return frozenset(o for g in grants for o in (g.origins or ()))

"""The Fault type: a realistic defect a simulator can be told to have, and the requirements it breaks.

A conformance suite proves its power by failing against a simulator with a fault switched on.  A kill
only counts when the failing check names one of the requirements the fault declares it `breaks`
(tests/test_suite_kill_matrix.py): a suite that fails for some other reason has not seen the defect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass


class UnknownFault(ValueError):
    """`--fault NAME` names no catalogued fault."""


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    breaks: tuple[str, ...]          # requirement ids of the suite's catalogue that this defect violates
    validation_only: bool = False    # no step sees it: only live profile validation of the exchanges does

    def __post_init__(self) -> None:
        if not self.breaks:
            raise ValueError(f"fault {self.name!r} must declare the requirement(s) it breaks")


class FaultCatalogue(Mapping[str, Fault]):
    """An ordered, read-only name -> Fault mapping with the checks a server's --fault option needs."""

    def __init__(self, faults: Iterable[Fault]) -> None:
        self._faults: dict[str, Fault] = {}
        for fault in faults:
            if fault.name in self._faults:
                raise ValueError(f"fault {fault.name!r} is catalogued twice")
            self._faults[fault.name] = fault

    def __getitem__(self, name: str) -> Fault:
        return self._faults[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._faults)

    def __len__(self) -> int:
        return len(self._faults)

    def check(self, names: Iterable[str]) -> frozenset[str]:
        """The names as a set, or UnknownFault naming every unknown one."""
        names = list(names)
        unknown = [n for n in names if n not in self._faults]
        if unknown:
            raise UnknownFault(f"unknown fault(s) {', '.join(unknown)}; see --list-faults")
        return frozenset(names)

    def listing(self) -> str:
        """The catalogue as `ktbench serve ... --list-faults` prints it: name, description, requirements."""
        width = max((len(n) for n in self._faults), default=0)
        return "\n".join(f"{f.name.ljust(width)}  {f.description}  [breaks {', '.join(f.breaks)}]"
                         for f in self._faults.values())

    @property
    def validation_only(self) -> frozenset[str]:
        return frozenset(n for n, f in self._faults.items() if f.validation_only)

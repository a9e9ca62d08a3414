"""`Secret`: a string that does not print itself.

Deliberately *not* a str subclass: string formatting, concatenation or JSON encoding of a str subclass
would silently expose the value, whereas this class forces every real use through `.reveal()`.  Targets,
credentials and simulated actors hold every password, key and token as a Secret, so they can be printed,
logged or shown as step parameters by allure-pytest-bdd without leaking anything.
"""

from __future__ import annotations

from typing import Any


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self  # (dataclasses.asdict and pydantic deep-copy field values)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (e.g. to another process) must not be a way around the redaction either.
        raise TypeError("Secret values are not picklable")

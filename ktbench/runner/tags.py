"""Scenario tags: cucumber-style tag expressions (`--tags`) and the @req:/@role: tags every scenario carries.

The `cucumber-tag-expressions` library cannot match wildcards such as `@req:KT1-VER-*`, which testers use
to select a family of requirements, hence this small parser.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

REQUIREMENT_PREFIX = "req"
ROLE_PREFIX = "role"
INVALID_REQUEST_TAG = "invalid-request"  # the scenario sends bad input on purpose: its own findings do not count


class TagExpressionError(ValueError):
    pass


_TOKEN_RE = re.compile(r"\s*(\(|\)|[^\s()]+)")


class TagExpression:
    """Cucumber-style tag expression: `@req:KT1-META-* and not (@slow or @wip)`.

    Operators `and`, `or`, `not` and parentheses; a tag may use shell wildcards.
    The leading `@` is optional.  An empty expression matches everything.
    """

    def __init__(self, source: str) -> None:
        self.source = source.strip()
        self._tokens = [t for t in _TOKEN_RE.findall(self.source)]
        self._pos = 0
        self._tree: Any = ("true",) if not self._tokens else self._parse_or()
        if self._pos != len(self._tokens):
            raise TagExpressionError(f"unexpected {self._tokens[self._pos]!r} in tag expression {source!r}")

    def _peek(self) -> str | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _next(self) -> str:
        token = self._peek()
        if token is None:
            raise TagExpressionError(f"tag expression {self.source!r} ends too early")
        self._pos += 1
        return token

    def _parse_or(self) -> Any:
        node = self._parse_and()
        while self._peek() == "or":
            self._next()
            node = ("or", node, self._parse_and())
        return node

    def _parse_and(self) -> Any:
        node = self._parse_not()
        while self._peek() == "and":
            self._next()
            node = ("and", node, self._parse_not())
        return node

    def _parse_not(self) -> Any:
        if self._peek() == "not":
            self._next()
            return ("not", self._parse_not())
        return self._parse_atom()

    def _parse_atom(self) -> Any:
        token = self._next()
        if token == "(":
            node = self._parse_or()
            if self._next() != ")":
                raise TagExpressionError(f"missing ')' in tag expression {self.source!r}")
            return node
        if token in (")", "and", "or"):
            raise TagExpressionError(f"unexpected {token!r} in tag expression {self.source!r}")
        return ("tag", token.lstrip("@"))

    def matches(self, tags: Iterable[str]) -> bool:
        tagset = {t.lstrip("@") for t in tags}
        return self._eval(self._tree, tagset)

    def _eval(self, node: Any, tags: set[str]) -> bool:
        op = node[0]
        if op == "true":
            return True
        if op == "tag":
            pattern = node[1]
            return any(fnmatch.fnmatchcase(t, pattern) for t in tags)
        if op == "not":
            return not self._eval(node[1], tags)
        if op == "and":
            return self._eval(node[1], tags) and self._eval(node[2], tags)
        return self._eval(node[1], tags) or self._eval(node[2], tags)


def split_tags(tags: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(requirement ids, roles) from tags such as `req:KT1-META-CONFORMANCE` and `role:portal`."""
    reqs, roles = [], []
    for tag in tags:
        prefix, sep, value = tag.lstrip("@").partition(":")
        if sep and value:
            if prefix == REQUIREMENT_PREFIX:
                reqs.append(value)
            elif prefix == ROLE_PREFIX:
                roles.append(value)
    return tuple(sorted(set(reqs))), tuple(sorted(set(roles)))

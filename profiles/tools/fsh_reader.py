"""A small reader for the subset of FHIR Shorthand (FSH) the KT2 IG uses.

It splits .fsh files into entities (Profile, Extension, Instance, ValueSet,
CodeSystem, Invariant, RuleSet, Alias) with their header keywords and their
rules, each rule carrying its full path (indented rules inherit the path of
the rule above them).  It understands no FSH semantics: build_kt2.py does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ENTITY_KINDS = ("Profile", "Extension", "Instance", "ValueSet", "CodeSystem", "Invariant", "RuleSet", "Alias",
                "SearchParameter", "Logical", "Resource", "Mapping")
HEADER_KEYS = ("Parent", "Id", "Title", "Description", "InstanceOf", "Usage", "Context", "Expression", "Severity", "XPath")


@dataclass
class Rule:
    indent: int
    path: str  # full path ("" for rules on the root / caret-only)
    text: str  # the rest of the rule after the path
    raw: str


@dataclass
class Entity:
    kind: str
    name: str
    header: dict[str, str] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    source: str = ""


def _strip_comment(line: str) -> str:
    out = []
    in_str = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            in_str = not in_str
        if not in_str and line.startswith("//", i):
            # keep "http://" inside unquoted URLs (e.g. code systems): only a comment when preceded by space/start
            if i == 0 or line[i - 1] in " \t":
                break
        out.append(ch)
        i += 1
    return "".join(out).rstrip()


def _logical_lines(text: str) -> list[str]:
    """Join triple-quoted strings and continuation lines into logical lines."""
    raw = text.splitlines()
    lines: list[str] = []
    i = 0
    while i < len(raw):
        line = raw[i]
        if line.count('"""') == 1:
            buf = [line]
            i += 1
            while i < len(raw):
                buf.append(raw[i])
                if '"""' in raw[i]:
                    break
                i += 1
            lines.append("\n".join(buf))
            i += 1
            continue
        stripped = line.strip()
        if stripped.startswith("/*"):
            while i < len(raw) and "*/" not in raw[i]:
                i += 1
            i += 1
            continue
        lines.append(_strip_comment(line) if '"""' not in line else line)
        i += 1
    # continuation: a non-empty line that starts neither a rule nor a keyword continues the previous one
    out: list[str] = []
    for line in lines:
        s = line.strip()
        if not s:
            out.append("")
            continue
        is_rule = s.startswith("*")
        is_kw = re.match(r"^[A-Za-z]+:", s) is not None and not line.startswith((" ", "\t"))
        if not is_rule and not is_kw and out and out[-1].strip():
            out[-1] = out[-1] + " " + s
        else:
            out.append(line)
    return out


def _split_path(text: str) -> tuple[str, str]:
    """'name[x].family 1..' -> ('name[x].family', '1..'); '^short = "x"' -> ('', '^short = "x"')."""
    text = text.strip()
    if text.startswith("^") or text.startswith("insert ") or text.startswith("obeys "):
        return "", text
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch in " \t" and depth == 0:
            return text[:i], text[i:].strip()
    return text, ""


def read_entities(paths: list[Path]) -> list[Entity]:
    entities: list[Entity] = []
    for path in paths:
        current: Entity | None = None
        stack: list[tuple[int, str]] = []
        for line in _logical_lines(path.read_text(encoding="utf-8")):
            if not line.strip():
                continue
            m = re.match(r"^([A-Za-z]+):\s*(.*)$", line)
            if m and not line.startswith((" ", "\t", "*")):
                key, value = m.group(1), m.group(2).strip()
                if key in ENTITY_KINDS:
                    if key == "Alias":
                        name, _, val = value.partition("=")
                        entities.append(Entity("Alias", name.strip(), {"value": val.strip()}, source=str(path)))
                        current = None
                        continue
                    current = Entity(key, value, source=str(path))
                    entities.append(current)
                    stack = []
                    continue
                if current is not None:
                    current.header[key] = _unquote(value)
                continue
            s = line.lstrip()
            if not s.startswith("*") or current is None:
                continue
            indent = (len(line) - len(s)) // 2
            body = s[1:].strip()
            path_part, rest = _split_path(body)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            prefix = stack[-1][1] if stack else ""
            if path_part == ".":
                full = prefix
            elif path_part:
                full = f"{prefix}.{path_part}" if prefix else path_part
            else:
                full = prefix
            current.rules.append(Rule(indent, full, rest, body))
            # indented rules continue at the index this rule chose: a soft [+] becomes [=] for them
            stack.append((indent, full.replace("[+]", "[=]")))
    return entities


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith('"""') and value.endswith('"""'):
        return value[3:-3].strip()
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1]
    return value


def parse_string(value: str) -> str:
    return _unquote(value).replace('\\"', '"').replace("\\n", "\n").replace("\\r", "\r")

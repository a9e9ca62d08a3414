"""FHIR search over the index: parse the query (400 on anything not understood), build SQL, run it.

The same engine answers client searches, evaluates Subscription criteria (restricted to the changed
resource with `_id`) and resolves chains (`Task?instantiates.publisherId=...`).  Parameters repeated are
AND, comma-separated values are OR (FHIR §3.1.1.3).  Narrowing by resource-origin is one more clause, added
by the caller from the token's scope; resources without an origin (the voorziening's Devices) match it.
Unknown parameters are a 400 unless the client asks for `Prefer: handling=lenient` (then they are dropped,
and the self link shows what was used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from simulators.kt2.errors import FhirError
from simulators.kt2.fhir.instants import parse_instant_ms
from simulators.kt2.fhir.searchparams import PARAMS, Param, fold, strip_version
from simulators.kt2.store import Store

RESULT_PARAMS = frozenset({"_count", "_sort", "_total", "_include", "_format", "_offset", "_summary"})
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}\Z")
_SPLIT = re.compile(r"(?<!\\),")
_MAX_VALUES = 100            # values of one parameter (comma = OR)
_MAX_TOTAL_VALUES = 1000     # values of all parameters of one search: SQLite's planning time grows fast with
                             # the number of OR/AND terms, and one search must not stall the event loop


def bad(diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError.one(400, diagnostics, "invalid", expression)


@dataclass
class Query:
    rtype: str
    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    order: str = "c.updated_ms DESC, c.id"
    count: int = 20
    offset: int = 0
    includes: list[tuple[str, str | None]] = field(default_factory=list)
    summary_count: bool = False
    link_params: list[tuple[str, str]] = field(default_factory=list)
    criteria_only: bool = False          # no result parameters allowed (Subscription criteria)


def parse_query(rtype: str, items: list[tuple[str, str]], *, default_count: int, max_count: int,
                lenient: bool = False, fhir_base: str = "", criteria: bool = False) -> Query:
    query = Query(rtype, count=default_count, criteria_only=criteria)
    if len(items) > 200:
        raise bad("Too many search parameters (at most 200)")
    total_values = sum(len(_SPLIT.split(value)) for key, value in items if key not in RESULT_PARAMS)
    if total_values > _MAX_TOTAL_VALUES:
        raise bad(f"Too many search values ({total_values}; at most {_MAX_TOTAL_VALUES} in one search, "
                  "counting every comma-separated value of every parameter)")
    for key, value in items:
        if key in RESULT_PARAMS:
            if criteria and key != "_format":
                raise bad(f"{key} has no meaning in Subscription criteria", key)
            _result_param(query, key, value, max_count)
        else:
            try:
                _filter(query, rtype, key, value, fhir_base)
            except FhirError:
                if lenient and not _known_name(rtype, key):
                    continue
                raise
        if key not in ("_offset", "_format"):
            query.link_params.append((key, value))
    return query


def _known_name(rtype: str, key: str) -> bool:
    name = key.split(":")[0].split(".")[0]
    return name in ("_id", "_lastUpdated") or name in PARAMS[rtype]


def _int(key: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise bad(f"{key} must be a non-negative whole number, not {value[:40]!r}", key)
    return int(value)


def _result_param(query: Query, key: str, value: str, max_count: int) -> None:
    if key == "_count":
        query.count = min(_int(key, value), max_count)
    elif key == "_offset":
        query.offset = _int(key, value)
    elif key == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise bad(f"_total must be none, estimate or accurate, not {value[:40]!r}", key)
    elif key == "_summary":
        if value == "count":
            query.summary_count = True
        elif value != "false":
            raise bad(f"_summary={value[:40]!r} is not supported (count or false)", key)
    elif key == "_sort":
        query.order = _sort(query.rtype, value)
    elif key == "_include":
        query.includes.append(_include(query.rtype, value))


def _sort(rtype: str, value: str) -> str:
    terms = []
    for item in value.split(","):
        name = item.strip()
        desc = name.startswith("-")
        name = name.lstrip("-")
        if name == "_lastUpdated":
            column = "c.updated_ms"
        elif name == "_id":
            column = "c.id"
        elif name == "date" and rtype == "AuditEvent":
            column = ("(SELECT MIN(num) FROM fhir_index s WHERE s.domain=c.domain AND s.rtype=c.rtype "
                      "AND s.id=c.id AND s.param='date')")
        else:
            allowed = "_lastUpdated, _id" + (", date" if rtype == "AuditEvent" else "")
            raise bad(f"Cannot sort {rtype} by {name[:40]!r} (allowed: {allowed}, with - for descending)", "_sort")
        terms.append(f"{column} {'DESC' if desc else 'ASC'}")
    return ", ".join(terms + ["c.id"])


def _include(rtype: str, value: str) -> tuple[str, str | None]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] != rtype:
        raise bad(f"_include={value[:60]!r} must be {rtype}:<reference parameter>[:<type>]", "_include")
    param = PARAMS[rtype].get(parts[1])
    if param is None or param.kind != "reference":
        raise bad(f"_include: {parts[1][:40]!r} is no reference parameter of {rtype}", "_include")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in param.targets:
        raise bad(f"_include: {rtype}:{parts[1]} does not point to {target[:40]!r}", "_include")
    return parts[1], target


def _values(key: str, value: str) -> list[str]:
    values = [v.replace("\\,", ",") for v in _SPLIT.split(value)]
    if len(values) > _MAX_VALUES:
        raise bad(f"{key}: at most {_MAX_VALUES} values", key)
    if any(v == "" for v in values):
        raise bad(f"{key}: empty value", key)
    return values


def _filter(query: Query, rtype: str, key: str, value: str, fhir_base: str) -> None:
    sql, args = _condition(rtype, key, value, fhir_base)
    query.where.append(sql)
    query.args.extend(args)


def _condition(rtype: str, key: str, value: str, fhir_base: str, depth: int = 0) -> tuple[str, list]:
    """SQL restricting `c` (fhir_current of `rtype`) by one `key=value` pair."""
    name, dot, chained = key.partition(".")
    name, _, modifier = name.partition(":")
    if name == "_id" and not dot:
        if modifier:
            raise bad(f"_id does not take the modifier :{modifier[:20]}", key)
        ids = _values(key, value)
        bad_ids = [i for i in ids if not _ID_RE.match(i)]
        if bad_ids:
            raise bad(f"_id: {bad_ids[0][:70]!r} is not a FHIR id", key)
        return f"c.id IN ({','.join('?' * len(ids))})", ids
    if name == "_lastUpdated" and not dot:
        if modifier:
            raise bad(f"_lastUpdated does not take the modifier :{modifier[:20]}", key)
        return _or([_date_clause("c.updated_ms", key, v) for v in _values(key, value)])
    param = PARAMS[rtype].get(name)
    if param is None:
        known = ", ".join(sorted(["_id", "_lastUpdated", *PARAMS[rtype]]))
        raise bad(f"Unknown search parameter {name[:60]!r} for {rtype} (known: {known})", key)
    if dot:
        return _chain(rtype, param, modifier, chained, key, value, fhir_base, depth)
    if modifier == "missing":
        if value not in ("true", "false"):
            raise bad(f"{key} must be true or false", key)
        op = "NOT IN" if value == "true" else "IN"
        return (f"c.id {op} (SELECT id FROM fhir_index WHERE domain=c.domain AND rtype=c.rtype AND param=?)",
                [name])
    parts = [_value_clause(param, modifier, key, v, fhir_base) for v in _values(key, value)]
    cond, args = _or(parts)
    return (f"c.id IN (SELECT id FROM fhir_index i WHERE i.domain=c.domain AND i.rtype=c.rtype AND i.param=? "
            f"AND ({cond}))", [name, *args])


def _or(parts: list[tuple[str, list]]) -> tuple[str, list]:
    sql = "(" + " OR ".join(p[0] for p in parts) + ")"
    return sql, [a for p in parts for a in p[1]]


def _value_clause(param: Param, modifier: str, key: str, value: str, fhir_base: str) -> tuple[str, list]:
    kind = param.kind
    if kind == "token":
        if modifier:
            raise bad(f"{param.name} does not support the modifier :{modifier[:20]}", key)
        if "|" not in value:
            return "i.val=?", [value]
        system, _, code = value.partition("|")
        if not code:
            return "i.sys=?", [system]
        return "(i.sys=? AND i.val=?)", [system, code]
    if kind == "string":
        if modifier == "exact":
            return "i.sys=?", [value]
        if modifier == "contains":
            escaped = fold(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return "i.val LIKE ? ESCAPE '\\'", [f"%{escaped}%"]
        if modifier:
            raise bad(f"{param.name} does not support the modifier :{modifier[:20]}", key)
        folded = fold(value)
        return "(i.val>=? AND i.val<?)", [folded, folded + "\U0010ffff"]
    if kind == "uri":
        if modifier:
            raise bad(f"{param.name} does not support the modifier :{modifier[:20]}", key)
        return "i.val=?", [value]
    if kind == "date":
        if modifier:
            raise bad(f"{param.name} does not support the modifier :{modifier[:20]}", key)
        return _date_clause("i.num", key, value)
    return _reference_clause(param, modifier, key, value, fhir_base)


def _reference_clause(param: Param, modifier: str, key: str, value: str, fhir_base: str) -> tuple[str, list]:
    if modifier and modifier not in param.targets:
        raise bad(f"{param.name}: :{modifier[:30]} is no type it can point to "
                  f"({', '.join(param.targets)})", key)
    ref = value
    if fhir_base and ref.startswith(fhir_base + "/"):
        ref = ref[len(fhir_base) + 1:]
    ref = strip_version(ref)
    if "/" in ref:
        rtype, _, rid = ref.rpartition("/")
        if "://" in ref:
            return "i.val=?", [value]
        if rtype not in param.targets or (modifier and rtype != modifier) or not _ID_RE.match(rid):
            raise bad(f"{param.name}: {value[:70]!r} is no reference to {' or '.join(param.targets)}", key)
        return "i.val=?", [ref]
    if not _ID_RE.match(ref):
        raise bad(f"{param.name}: {value[:70]!r} is not a FHIR id or reference", key)
    targets = [modifier] if modifier else list(param.targets)
    return f"i.val IN ({','.join('?' * len(targets))})", [f"{t}/{ref}" for t in targets]


def _date_clause(column: str, key: str, value: str) -> tuple[str, list]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    span = parse_instant_ms(text)
    if span is None:
        raise bad(f"{key}: {value[:60]!r} is not a FHIR date, dateTime or instant (with an optional prefix "
                  f"{', '.join(_PREFIXES)})", key)
    lo, hi = span
    return {
        "eq": (f"({column}>=? AND {column}<?)", [lo, hi]),
        "ap": (f"({column}>=? AND {column}<?)", [lo, hi]),
        "ne": (f"({column}<? OR {column}>=?)", [lo, hi]),
        "gt": (f"{column}>=?", [hi]), "sa": (f"{column}>=?", [hi]),
        "ge": (f"{column}>=?", [lo]),
        "lt": (f"{column}<?", [lo]), "eb": (f"{column}<?", [lo]),
        "le": (f"{column}<?", [hi]),
    }[prefix]


def _chain(rtype: str, param: Param, modifier: str, chained: str, key: str, value: str, fhir_base: str,
           depth: int) -> tuple[str, list]:
    if param.kind != "reference":
        raise bad(f"{param.name} is no reference parameter: it cannot be chained", key)
    if depth >= 1:
        raise bad("Chains are limited to one level (e.g. instantiates.publisherId)", key)
    targets = [modifier] if modifier else list(param.targets)
    if modifier and modifier not in param.targets:
        raise bad(f"{param.name}: :{modifier[:30]} is no type it can point to", key)
    if len(targets) != 1:
        raise bad(f"{param.name} points to several types ({', '.join(targets)}): name one, "
                  f"e.g. {param.name}:{targets[0]}.{chained}", key)
    target = targets[0]
    inner_sql, inner_args = _condition(target, chained, value, fhir_base, depth + 1)
    inner_sql = inner_sql.replace("c.", "t.")
    return (f"c.id IN (SELECT id FROM fhir_index i WHERE i.domain=c.domain AND i.rtype=c.rtype AND i.param=? "
            f"AND i.val IN (SELECT ? || t.id FROM fhir_current t WHERE t.domain=c.domain AND t.rtype=? "
            f"AND t.deleted=0 AND {inner_sql}))", [param.name, f"{target}/", target, *inner_args])


# -- running --------------------------------------------------------------------------------------------
def _where(domain: str, query: Query, origins: frozenset[str] | None) -> tuple[str, list]:
    where = ["c.domain=?", "c.rtype=?", "c.deleted=0", *query.where]
    args: list[Any] = [domain, query.rtype, *query.args]
    if origins is not None:
        where.append(f"(c.origin IS NULL OR c.origin IN ({','.join('?' * len(origins))}))")
        args.extend(sorted(origins))
    return " AND ".join(where), args


def count(store: Store, domain: str, query: Query, origins: frozenset[str] | None) -> int:
    where, args = _where(domain, query, origins)
    return store.one(f"SELECT COUNT(*) FROM fhir_current c WHERE {where}", args)[0]


def matches(store: Store, domain: str, query: Query, origins: frozenset[str] | None) -> list[tuple]:
    """(id, version, body) of one page of matches."""
    where, args = _where(domain, query, origins)
    rows = store.all(
        f"SELECT c.id, c.version, v.body FROM fhir_current c JOIN fhir_versions v ON v.domain=c.domain "
        f"AND v.rtype=c.rtype AND v.id=c.id AND v.version=c.version WHERE {where} ORDER BY {query.order} "
        f"LIMIT ? OFFSET ?", [*args, query.count, query.offset])
    return [(r[0], r[1], r[2]) for r in rows]


def any_match(store: Store, domain: str, query: Query, origins: frozenset[str] | None) -> bool:
    where, args = _where(domain, query, origins)
    return store.one(f"SELECT 1 FROM fhir_current c WHERE {where} LIMIT 1", args) is not None


def included_targets(store: Store, domain: str, rtype: str, ids: list[str],
                     includes: list[tuple[str, str | None]]) -> list[str]:
    """"Type/id" references that the `_include`s of a page of `ids` name, in a stable order."""
    found: list[str] = []
    if not ids or not includes:
        return found
    marks = ",".join("?" * len(ids))
    for param, target in includes:
        for row in store.all(f"SELECT DISTINCT val FROM fhir_index WHERE domain=? AND rtype=? AND param=? "
                             f"AND id IN ({marks}) ORDER BY val", [domain, rtype, param, *ids]):
            ref = row[0]
            if isinstance(ref, str) and "/" in ref and "://" not in ref and \
                    (target is None or ref.split("/")[0] == target) and ref not in found:
                found.append(ref)
    return found

"""Value checks for FHIR primitive types, per FHIR version.

DSTU1 (KT1) takes its formats from the 0.0.82 XSD (xs:dateTime, id = [a-z0-9-.]{1,36});
R4 (KT2) from the R4 regexes.  A checker returns None when the JSON value is
acceptable, else a short reason a tester understands.
"""

from __future__ import annotations

import re
from typing import Callable

Checker = Callable[[object], "str | None"]

_B64 = re.compile(r"^(\s*([0-9a-zA-Z+/=]){4}\s*)+$")
_NO_WS_URI = re.compile(r"^\S*$")

# --- DSTU1 (XSD derived) -------------------------------------------------------------
_D1_DATETIME = re.compile(r"^-?\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$")
_D1_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?(Z|[+-]\d{2}:\d{2})?$")
_D1_INSTANT = re.compile(r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_D1_ID = re.compile(r"^[a-z0-9\-.]{1,36}$")
_OID = re.compile(r"^urn:oid:(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# --- R4 ------------------------------------------------------------------------------
_R4_DATETIME = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"
)
_R4_DATE = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"
)
_R4_INSTANT = re.compile(
    r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
_R4_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$")
_R4_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_R4_CODE = re.compile(r"^[^\s]+( [^\s]+)*$")


def _string(v: object) -> str | None:
    if not isinstance(v, str):
        return f"expected a JSON string, got {_jt(v)}"
    if v == "":
        return "empty string"
    return None


def _regex(rx: re.Pattern[str], what: str) -> Checker:
    def check(v: object) -> str | None:
        if not isinstance(v, str):
            return f"expected a JSON string ({what}), got {_jt(v)}"
        if v == "":
            return "empty string"
        if not rx.match(v):
            return f"{v!r} is not a valid {what}"
        return None

    return check


def _boolean(v: object) -> str | None:
    return None if isinstance(v, bool) else f"expected true or false, got {_jt(v)}"


def _integer(lo: int, hi: int, what: str) -> Checker:
    def check(v: object) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"expected a JSON number ({what}), got {_jt(v)}"
        if not lo <= v <= hi:
            return f"{v} is out of range for {what}"
        return None

    return check


def _decimal(v: object) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return f"expected a JSON number (decimal), got {_jt(v)}"
    return None


def _uri(v: object) -> str | None:
    if not isinstance(v, str):
        return f"expected a JSON string (uri), got {_jt(v)}"
    if v == "":
        return "empty string"
    if not _NO_WS_URI.match(v):
        return f"{v!r} is not a valid uri (contains whitespace)"
    return None


def _code(v: object) -> str | None:
    if not isinstance(v, str):
        return f"expected a JSON string (code), got {_jt(v)}"
    if v == "":
        return "empty string"
    if not _R4_CODE.match(v):
        return f"{v!r} is not a valid code (leading/trailing or double whitespace)"
    return None


def _base64(v: object) -> str | None:
    if not isinstance(v, str):
        return f"expected a JSON string (base64Binary), got {_jt(v)}"
    if v and not _B64.match(v):
        return "not valid base64"
    return None


def _xhtml(v: object) -> str | None:
    if not isinstance(v, str):
        return f"expected a JSON string (xhtml), got {_jt(v)}"
    if not v.lstrip().startswith("<div"):
        return "narrative must be an XHTML <div> element"
    return None


def _jt(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


INT32 = 2**31 - 1

def _anyuri(v: object) -> str | None:
    """DSTU1 uri is xs:anyURI, which XSD validators accept with spaces (real examples have them)."""
    if not isinstance(v, str):
        return f"expected a JSON string (uri), got {_jt(v)}"
    return "empty string" if v == "" else None


DSTU1: dict[str, Checker] = {
    "string": _string,
    "code": _code,
    "uri": _anyuri,
    "boolean": _boolean,
    "integer": _integer(-INT32 - 1, INT32, "integer"),
    "decimal": _decimal,
    "date": _regex(_D1_DATE, "date"),
    "dateTime": _regex(_D1_DATETIME, "dateTime"),
    "instant": _regex(_D1_INSTANT, "instant"),
    "id": _regex(_D1_ID, "DSTU1 id ([a-z0-9-.], at most 36 characters)"),
    "oid": _regex(_OID, "oid"),
    "uuid": _regex(_UUID, "uuid"),
    "base64Binary": _base64,
    "xhtml": _xhtml,
    "SampledDataDataType": _string,
}

R4: dict[str, Checker] = {
    "string": _string,
    "markdown": _string,
    "code": _code,
    "uri": _uri,
    "url": _uri,
    "canonical": _uri,
    "boolean": _boolean,
    "integer": _integer(-INT32 - 1, INT32, "integer"),
    "positiveInt": _integer(1, INT32, "positiveInt"),
    "unsignedInt": _integer(0, INT32, "unsignedInt"),
    "decimal": _decimal,
    "date": _regex(_R4_DATE, "date"),
    "dateTime": _regex(_R4_DATETIME, "dateTime"),
    "instant": _regex(_R4_INSTANT, "instant"),
    "time": _regex(_R4_TIME, "time"),
    "id": _regex(_R4_ID, "id ([A-Za-z0-9-.], at most 64 characters)"),
    "oid": _regex(_OID, "oid"),
    "uuid": _regex(_UUID, "uuid"),
    "base64Binary": _base64,
    "xhtml": _xhtml,
}

json_type_name = _jt

"""FHIR date/dateTime/instant text as a span of epoch milliseconds, and back.

A search value like `2026-03` means the whole month: [start, end).  AuditEvent searches compare to the
millisecond (kt2-protocol.md §4.7), so `recorded` and `meta.lastUpdated` are written with milliseconds and
a search value with a fraction is a span of one millisecond (or of what the digits given can say).
A value with a time but no zone is taken as UTC.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})"
    r"(?:\.(?P<f>\d{1,9}))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$")


def parse_instant_ms(text: str) -> tuple[int, int] | None:
    """[lo, hi) in epoch ms, or None when `text` is no FHIR date/dateTime/instant."""
    match = _DATE_RE.match(text) if isinstance(text, str) else None
    if not match:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        month = int(g["m"] or 1)
        day = int(g["d"] or 1)
        hour, minute, second = int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0)
        if year < 1 or not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1] \
                or hour > 23 or minute > 59 or second > 59:
            return None
        fraction = g["f"] or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        offset = 0
        if g["tz"] and g["tz"] != "Z":
            sign = 1 if g["tz"][0] == "+" else -1
            tz_h, tz_m = int(g["tz"][1:3]), int(g["tz"][4:6])
            if tz_h > 14 or tz_m > 59:
                return None
            offset = sign * (tz_h * 3600 + tz_m * 60)
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    lo = (calendar.timegm(moment.utctimetuple()) - offset) * 1000 + micro // 1000
    if g["m"] is None:
        hi = (calendar.timegm((year + 1, 1, 1, 0, 0, 0)) - offset) * 1000
    elif g["d"] is None:
        nxt = (year + (month == 12), month % 12 + 1)
        hi = (calendar.timegm((*nxt, 1, 0, 0, 0)) - offset) * 1000
    elif g["H"] is None:
        hi = lo + 86_400_000
    elif g["S"] is None:
        hi = lo + 60_000
    elif not fraction:
        hi = lo + 1000
    else:
        hi = lo + max(1, 10 ** max(0, 3 - len(fraction)))
    return lo, hi


_LAST_SECOND: tuple[int | None, str] = (None, "")


def instant(ms: int) -> str:
    """Epoch ms as a FHIR instant in UTC with milliseconds (the second's text is reused: it is asked often).

    The cache is one tuple, read and replaced as a whole: several servers (threads) of one process share it,
    and two separate slots could pair one second's number with another second's text."""
    global _LAST_SECOND
    second = ms // 1000
    cached_second, text = _LAST_SECOND
    if cached_second != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _LAST_SECOND = (second, text)
    return f"{text}{ms % 1000:03d}Z"

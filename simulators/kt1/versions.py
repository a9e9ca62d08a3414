"""Version ids the server mints: `YYYY-MM-DDTHH:MM:SS:mmm.ffff` in UTC, strictly increasing.

Real KT1 servers mint this format (colon before the milliseconds, then four
digits of 100 ns ticks) and the Python connector compares versions as
strings, so every new id must sort after every earlier one, even when the
clock stands still or steps back.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

_TICKS_PER_SECOND = 10_000_000  # 100 ns ticks


# (second, its formatted text): a server mints several versions per second, strftime once is enough
_last_second: tuple[int, str] = (-1, "")


def format_ticks(ticks: int) -> str:
    global _last_second
    seconds, rest = divmod(ticks, _TICKS_PER_SECOND)
    millis, frac = divmod(rest, 10_000)
    cached = _last_second  # one read: another thread may replace the tuple, never half of it
    if cached[0] == seconds:
        stamp = cached[1]
    else:
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, stamp)
    return f"{stamp}:{millis:03d}.{frac:04d}"


def parse_version(version: str) -> int | None:
    """Ticks of a version id minted by `format_ticks`, or None for a foreign format."""
    try:
        stamp, millis_frac = version.rsplit(":", 1)
        millis, frac = millis_frac.split(".")
        dt = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        return int(dt.timestamp()) * _TICKS_PER_SECOND + int(millis) * 10_000 + int(frac)
    except ValueError:
        return None


class VersionClock:
    """Mints strictly increasing version ids; `last` seeds it from persisted state."""

    def __init__(self, last: str | None = None, *, step_back: bool = False) -> None:
        self._last = parse_version(last) if last else 0
        self._lock = threading.Lock()
        self._step_back = step_back  # fault injection: versions that do not increase
        self._down = 0

    def next(self) -> str:
        with self._lock:
            now = time.time_ns() // 100
            if self._step_back:
                self._down = (self._down or now) - _TICKS_PER_SECOND
                return format_ticks(self._down)
            ticks = max(now, (self._last or 0) + 1)
            self._last = ticks
            return format_ticks(ticks)

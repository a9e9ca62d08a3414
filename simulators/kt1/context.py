"""Everything one running KT1 server shares: data, settings, store, version clock, faults.

Handlers receive the context instead of reaching for globals, so several
servers (one per fault, one per test) can live in one process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from simulators.kt1.data import ServerData, Settings
from simulators.kt1.store import Store
from simulators.kt1.versions import VersionClock

INTERNAL_HOST = "http://kt1-backend.internal:8080"


@dataclass
class Kt1Context:
    data: ServerData
    store: Store
    faults: frozenset[str] = frozenset()
    public_base: str | None = None
    settings: Settings = field(init=False)
    versions: VersionClock = field(init=False)

    def __post_init__(self) -> None:
        self.settings = self.data.settings
        self.versions = VersionClock(self._highest_stored_version(),
                                     step_back="versions-not-increasing" in self.faults)

    def fault(self, name: str) -> bool:
        return name in self.faults

    def next_version(self) -> str:
        return self.versions.next()

    def _highest_stored_version(self) -> str | None:
        """Where a restarted server resumes: versions sort as strings, so the highest stored one is the last.

        Deriving it instead of persisting a counter saves a write per minted version on the hot path.
        """
        row = self.store.one(
            "SELECT MAX(v) AS v FROM (SELECT MAX(version) AS v FROM resources UNION ALL "
            "SELECT MAX(version) FROM messages UNION ALL SELECT MAX(version) FROM activities)")
        return row["v"] if row else None

    @staticmethod
    def now() -> float:
        return time.time()

    @staticmethod
    def instant(ts: float | None = None) -> str:
        """FHIR instant in UTC without microseconds, like the real server."""
        moment = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
        return moment.replace(microsecond=0).isoformat()

    def base(self, request_base: str) -> str:
        """Root URL used in minted links: --public-base if given, else where the request came in."""
        if self.fault("minted-links-internal-host") and not self.public_base:
            return INTERNAL_HOST  # the server behind a proxy that mints its own, unreachable address
        return (self.public_base or request_base).rstrip("/")

"""Who is calling the KT1 server: an application instance, optionally narrowed to one patient by a token."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.kt1.data import Application


@dataclass(frozen=True)
class Caller:
    """Who is calling: an application instance, optionally narrowed to one patient by a Bearer token."""

    app: Application
    patient: str | None = None
    via_token: bool = False

    @property
    def domain(self) -> str:
        return self.app.domain

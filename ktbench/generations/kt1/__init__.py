"""KT1.3 (FHIR DSTU1 messaging) as a ktbench generation: one target kind, one suite, the reference server.

The first implementation of ktbench.core.generation.  The engine learns from here that a `kt1-server` target
is a server whose simulated counter-roles (portal, module, observer and two applications of another domain)
authenticate with HTTP Basic plus an OAuth client secret, that the suite's steps are `steps.kt1`, that
profile findings fail scenarios under KT1-PROFILE-EXCHANGE, and how to start the embedded reference server
with the bench's short timers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ktbench.core.errors import TargetConfigError
from ktbench.core.generation import RoleSpec, SuiteSpec, TargetKind
from ktbench.generations.kt1 import apps
from ktbench.generations.kt1.settings import Kt1Settings
from ktbench.targets.model import BasicCredential, Secret, Target

REPO = Path(__file__).resolve().parents[3]
KIND = "kt1-server"
# Simulated role -> application id in the reference server's default data.
DEFAULT_ROLE_APPS: dict[str, str] = {
    "portal": "ktbench-portal",
    "module": "ktbench-module",
    "observer": "ktbench-observer",
    "other-domain-portal": "ktbench-beta-portal",
    "other-domain-module": "ktbench-beta-module",
}
_ROLE_TEXT = {
    "portal": "the portal that sends patients and care plans",
    "module": "the eHealth module that claims and reports",
    "observer": "a second portal subscribed to patient messages (receives webhooks)",
    "other-domain-portal": "a portal of another domain (isolation checks)",
    "other-domain-module": "a module of another domain (isolation checks)",
}


def _data_path() -> Path:
    from simulators.kt1.data import default_data_path

    return default_data_path()


@lru_cache(maxsize=4)
def _reference_apps(path: Path) -> dict[str, dict[str, Any]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {app["id"]: app for app in data.get("applications", [])}


class Kt1Generation:
    name = "kt1"
    title = "KT1.3 (FHIR DSTU1 messaging)"
    validation_kt = 1
    kinds = (TargetKind(
        name=KIND, title="KT1.3 server", target_role="server", settings=Kt1Settings,
        roles={role: RoleSpec(role, ("basic",), text) for role, text in _ROLE_TEXT.items()},
    ), *apps.KINDS)
    suites = (SuiteSpec(
        name="kt1", title="KT1.3 server", kind=KIND, steps_package="steps.kt1",
        features=REPO / "features" / "kt1", catalogue=REPO / "features" / "kt1" / "requirements.toml",
        profile_requirement="KT1-PROFILE-EXCHANGE",
        exchange_rules="steps.kt1.exchange_rules:check",
        exchange_requirements=("KT1-META-JSON-CONTENT-TYPE", "KT1-URL-MINTED"),
    ), *apps.suites(REPO))

    def default_roles(self, kind: str = KIND) -> dict[str, BasicCredential]:
        if kind in apps.ROLE_OF_KIND:
            return apps.default_roles(kind, _reference_apps(_data_path()))
        path = _data_path()
        known = _reference_apps(path)
        roles = {}
        for role, app_id in DEFAULT_ROLE_APPS.items():
            app = known.get(app_id)
            if app is None:
                raise TargetConfigError(f"{path}: application {app_id!r} (role {role!r}) is missing")
            roles[role] = BasicCredential(role=role, app_id=app_id, username=app.get("username", app_id),
                                          password=Secret(app.get("password", "")),
                                          client_secret=Secret(app.get("client_secret", "")),
                                          domain=app["domain"])
        return roles

    def default_domain(self) -> str:
        return self.default_roles()["portal"].domain

    def target_for_url(self, url: str, kind: str = KIND, name: str | None = None) -> Target:
        url = self.normalise_url(kind, url)
        if kind in apps.ROLE_OF_KIND:
            return Target(name=name or urlsplit(url).netloc or url, kind=kind, url=url,
                          settings=apps.Kt1AppSettings(), roles=self.default_roles(kind))
        return Target(name=name or urlsplit(url).netloc or url, kind=KIND, url=url,
                      settings=Kt1Settings(domain=self.default_domain()), roles=self.default_roles())

    @contextmanager
    def embedded(self, suite: SuiteSpec, *, faults: Sequence[str] = (), workdir: Path) -> Iterator[Target]:
        if suite.kind in apps.ROLE_OF_KIND:
            with apps.embedded_app(suite.kind, self.default_roles(suite.kind), faults=faults) as target:
                yield target
            return
        from ktbench.generations.kt1.embedded import running_kt1_bench

        with running_kt1_bench(faults=faults, workdir=workdir) as bench:
            yield bench.target

    def normalise_url(self, kind: str, url: str) -> str:
        from ktbench.generations.kt1.preflight import normalise_url

        return url.rstrip("/") if kind in apps.ROLE_OF_KIND else normalise_url(url)

    def preflight(self, target: Target) -> list[Any]:
        from ktbench.generations.kt1.preflight import preflight

        return apps.preflight(target) if target.kind in apps.ROLE_OF_KIND else preflight(target)

    def application_briefing(self, target: Target) -> list[str]:
        return apps.application_briefing(target)

    def fault_catalogue(self, suite: SuiteSpec) -> Any:
        if suite.kind in apps.ROLE_OF_KIND:
            from simulators.kt1.apps.faults import catalogue_for

            return catalogue_for(apps.ROLE_OF_KIND[suite.kind])
        from simulators.kt1.faults import FAULTS

        return FAULTS


GENERATION = Kt1Generation()

"""KT2 (FHIR R4 REST, SMART backend services, HTI launch) as a ktbench generation: a voorziening target.

The engine learns from here that a `kt2-server` target is a voorziening addressed by the FHIR base URL of
one domain (`.../api/v1/<domain>/fhir/r4`), that the bench simulates a portal and an eHealth module against
it (SMART backend services: a client id and a private key each; or none, when admin accounts let the suite
register its own), plus admin accounts of the domain admin application; that the suite's steps are
`steps.kt2`; that profile findings fail scenarios under KT2-PROFILE-EXCHANGE and the transport rules of
every exchange under KT2-MEDIA-ANSWER and KT2-URL-MINTED; and how to start the embedded reference
voorziening.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ktbench.core.generation import RoleSpec, SuiteSpec, TargetKind
from ktbench.generations.kt2 import apps
from ktbench.generations.kt2.settings import Kt2Settings
from ktbench.targets.model import Target

REPO = Path(__file__).resolve().parents[3]
KIND = "kt2-server"
_DOMAIN_IN_URL = re.compile(r"/api/v1/(?P<domain>[^/]+)/fhir/r4/?$")
_ROLES = (
    RoleSpec("portal", ("smart-backend",), "a practitioner portal (Behandelaarsportaal) instance: assigns Tasks, "
                                           "launches modules", required=False),
    RoleSpec("module", ("smart-backend",), "an eHealth module instance: publishes ActivityDefinitions, carries "
                                           "out Tasks, receives launches", required=False),
    RoleSpec("other-domain-portal", ("smart-backend",), "a portal instance of another domain (isolation "
                                                        "checks)", required=False),
    RoleSpec("application-admin", ("account",), "an application admin at the domain admin application: files "
                                                "connection requests", required=False),
    RoleSpec("domain-admin", ("account",), "the domain's admin: accepts or rejects requests, changes instance "
                                           "statuses", required=False),
    RoleSpec("other-domain-admin", ("account",), "the other domain's admin (registers the other-domain "
                                                 "portal)", required=False),
    RoleSpec("lockout-account", ("account",), "a throw-away admin account the lock-out check may block (never "
                                              "one the bench registers its applications with); the domain "
                                              "admin unblocks it afterwards", required=False),
)


class Kt2Generation:
    name = "kt2"
    title = "KT2 (FHIR R4 REST, SMART backend services, HTI launch)"
    validation_kt = 2
    kinds = (TargetKind(name=KIND, title="KT2 voorziening", target_role="server", settings=Kt2Settings,
                        roles={spec.name: spec for spec in _ROLES}), *apps.KINDS)
    suites = (SuiteSpec(
        name="kt2", title="KT2 voorziening", kind=KIND, steps_package="steps.kt2",
        features=REPO / "features" / "kt2", catalogue=REPO / "features" / "kt2" / "requirements.toml",
        profile_requirement="KT2-PROFILE-EXCHANGE",
        exchange_rules="steps.kt2.exchange_rules:check",
        exchange_requirements=("KT2-MEDIA-ANSWER", "KT2-URL-MINTED"),
    ), *apps.SUITES)

    def default_roles(self, kind: str = KIND) -> dict[str, Any]:
        """The admin accounts of the reference voorziening's shipped data (the suite registers its own apps)."""
        if kind in apps.APP_KINDS:
            return {}   # an application under test: the bench registers itself in its own voorziening
        from ktbench.generations.kt2.embedded import admin_roles, default_raw_data

        return dict(admin_roles(default_raw_data()))

    def target_for_url(self, url: str, kind: str = KIND, name: str | None = None) -> Target:
        """A bare `--target URL`: a voorziening with the reference's admin accounts (e.g. `ktbench serve kt2`)."""
        from ktbench.generations.kt2.embedded import (
            IDP_USER,
            OTHER_DOMAIN,
            default_raw_data,
        )

        url = self.normalise_url(kind, url)
        match = _DOMAIN_IN_URL.search(urlsplit(url).path)
        domain = match["domain"] if match else None
        known = [d["name"] for d in default_raw_data().get("domains", [])]
        settings: dict[str, Any] = {"domain": domain}
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):   # a `ktbench serve kt2` with the shipped data
            settings["loopback_http_notifications"] = True
        if domain in known and OTHER_DOMAIN in known and domain != OTHER_DOMAIN and match is not None:
            root = url[: url.rindex("/api/v1/")]
            settings.update(other_domain=OTHER_DOMAIN, other_domain_fhir_base=f"{root}/api/v1/{OTHER_DOMAIN}/fhir/r4")
            settings.update(idp_username=IDP_USER[0], idp_user_identifier=IDP_USER[1])
        return Target(name=name or urlsplit(url).netloc or url, kind=KIND, url=url,
                      settings=Kt2Settings(**settings), roles=self.default_roles())

    @contextmanager
    def embedded(self, suite: SuiteSpec, *, faults: Sequence[str] = (), workdir: Path) -> Iterator[Target]:
        if suite.kind in apps.APP_KINDS:
            with apps.embedded_app(suite, faults=faults, workdir=workdir) as target:
                yield target
            return
        from ktbench.generations.kt2.embedded import running_kt2_bench

        with running_kt2_bench(faults=faults, workdir=workdir) as bench:
            yield bench.target

    def normalise_url(self, kind: str, url: str) -> str:
        """The FHIR base without a trailing slash or a pasted `/metadata`."""
        trimmed = url.rstrip("/")
        for tail in ("/metadata", "/.well-known/smart-configuration"):
            if trimmed.endswith(tail):
                trimmed = trimmed[: -len(tail)]
        return trimmed

    def preflight(self, target: Target) -> list[Any]:
        if target.kind in apps.APP_KINDS:
            return apps.preflight(target)
        from ktbench.generations.kt2.preflight import preflight

        return preflight(target)

    def application_briefing(self, target: Target) -> list[str]:
        return apps.application_briefing(target) if target.kind in apps.APP_KINDS else []

    def fault_catalogue(self, suite: SuiteSpec) -> Any:
        if suite.kind in apps.APP_KINDS:
            from simulators.kt2.apps.faults import MODULE_FAULTS, PORTAL_FAULTS

            return PORTAL_FAULTS if suite.kind == apps.PORTAL_KIND else MODULE_FAULTS
        from simulators.kt2.faults import FAULTS

        return FAULTS


GENERATION = Kt2Generation()

"""KT2 applications under test: a vendor's portal (`kt2-portal`) or eHealth module (`kt2-module`).

The bench plays the voorziening (the reference one, in-process, recorded) and the counter-role application;
the target is the application, made to act through the driver contract (ktbench/driver).  What the bench
hands the application is no secret: the FHIR base of its voorziening and the client id it is registered
under; the application brings its own key pair and publishes its JWKS at `jwks_url`, which the bench
registers, as a domain admin would.

Transport: the bench's voorziening listens on plain http on 127.0.0.1 by default (`server_tls = true`
serves it with a throw-away test CA instead).  An application under test usually runs next to the bench in
the vendor's CI, and plain loopback http spares it trusting a test CA; for the same reason the voorziening
accepts http://127.0.0.1 subscription endpoints and JWKS URLs (loopback only; `loopback_http_subscriptions`).
The real voorziening wants https everywhere, which these suites do not judge.

A vendor's module in a targets file (the bench registers it as `client_id` with the JWKS at `jwks_url` in its
own voorziening on 127.0.0.1:`server_port`; the module is configured with that FHIR base beforehand):

    [targets.acme-module]
    kind = "kt2-module"
    url = "http://127.0.0.1:8080"                      # the module itself
    driver = "http"                                    # or "command" (command = [...]) or "interactive"
    trigger_url = "http://127.0.0.1:8080/ktbench/trigger"
    server_port = 18080                                # FHIR base http://127.0.0.1:18080/api/v1/ktbench-alpha/fhir/r4
    client_id = "acme-module"
    jwks_url = "http://127.0.0.1:8080/.well-known/jwks.json"

`ktbench run --suite kt2-apps --role module --target acme-module` then prints what to hand the module
(`application_briefing`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import Field

from ktbench.core.generation import PreflightProblem, RoleSpec, SuiteSpec, TargetKind
from ktbench.driver.settings import AppTargetSettings
from ktbench.targets.model import Target

REPO = Path(__file__).resolve().parents[3]
PORTAL_KIND = "kt2-portal"
MODULE_KIND = "kt2-module"
APP_KINDS = (PORTAL_KIND, MODULE_KIND)
DOMAIN = "ktbench-alpha"
EMBEDDED_TRAFFIC_TIMEOUT = 2.0   # the simulated applications reply once their traffic is over


class Kt2AppSettings(AppTargetSettings):
    """The keys of a `[targets.NAME]` table of kind kt2-portal or kt2-module (beyond the driver's)."""

    client_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")   # registered as this (= Device id)
    jwks_url: str                                  # where the voorziening fetches the application's JWKS
    domain: str = DOMAIN                           # the domain of the bench's voorziening
    loopback_http_subscriptions: bool = True       # subscription endpoints on http://127.0.0.1 are accepted
    access_token_seconds: int = Field(2, gt=0, le=300)   # short: every action brings fresh client assertions
    # module only: the launch it takes (kt2-protocol.md §2.4-2.5).  "A": introspection; "B": the SMART app launch
    # (authorize + PKCE, the bench plays the browser and the IdP user); the path-B scenarios skip on "A"
    launch_path: Literal["A", "B"] = "A"
    redirect_uri: str = ""                         # module, path B: its registered redirect URI ("" = none listed)


def _roles(counter: str, what: str) -> dict[str, RoleSpec]:
    return {counter: RoleSpec(counter, ("smart-backend",), f"the bench plays {what}; it registers itself",
                              required=False)}


KINDS = (
    TargetKind(name=PORTAL_KIND, title="KT2 portal (application under test)", target_role="application",
               settings=Kt2AppSettings, roles=_roles("module", "the eHealth module the portal launches")),
    TargetKind(name=MODULE_KIND, title="KT2 eHealth module (application under test)", target_role="application",
               settings=Kt2AppSettings, roles=_roles("portal", "the portal that assigns Tasks and launches")),
)

_FEATURES = REPO / "features" / "kt2" / "apps"
SUITES = (
    SuiteSpec(name="kt2-apps-portal", title="KT2 portal under test", kind=PORTAL_KIND, steps_package="steps.kt2_apps",
              features=_FEATURES, catalogue=_FEATURES / "requirements.toml",
              profile_requirement="KT2-APP-PORTAL-PROFILE", default_tags="@role:portal"),
    SuiteSpec(name="kt2-apps-module", title="KT2 eHealth module under test", kind=MODULE_KIND,
              steps_package="steps.kt2_apps", features=_FEATURES, catalogue=_FEATURES / "requirements.toml",
              profile_requirement="KT2-APP-MODULE-PROFILE", default_tags="@role:module"),
)


def role_of(kind: str) -> str:
    return "portal" if kind == PORTAL_KIND else "module"


def free_port() -> int:
    """Where the bench's server for an embedded application will listen (told to the application first)."""
    from simulators.common.host import port_for_later

    return port_for_later()


def fhir_base(settings: Kt2AppSettings, port: int | None = None) -> str:
    scheme = "https" if settings.server_tls else "http"
    return f"{scheme}://127.0.0.1:{port or settings.server_port}/api/v1/{settings.domain}/fhir/r4"


@contextmanager
def embedded_app(suite: SuiteSpec, *, faults: Sequence[str] = (), workdir: Path) -> Iterator[Target]:
    """The bench's simulated application for the suite's role, with `faults`, told to use a voorziening on a
    free port that the suite's session then starts (settings.server_port)."""
    from simulators.kt2.apps.faults import PATH_A_FAULTS
    from simulators.kt2.apps.host import running_app

    role = role_of(suite.kind)
    port = free_port()
    client_id = f"{role}-under-test"
    base = f"http://127.0.0.1:{port}/api/v1/{DOMAIN}/fhir/r4"
    # The embedded module takes path B (the SMART app launch, which also drives every launch scenario through the
    # browser and the IdP), path A when a fault of path A's introspection is on (their kill runs need it).  The
    # simulated module's own default and a vendor target's (Kt2AppSettings.launch_path) are path A;
    # tests/test_kt2_apps_suites.py runs the path-A module too.
    path = "A" if role != "module" or set(faults) & PATH_A_FAULTS else "B"
    with running_app(role, fhir_base=base, client_id=client_id, faults=tuple(faults), launch_path=path) as app:
        settings = Kt2AppSettings(driver="http", trigger_url=app.trigger_url, server_port=port, client_id=client_id,
                                  jwks_url=app.jwks_url, traffic_timeout_seconds=EMBEDDED_TRAFFIC_TIMEOUT,
                                  action_timeout_seconds=20.0, launch_path=path,
                                  redirect_uri=f"{app.base_url}/callback" if role == "module" else "")
        yield Target(name=f"embedded-{role}", kind=suite.kind, url=app.base_url, embedded=True,
                     description=f"ktbench simulated KT2 {role} under test"
                                 + (f" (faults: {', '.join(faults)})" if faults else ""),
                     settings=settings)


def preflight(target: Target) -> list[PreflightProblem]:
    """Ping the application through its driver: a driver that cannot be reached or breaks the contract is a
    configuration verdict (nothing could be tested), not fifty broken scenarios."""
    from ktbench.driver.contract import DriverError, make_action
    from ktbench.driver.drivers import driver_for

    settings = target.settings
    if not isinstance(settings, Kt2AppSettings):
        return [PreflightProblem("configuration", f"target {target.name!r} has no KT2 application settings")]
    if settings.server_port == 0 and not target.embedded:
        return [PreflightProblem("configuration", f"target {target.name!r}: set server_port, the port the "
                                 "application was configured to reach the bench's voorziening on")]
    if settings.server_tls:
        return [PreflightProblem("configuration", f"target {target.name!r}: server_tls = true is not supported by "
                                 "the KT2 application suites yet (the bench's voorziening serves http on 127.0.0.1)")]
    role = role_of(target.kind)
    driver = driver_for(settings, lambda text: None)
    try:
        reply = driver.perform(make_action("ping", generation="kt2", role=role, params={},
                                           instruction="Answer this ping (the bench checks the driver)."))
    except DriverError as exc:
        kind = "unreachable" if "could not be reached" in str(exc) else "configuration"
        return [PreflightProblem(kind, f"the driver of {target.name!r} failed a ping: {exc}")]
    finally:
        driver.close()
    if reply.status not in ("done", "accepted"):
        return [PreflightProblem("configuration", f"the driver of {target.name!r} answered a ping with "
                                 f"{reply.status!r}: {reply.detail}")]
    return []


def application_briefing(target: Target) -> list[str]:
    """What to tell the person or pipeline starting the application (no secrets exist here to leave out)."""
    settings = target.settings
    if not isinstance(settings, Kt2AppSettings):
        return []
    base = fhir_base(settings)
    root = base[: base.index("/api/v1/")]
    return [f"KT2 {role_of(target.kind)} under test: {target.url}",
            f"  the bench's voorziening (FHIR base, = iss): {base}",
            f"  token endpoint (aud of client assertions): {root}/api/v1/{settings.domain}/oauth2/token",
            f"  registered client id (= Device id):        {settings.client_id}",
            f"  JWKS the voorziening fetches:              {settings.jwks_url}",
            *([f"  launch path: {settings.launch_path}" + (f" (redirect URI {settings.redirect_uri})"
                                                             if settings.redirect_uri else "")]
              if role_of(target.kind) == "module" else []),
            f"  driver: {settings.driver}" + (f" at {settings.trigger_url}" if settings.trigger_url else "")]

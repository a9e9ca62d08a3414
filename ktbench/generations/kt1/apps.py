"""KT1.3 applications under test: the kt1-portal and kt1-module kinds, their role suites, settings and
embedded simulated applications.

Here the bench plays the Koppeltaal server (its KT1 reference server, recording every request) and the
counter-role application, and a vendor's portal or eHealth module is the target.  The target's one role
credential is the application's OWN account on the bench's server (the bench configures its server with it,
and prints it at start so the vendor can configure the application; being a role credential, its secrets are
scrubbed from every report).  The application is made to act through the driver contract (ktbench.driver).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import field_validator

from ktbench.core.generation import PreflightProblem, RoleSpec, SuiteSpec, TargetKind
from ktbench.driver.contract import DriverError, make_action
from ktbench.driver.drivers import driver_for
from ktbench.driver.settings import AppTargetSettings
from ktbench.fhir.dstu1.constants import FHIR_BASE_PATH
from ktbench.targets.model import BasicCredential, Secret, Target

PORTAL_KIND = "kt1-portal"
MODULE_KIND = "kt1-module"
ROLE_OF_KIND = {PORTAL_KIND: "portal", MODULE_KIND: "module"}
# the application's default account: the reference server's default data (ktbench serve kt1)
DEFAULT_APP = {"portal": "ktbench-portal", "module": "ktbench-module"}


class Kt1AppSettings(AppTargetSettings):
    """Flat keys of a kt1-portal / kt1-module target table, on top of the driver's."""

    domain: str = "ktbench-alpha"          # the KT1 domain the bench's server puts the application in
    activity: str = "ktbench-game-1"       # the module's ActivityDefinition identifier the scenarios assign
    launch_url: str | None = None          # module: its SSO launch endpoint (the server sends the browser there)

    @field_validator("launch_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("launch_url must be an http:// or https:// URL")
        return value


def _kind(name: str, role: str, title: str) -> TargetKind:
    return TargetKind(name=name, title=title, target_role="application", settings=Kt1AppSettings,
                      roles={role: RoleSpec(role, ("basic",), f"the {role}'s own account on the bench's KT1 "
                                            "server (Basic user/password, OAuth client secret)")})


KINDS = (_kind(PORTAL_KIND, "portal", "KT1.3 portal under test"),
         _kind(MODULE_KIND, "module", "KT1.3 eHealth module under test"))


def _suite(role: str, repo: Any) -> SuiteSpec:
    folder = repo / "features" / "kt1" / "apps"
    return SuiteSpec(name=f"kt1-apps-{role}", title=f"KT1.3 {role} under test", kind=f"kt1-{role}",
                     steps_package="steps.kt1_apps", features=folder, catalogue=folder / "requirements.toml",
                     profile_requirement=f"KT1-APP-{role.upper()}-PROFILE", default_tags=f"@role:{role}")


def suites(repo: Any) -> tuple[SuiteSpec, ...]:
    return (_suite("portal", repo), _suite("module", repo))


def default_roles(kind: str, reference_apps: dict[str, dict[str, Any]]) -> dict[str, BasicCredential]:
    role = ROLE_OF_KIND[kind]
    app = reference_apps[DEFAULT_APP[role]]
    return {role: BasicCredential(role=role, app_id=app["id"], username=app.get("username", app["id"]),
                                  password=Secret(app.get("password", "")),
                                  client_secret=Secret(app.get("client_secret", "")), domain=app["domain"])}


def free_port() -> int:
    """Where the bench's server for an embedded application will listen (told to the application first)."""
    from simulators.common.host import port_for_later

    return port_for_later()


@contextmanager
def embedded_app(kind: str, roles: dict[str, BasicCredential], *, faults: Sequence[str] = (),
                 silent: bool = False, unsupported: Sequence[str] = (), driver: str = "http",
                 traffic_timeout: float = 10.0, name: str | None = None) -> Iterator[Target]:
    """Start the simulated application of `kind` configured for a bench server on a free port; yield its Target.

    `silent`, `unsupported` and `driver="command"` exist for the bench's own tests of the driver machinery.
    """
    from simulators.kt1.apps.host import running_kt1_app

    role = ROLE_OF_KIND[kind]
    port = free_port()
    creds = roles[role]
    with running_kt1_app(role, server_url=f"http://127.0.0.1:{port}", creds=creds, faults=faults,
                         silent=silent, unsupported=unsupported) as app:
        extra: dict[str, Any] = {"trigger_url": app.trigger_url}
        if driver == "command":
            import sys

            extra = {"command": (sys.executable, "-m", "simulators.common.driver_hook", app.trigger_url)}
        settings = Kt1AppSettings(driver=driver, server_port=port, traffic_timeout_seconds=traffic_timeout,
                                  launch_url=app.launch_url if role == "module" else None,
                                  domain=creds.domain, **extra)
        yield Target(name=name or f"embedded-{kind}", kind=kind, url=app.url, embedded=True, settings=settings,
                     description=f"ktbench simulated KT1 {role} under test"
                                 + (f" (faults: {', '.join(faults)})" if faults else ""),
                     roles=roles)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def preflight(target: Target) -> list[PreflightProblem]:
    """Can the bench test this application: its own account configured, the server's port usable, the driver
    answering a ping?  Each problem is a configuration verdict (exit 2), never the application's failure."""
    settings = target.settings
    role = ROLE_OF_KIND[target.kind]
    problems = []
    if role not in target.roles:
        problems.append(PreflightProblem("configuration", f"[targets.{target.name}.roles.{role}] is missing: the "
                                         f"{role}'s own account on the bench's server (app_id, password, "
                                         "client_secret)"))
    if settings.server_port == 0:
        problems.append(PreflightProblem("configuration", f"[targets.{target.name}] server_port is needed: the "
                                         "port the application was configured to reach the bench's KT1 server on"))
    elif not _port_free(settings.server_port):
        problems.append(PreflightProblem("configuration", f"[targets.{target.name}] server_port "
                                         f"{settings.server_port} is in use on 127.0.0.1: the bench's KT1 server "
                                         "must listen there"))
    driver = driver_for(settings, say=lambda text: None)
    try:
        action = make_action("ping", generation="kt1", role=role, instruction="Answer that you are ready.")
        reply = driver.perform(action)
        if reply.status not in ("done", "accepted"):
            problems.append(PreflightProblem("configuration", f"{driver.description} answered the ping with "
                                             f"{reply.status!r}: it must answer every ping with 'done'"))
    except DriverError as exc:
        problems.append(PreflightProblem("configuration", f"the application's driver does not work: {exc}"))
    finally:
        driver.close()
    return problems


def application_briefing(target: Target) -> list[str]:
    """What the person setting up the application must configure in it: printed by the CLI at start, on the
    terminal only (the secrets are revealed here and nowhere else: reports scrub them)."""
    settings = target.settings
    role = ROLE_OF_KIND[target.kind]
    creds = target.roles.get(role)
    server = f"{'https' if settings.server_tls else 'http'}://127.0.0.1:{settings.server_port or '<port>'}"
    lines = [f"The bench plays the KT1.3 server for this {role}: configure the application with",
             f"  server URL      {server}  (FHIR base {server}{FHIR_BASE_PATH})",
             f"  domain          {settings.domain}"]
    if creds is not None:
        lines += [f"  application id  {creds.app_id}",
                  f"  username        {creds.username}",
                  f"  password        {creds.password.reveal()}",
                  f"  client secret   {creds.client_secret.reveal()}"]
    if role == "module":
        lines.append(f"  activity        {settings.activity} (the ActivityDefinition the bench assigns)")
        lines.append(f"  launch URL      {settings.launch_url or '(not set: the SSO scenarios are skipped)'}")
    else:
        lines.append(f"  module          ktbench-bench-module offers activity {settings.activity}")
    return lines

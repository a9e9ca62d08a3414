"""The KT2 suite's session: the bench's simulated applications, registered in the target's domain.

One `Kt2Bench` per pytest process (fixture `kt2_bench`, steps/kt2/conftest.py):

- an `ActorHost` on 127.0.0.1 serves the applications' JWKS, the module's launch and redirect endpoints and
  every notification endpoint (https with the target's `actors_tls_*` certificate, else http);
- each application (portal, module, other-domain portal) is made on first use: from the target's
  pre-registered credentials when it has them (client id, private key, JWKS URL), else registered by the
  bench itself through the domain admin (application admin files, domain admin accepts: seed 001 §5);
- `fresh_instance()` registers a new instance for scenarios that change an instance for good (status
  changes, key rotation): they never disturb the shared applications.

Registration problems are BenchErrors (the scenario is BROKEN and says which step failed), never failures:
the scenarios of the connection-approval feature judge that flow, with their own requirement ids.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ktbench.core.errors import BenchError
from ktbench.targets.model import AccountCredential, SmartBackendCredential, Target
from simulators.common.host import ServerTls
from simulators.kt2.actors import (
    ActorHost,
    AdminClient,
    DiscoveryFailed,
    IdpUser,
    KeyRing,
    Kt2Application,
    Kt2Module,
    Kt2Portal,
    running_actor_host,
)
from simulators.kt2.actors.registration import RegistrationFailed, register

# the bench's applications: name -> (class, target role with pre-registered credentials, which admin registers)
APPLICATIONS: dict[str, tuple[type[Kt2Application], str]] = {
    "portal": (Kt2Portal, "portal"),
    "module": (Kt2Module, "module"),
    "other domain's portal": (Kt2Portal, "other-domain-portal"),
}
ADMIN_ROLES = ("application-admin", "domain-admin", "other-domain-admin")


@dataclass
class Kt2Bench:
    target: Target
    http: Any
    host: ActorHost
    admins: dict[str, AdminClient]
    apps: dict[str, Kt2Application] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _configuration: dict[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<Kt2Bench target={self.target.name!r} apps={sorted(self.apps)}>"

    # -- what the target offers ---------------------------------------------------------------------------
    def setting(self, name: str, default: Any = None) -> Any:
        return self.target.setting(name, default)

    @property
    def fhir_base(self) -> str:
        return self.target.url

    @property
    def domain(self) -> str:
        return self.setting("domain") or ""

    def can_register(self, *, other_domain: bool = False) -> bool:
        needed = ("application-admin", "other-domain-admin" if other_domain else "domain-admin")
        return all(role in self.admins for role in needed)

    def admin(self, role: str) -> AdminClient:
        try:
            return self.admins[role]
        except KeyError:
            raise BenchError(f"target {self.target.name!r} has no {role} account "
                             f"([targets.{self.target.name}.roles.{role}])") from None

    @property
    def idp_user(self) -> IdpUser | None:
        username, identifier = self.setting("idp_username"), self.setting("idp_user_identifier")
        return IdpUser(username, identifier) if username and identifier else None

    def probe_application(self) -> Kt2Application:
        """A client of the target with no instance behind it: discovery and refusals need no registration."""
        return Kt2Application("anonymous", self.http, self.fhir_base, "ktbench-unregistered", KeyRing.generated())

    # -- the shared applications --------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        cls, role = APPLICATIONS[name]
        if self.target.has_role(role):
            return True
        return self.can_register(other_domain=name.startswith("other domain"))

    def app(self, name: str) -> Kt2Application:
        with self._lock:
            if name not in self.apps:
                self.apps[name] = self._make(name)
            return self.apps[name]

    def _make(self, name: str) -> Kt2Application:
        cls, role = APPLICATIONS[name]
        other = name.startswith("other domain")
        base = self.setting("other_domain_fhir_base") if other else self.fhir_base
        if other and not base:
            raise BenchError(f"target {self.target.name!r} declares no other domain "
                             f"([targets.{self.target.name}] other_domain, other_domain_fhir_base)")
        if self.target.has_role(role):
            creds = self.target.role(role)
            if not isinstance(creds, SmartBackendCredential):
                raise BenchError(f"role {role} needs smart-backend credentials")
            keys = KeyRing.from_private_text(creds.private_key_text().reveal(), creds.kid, creds.algorithm)
            hosted = role.replace(" ", "-")
            return cls(name, self.http, base, creds.client_id, keys, jwks_url=creds.jwks_url,
                       launch_url=self.host.launch_url(hosted), redirect_uri=self.host.redirect_uri(hosted))
        if not self.can_register(other_domain=other):
            raise BenchError(f"target {self.target.name!r} has neither pre-registered credentials for role {role!r} "
                             f"nor the admin accounts to register one")
        return self.registered(cls, name, role_name=self._role_name(name), other_domain=other)

    def _role_name(self, name: str) -> str:
        return self.setting("module_role") if name == "module" else self.setting("portal_role")

    def _application_id(self, cls: type[Kt2Application]) -> str:
        return self.setting("module_application") if cls is Kt2Module else self.setting("portal_application")

    def registered(self, cls: type[Kt2Application], name: str, *, role_name: str, other_domain: bool = False,
                   algorithm: str = "RS512", hosted: str | None = None) -> Kt2Application:
        """A new instance of `cls` joined to the domain through the domain admin (file, accept)."""
        hosted = hosted or f"{name.replace(' ', '-').replace(chr(39), '')}-{next(self._counter)}"
        keys = KeyRing.generated(algorithm)
        self.host.add(hosted, keys)
        domain = self.setting("other_domain") if other_domain else self.domain
        base = self.setting("other_domain_fhir_base") if other_domain else self.fhir_base
        if not domain:
            raise BenchError(f"target {self.target.name!r} declares no domain name ([targets.{self.target.name}] "
                             "domain), which connection requests need")
        is_module = cls is Kt2Module
        try:
            done = register(self.admin("application-admin"),
                            self.admin("other-domain-admin" if other_domain else "domain-admin"),
                            application=self._application_id(cls), domain=domain, role=role_name,
                            jwks_uri=self.host.jwks_url(hosted), name=f"ktbench {hosted}",
                            redirect_uris=[self.host.redirect_uri(hosted)] if is_module else None,
                            launch_url=self.host.launch_url(hosted) if is_module else None)
        except RegistrationFailed as exc:
            raise BenchError(f"could not register the bench's {name} in {domain}: {exc}") from None
        return cls(name, self.http, base, done.client_id, keys, jwks_url=self.host.jwks_url(hosted),
                   launch_url=self.host.launch_url(hosted), redirect_uri=self.host.redirect_uri(hosted))

    def hosted_name(self, app: Kt2Application) -> str:
        """The application's path on the actor host (from its JWKS or launch URL)."""
        for url in (app.jwks_url, app.launch_url):
            if url.startswith(self.host.base_url + "/"):
                return url[len(self.host.base_url) + 1:].split("/", 1)[0]
        raise BenchError(f"the {app.name} is not served by the bench's actor host (pre-registered elsewhere)")

    # -- discovery, once per session, for the steps that need an endpoint URL --------------------------------
    def configuration(self) -> dict[str, Any]:
        if self._configuration is None:
            try:
                self._configuration = self.probe_application().configuration
            except DiscoveryFailed as exc:
                raise BenchError(f"the target's smart-configuration cannot be used: {exc}") from None
        return self._configuration


def _actor_tls(target: Target) -> ServerTls | None:
    cert, key = target.setting("actors_tls_cert"), target.setting("actors_tls_key")
    return ServerTls(cert, key) if cert and key else None


def _admin_api(target: Target, http: Any) -> str | None:
    declared = target.setting("admin_api")
    if declared:
        return declared
    try:
        configuration = Kt2Application("anonymous", http, target.url, "-", KeyRing([])).configuration
    except DiscoveryFailed:
        return None
    management = configuration.get("management_endpoint")
    return management.rstrip("/") + "/api" if isinstance(management, str) and management else None


@contextmanager
def open_bench(target: Target, http: Any) -> Iterator[Kt2Bench]:
    with ExitStack() as stack:
        host = stack.enter_context(running_actor_host(tls=_actor_tls(target),
                                                      public_base=target.setting("actors_public_base")))
        accounts = {r: c for r, c in target.roles.items() if isinstance(c, AccountCredential)}
        admins: dict[str, AdminClient] = {}
        if accounts:
            api = _admin_api(target, http)
            if api is not None:
                admins = {role: AdminClient(role, http, api, c.username, c.password.reveal())
                          for role, c in accounts.items()}
        yield Kt2Bench(target=target, http=http, host=host, admins=admins)


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")

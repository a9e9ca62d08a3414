"""The simulated KT2 applications: the counter-roles the bench plays against a voorziening (and, later, the
reference applications a vendor's application is judged against).

- `keys`: signing keys and the JWKS an application publishes;
- `host`: the one web server for their JWKS, launch, redirect and notification endpoints, with an inbox;
- `application`: discovery, client assertions, tokens, FHIR REST, introspection (every application);
- `portal`, `module`: HTI launch tokens and the launch POST; the SMART app launch with PKCE;
- `idp_user`: the person at the identity provider; `admin`: the person at the domain admin application;
- `resources`: KT2 resources as applications write them; `registration`: joining a domain.
"""

from simulators.kt2.actors.admin import AdminClient, AdminLoginFailed
from simulators.kt2.actors.application import (
    FHIR_JSON,
    JWT_BEARER,
    DiscoveryFailed,
    Http,
    Kt2Application,
    PlainHttp,
    TokenRefused,
)
from simulators.kt2.actors.host import ActorHost, Inbox, Received, running_actor_host
from simulators.kt2.actors.idp_user import IdpLoginFailed, IdpUser
from simulators.kt2.actors.keys import KeyRing, SigningKey
from simulators.kt2.actors.module import LAUNCH_SCOPE, Kt2Module, SmartLaunch, pkce_pair
from simulators.kt2.actors.portal import Kt2Portal

__all__ = ["FHIR_JSON", "JWT_BEARER", "LAUNCH_SCOPE", "ActorHost", "AdminClient", "AdminLoginFailed",
           "DiscoveryFailed", "Http", "IdpLoginFailed", "IdpUser", "Inbox", "KeyRing", "Kt2Application", "Kt2Module",
           "Kt2Portal", "PlainHttp", "Received", "SigningKey", "SmartLaunch", "TokenRefused", "pkce_pair",
           "running_actor_host"]

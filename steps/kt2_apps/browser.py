"""The user's browser on path B of a launch (the SMART app launch, kt2-protocol.md §2.5), played by the bench.

The module answered the launch with a redirect to the voorziening's authorize; the browser follows it, the
voorziening sends it to its identity provider, the IdP user logs in (simulators/kt2/idp: a page with a log-in
link per user) and the voorziening redirects back to the module's redirect URI with a code and the state,
where the module trades the code and lets the user in (or not).  The bench's voorziening is the bench's own, so
its IdP user is known: the bench's portal makes its patients with that user's identifier.  The browser's
requests carry the bench header (they are the bench's, even where they carry what the module chose).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulators.kt2.actors.idp_user import IdpLoginFailed, IdpUser

IDP_USER = IdpUser("jan.jansen", "jan.jansen@ktbench.test", name="browser")
"""A user of the bench voorziening's default data (simulators/kt2/default_data.toml, IdP alpha-clients)."""
MAX_HOPS = 8
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class BrowserTrip:
    authorize_url: str                              # where the module sent the browser (its authorize request)
    answers: list[Any] = field(default_factory=list)
    callback: dict[str, str] | None = None          # the query the browser brought back to the module
    problem: str = ""                               # why the trip ended before the module (the voorziening refused)

    @property
    def final(self) -> Any:
        return self.answers[-1]

    @property
    def authorize(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.authorize_url).query, keep_blank_values=True))


def _get(world: Any, url: str) -> Any:
    return world.bench.actor.http.request("GET", url, headers={"Accept": "text/html"}, role="browser",
                                          validate=False)


def _at_module(world: Any, url: str) -> bool:
    """Back at the module: its registered redirect URI when the target names one, else the module's host."""
    redirect_uri = world.settings.redirect_uri
    if redirect_uri:
        return url.split("?", 1)[0] == redirect_uri
    app = urlsplit(world.bench.target.url)
    there = urlsplit(url)
    return (there.hostname, there.port) == (app.hostname, app.port)


def browse(world: Any, answer: Any) -> BrowserTrip:
    """Follow the module's redirect to authorize through the IdP log-in back to the module; the trip is kept in
    world.notes["browser"]; its `final` answer is what the user saw last."""
    trip = BrowserTrip(authorize_url=answer.headers["location"])
    world.notes["browser"] = trip
    current = _get(world, trip.authorize_url)
    trip.answers.append(current)
    logged_in = False
    for _ in range(MAX_HOPS):
        location = current.headers.get("location", "")
        if current.status_code not in REDIRECTS or not location:
            break
        if _at_module(world, location):
            trip.callback = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
            trip.answers.append(_get(world, location))
            return trip
        if "/idp/" in urlsplit(location).path and not logged_in:
            logged_in = True
            try:
                current = IDP_USER.log_in(world.bench.actor.http, location)
            except IdpLoginFailed as problem:
                trip.problem = str(problem)
                return trip
        else:
            current = _get(world, location)
        trip.answers.append(current)
    trip.problem = f"the browser ended at HTTP {current.status_code} before it came back to the module"
    return trip

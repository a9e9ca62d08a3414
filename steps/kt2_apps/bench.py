"""The bench's side of a KT2 application-under-test session: the reference voorziening and the counter-role
application, started once for the pytest session.

- The voorziening (simulators/kt2, with the data-file registry) listens on 127.0.0.1:<settings.server_port>
  over plain http (see ktbench/generations/kt2/apps.py for why), wrapped in `RecordingMiddleware`: every
  request the application under test sends is recorded and judged.  The application is registered directly
  in the voorziening's data with the client id and JWKS URL of the target settings, in the role of a
  Behandelaarsportaal or an eHealth Module; the bench's own counter-role application likewise.
- The counter-role application is the bench's actor (simulators/kt2/actors) hosted on an `ActorHost`, also
  recorded: for a portal under test the bench is the module (its launch URL receives the portal's launches;
  it published the activity the portal assigns), for a module under test the bench is the portal (it makes
  patients and Tasks and sends the launches).
- The bench's own requests carry the header `X-Ktbench-Bench`, so the recording tells them from the
  application's.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktbench.core.errors import BenchError
from ktbench.driver.drivers import Driver
from ktbench.generations.kt2.apps import Kt2AppSettings, role_of
from ktbench.generations.kt2.embedded import default_raw_data
from ktbench.http.inbound import InboundLog, RecordingMiddleware
from ktbench.targets.model import Target
from simulators.common.host import running_asgi
from simulators.kt2.actors import ActorHost, KeyRing, Kt2Module, Kt2Portal, resources

BENCH_HEADER = "X-Ktbench-Bench"
APP_ROLES = {"portal": "Behandelaarsportaal", "module": "eHealth Module"}
BENCH_CLIENT = {"portal": "ktbench-bench-portal", "module": "ktbench-bench-module"}
BENCH_APPLICATION = {"portal": "ktbench-portal", "module": "ktbench-module"}


class MarkedHttp:
    """The session's recording client, with every bench request marked (the recording tells whose it is)."""

    def __init__(self, http: Any) -> None:
        self.inner = http

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        headers[BENCH_HEADER] = "1"
        return self.inner.request(method, url, headers=headers, **kwargs)


@dataclass
class AppBench:
    target: Target
    settings: Kt2AppSettings
    role: str                          # the application under test: portal | module
    counter: str                       # what the bench plays
    server_url: str                    # root of the voorziening
    fhir_base: str
    server_log: InboundLog
    actors_log: InboundLog
    host: ActorHost
    actor: Any                         # Kt2Module or Kt2Portal (the bench's counter-role application)
    driver: Driver
    services: Any                      # the voorziening's app.state.kt2 (in-process)
    notes: dict[str, Any] = field(default_factory=dict)   # session-wide facts (the published activity ...)

    @property
    def token_endpoint(self) -> str:
        return f"{self.server_url}/api/v1/{self.settings.domain}/oauth2/token"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.server_url}/api/v1/{self.settings.domain}/oauth2/introspect"

    @property
    def app_device(self) -> str:
        return f"Device/{self.settings.client_id}"


def voorziening_data(settings: Kt2AppSettings, role: str, host: ActorHost, counter: str) -> dict[str, Any]:
    """The shipped default data, with bench timers and both applications registered in the domain."""
    raw = default_raw_data()
    server = dict(raw.get("server") or {})
    server.update(access_token_seconds=settings.access_token_seconds, clock_skew_seconds=5,
                  allow_loopback_http_subscriptions=settings.loopback_http_subscriptions,
                  allow_loopback_http_jwks=True, jwks_cache_seconds=1.0, notification_attempts=1,
                  notification_backoff_seconds=0.1)
    raw["server"] = server
    apps = [dict(a) for a in raw.get("applications", [])]
    for app in apps:
        if app["id"] == BENCH_APPLICATION[counter]:
            bench = {"domain": settings.domain, "client_id": BENCH_CLIENT[counter], "role": APP_ROLES[counter],
                     "name": f"ktbench {counter} (the bench)", "jwks_url": host.jwks_url(counter)}
            if counter == "module":
                bench.update(launch_url=host.launch_url(counter), redirect_uris=[host.redirect_uri(counter)])
            app["instances"] = [*app.get("instances", []), bench]
    apps.append({"id": f"{role}-under-test", "name": f"KT2 {role} under test", "vendor": "the vendor",
                 "instances": [{"domain": settings.domain, "client_id": settings.client_id, "role": APP_ROLES[role],
                                "name": f"{role} under test", "jwks_url": settings.jwks_url,
                                **({"redirect_uris": [settings.redirect_uri]} if settings.redirect_uri else {})}]})
    raw["applications"] = apps
    return raw


@contextmanager
def open_app_bench(target: Target, http: Any, driver: Driver) -> Iterator[AppBench]:
    from simulators.kt2.app import create_app
    from simulators.kt2.data import parse_data
    from simulators.kt2.registry import DataFileRegistry

    settings = target.settings
    if not isinstance(settings, Kt2AppSettings):
        raise BenchError(f"target {target.name!r} has no KT2 application settings (kind {target.kind})")
    if settings.server_tls:
        raise BenchError("server_tls = true is not supported by the KT2 application suites yet: the bench's "
                         "voorziening serves plain http on 127.0.0.1")
    role = role_of(target.kind)
    counter = "module" if role == "portal" else "portal"
    server_log, actors_log = InboundLog(), InboundLog()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ktbench-kt2-apps-")))
        host = ActorHost()
        keys = KeyRing.generated("RS512")
        host.add(counter, keys)
        actors = stack.enter_context(running_asgi(RecordingMiddleware(host.asgi, actors_log),
                                                  name=f"kt2-bench-{counter}"))
        host.base_url = actors.url.rstrip("/")
        data = parse_data(voorziening_data(settings, role, host, counter), "the KT2 application suite's data")
        app = create_app(data, db=str(workdir / "kt2-apps.sqlite3"), registry=DataFileRegistry)
        stack.callback(app.state.kt2.close)
        server = stack.enter_context(running_asgi(RecordingMiddleware(app, server_log), name="kt2-apps-voorziening",
                                                  port=settings.server_port))
        root = server.url.rstrip("/")
        fhir_base = f"{root}/api/v1/{settings.domain}/fhir/r4"
        marked = MarkedHttp(http)
        cls = Kt2Module if counter == "module" else Kt2Portal
        actor = cls(counter, marked, fhir_base, BENCH_CLIENT[counter], keys, jwks_url=host.jwks_url(counter),
                    launch_url=host.launch_url(counter), redirect_uri=host.redirect_uri(counter))
        yield AppBench(target=target, settings=settings, role=role, counter=counter, server_url=root,
                       fhir_base=fhir_base, server_log=server_log, actors_log=actors_log, host=host, actor=actor,
                       driver=driver, services=app.state.kt2)


def bench_activity(bench: AppBench) -> dict[str, Any]:
    """For a portal under test: the bench's module publishes one activity (Endpoint = its launch URL) per
    session; the portal assigns and launches it."""
    if "activity" not in bench.notes:
        actor = bench.actor
        endpoint = actor.create(resources.endpoint(actor.launch_url, "ktbench module (the bench)"))
        if endpoint.status_code != 201:
            raise BenchError(f"the bench's module could not create its Endpoint: HTTP {endpoint.status_code}")
        code = f"ktbench-activity-{uuid.uuid4().hex[:8]}"
        body = resources.activity_definition(endpoint.json()["id"], title="Dagboek", publisher_id=code)
        body["identifier"][0]["value"] = code
        made = actor.create(body)
        if made.status_code != 201:
            raise BenchError(f"the bench's module could not publish its activity: HTTP {made.status_code}")
        bench.notes["activity"] = {"code": code, "definition": made.json(), "endpoint": endpoint.json()}
    return bench.notes["activity"]


def notification_request_ids(bench: AppBench, subscription_id: str) -> list[str]:
    """The X-Request-Id of every notification the bench's voorziening sent for Subscription/<id>, read from its
    transmit AuditEvents (the voorziening is the bench's own, read in-process: the notification itself went
    straight to the application, past the bench's recording)."""
    import json

    from simulators.kt2.fhir import search
    from simulators.kt2.fhir.searchparams import TRACE_URLS

    bench.services.audit.flush()
    query = search.parse_query("AuditEvent", [("entity", f"Subscription/{subscription_id}")], default_count=200,
                               max_count=200)
    found = []
    for _, _, body in search.matches(bench.services.ctx.store, bench.settings.domain, query, None):
        event = json.loads(body)
        if (event.get("type") or {}).get("code") != "transmit":
            continue
        found += [e.get("valueId") for e in event.get("extension") or []
                  if e.get("url") == TRACE_URLS["requestId"] and e.get("valueId")]
    return found

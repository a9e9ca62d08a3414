"""Where the simulated KT2 applications listen: one small web server for all of them.

A KT2 application is not only a client.  The voorziening fetches its JWKS (TOP-KT-020), a portal
form-POSTs launches to a module's launch URL (TOP-KT-007), the authorisation server redirects a browser to
the module's redirect URI, and the voorziening POSTs subscription notifications to an endpoint the
application chose.  `ActorHost` serves all of that for every simulated application under its own path:

    {base}/{app}/jwks                 GET   the application's KeyRing as a JWKS (public parts only)
    {base}/{app}/launch               POST  a launch (form: launch, iss): recorded
    {base}/{app}/callback             GET   the end of an authorize redirect (code, state or error): recorded
    {base}/{app}/notify/{channel}     POST  a subscription notification: recorded, answered with the next
                                            queued status (default 200)

Everything received lands in an `Inbox` that steps wait on (with a timeout), so a scenario can say "the
portal is notified" without sleeping.  The host runs on 127.0.0.1 (http, or https with a certificate from
the bench's test CA: the voorziening refuses http subscription endpoints); `public_base` replaces the URL
the applications register when a remote voorziening reaches the host through a tunnel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from simulators.common.host import ServerTls, running_asgi
from simulators.kt2.actors.keys import KeyRing

MAX_BODY = 65_536
JWKS_MAX_AGE = 60


@dataclass(frozen=True)
class Received:
    """One request the host received for an application."""

    app: str
    kind: str                       # "launch" | "callback" | "notification" | "jwks"
    path: str
    channel: str                    # notification channel (the last path segment); "" otherwise
    headers: dict[str, str]         # lower-case names
    body: bytes
    form: dict[str, str]            # launch form fields or callback query parameters
    at: float = field(default_factory=time.time)

    def __repr__(self) -> str:       # steps show it as a parameter: no launch tokens or codes
        return f"<Received {self.kind} for {self.app} at {self.path}>"


class Inbox:
    """What the host received, in order; `wait(predicate, timeout)` blocks until a match arrives."""

    def __init__(self) -> None:
        self._items: list[Received] = []
        self._changed = threading.Condition()

    def add(self, item: Received) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def items(self, predicate: Callable[[Received], bool] = lambda r: True) -> list[Received]:
        with self._changed:
            return [r for r in self._items if predicate(r)]

    def wait(self, predicate: Callable[[Received], bool], timeout: float, count: int = 1) -> list[Received]:
        """The first `count` matching items, waiting up to `timeout` seconds; fewer if time ran out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._items if predicate(r)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found[:count] if len(found) >= count else found
                self._changed.wait(left)


@dataclass
class HostedApp:
    """The host's view of one application: its keys and how its endpoints answer."""

    name: str
    keys: KeyRing
    jwks_requests: int = 0
    notification_statuses: dict[str, list[int]] = field(default_factory=dict)   # channel -> answers to give
    launch_answer: tuple[int, str] = (200, "Launch ontvangen")


class ActorHost:
    def __init__(self) -> None:
        self.apps: dict[str, HostedApp] = {}
        self.inbox = Inbox()
        self.base_url = ""                  # set once the server listens (or the public base)
        self._lock = threading.Lock()
        self.asgi = _closing(Starlette(routes=[
            Route("/{app}/jwks", self._jwks, methods=["GET"]),
            Route("/{app}/launch", self._launch, methods=["POST"]),
            Route("/{app}/callback", self._callback, methods=["GET"]),
            Route("/{app}/notify/{channel}", self._notify, methods=["POST"]),
        ]))

    # -- registration of applications ---------------------------------------------------------------
    def add(self, name: str, keys: KeyRing) -> HostedApp:
        with self._lock:
            hosted = self.apps[name] = HostedApp(name, keys)
        return hosted

    def url(self, app: str, endpoint: str) -> str:
        return f"{self.base_url}/{app}/{endpoint}"

    def jwks_url(self, app: str) -> str:
        return self.url(app, "jwks")

    def launch_url(self, app: str) -> str:
        return self.url(app, "launch")

    def redirect_uri(self, app: str) -> str:
        return self.url(app, "callback")

    def notification_url(self, app: str, channel: str) -> str:
        return self.url(app, f"notify/{channel}")

    def answer_notifications(self, app: str, channel: str, statuses: list[int]) -> None:
        """The next notifications on `channel` get these statuses, in order (then 200)."""
        with self._lock:
            self.apps[app].notification_statuses[channel] = list(statuses)

    # -- endpoints ----------------------------------------------------------------------------------------
    def _app(self, request: Request) -> HostedApp | None:
        return self.apps.get(request.path_params["app"])

    async def _jwks(self, request: Request) -> Response:
        hosted = self._app(request)
        if hosted is None:
            return JSONResponse({"error": "unknown application"}, status_code=404)
        hosted.jwks_requests += 1
        return JSONResponse(hosted.keys.jwks(), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})

    async def _record(self, request: Request, kind: str, form: dict[str, str], body: bytes = b"",
                      channel: str = "") -> None:
        self.inbox.add(Received(app=request.path_params["app"], kind=kind, path=request.url.path, channel=channel,
                                headers={k.lower(): v for k, v in request.headers.items()}, body=body, form=form))

    async def _launch(self, request: Request) -> Response:
        hosted = self._app(request)
        if hosted is None:
            return HTMLResponse("<p>Onbekende applicatie</p>", status_code=404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return HTMLResponse("<p>Te groot</p>", status_code=413)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return HTMLResponse("<p>Ongeldig formulier</p>", status_code=400)
        await self._record(request, "launch", form, body)
        status, text = hosted.launch_answer
        return HTMLResponse(f"<!doctype html><title>{text}</title><p>{text}</p>", status_code=status)

    async def _callback(self, request: Request) -> Response:
        if self._app(request) is None:
            return HTMLResponse("<p>Onbekende applicatie</p>", status_code=404)
        await self._record(request, "callback", dict(request.query_params))
        return HTMLResponse("<!doctype html><title>Terug</title><p>Aanmelding ontvangen</p>")

    async def _notify(self, request: Request) -> Response:
        hosted = self._app(request)
        if hosted is None:
            return Response(status_code=404)
        body = await request.body()
        channel = request.path_params["channel"]
        await self._record(request, "notification", {}, body[:MAX_BODY], channel)
        with self._lock:
            queue = hosted.notification_statuses.get(channel) or []
            status = queue.pop(0) if queue else 200
        return Response(status_code=status)


def _closing(app):
    """Every answer says `Connection: close`.  The bench's session client and the voorziening's notifier would
    otherwise keep idle TLS connections open, and an asyncio server (Python 3.12) stops only once they close:
    the host would hang at the end of every run.  The host's traffic is a few requests per scenario."""
    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)

        async def send_closing(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": headers + [(b"connection", b"close")]}
            await send(message)
        return await app(scope, receive, send_closing)
    return wrapped


@contextmanager
def running_actor_host(host: ActorHost | None = None, *, tls: ServerTls | None = None,
                       public_base: str | None = None) -> Iterator[ActorHost]:
    """Serve `host` on 127.0.0.1 (port 0); its URLs start with `public_base` when given."""
    host = host or ActorHost()
    with running_asgi(host.asgi, tls=tls, name="kt2-actors") as server:
        host.base_url = (public_base or server.url).rstrip("/")
        yield host

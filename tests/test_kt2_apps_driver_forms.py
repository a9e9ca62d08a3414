"""The driver forms of the KT2 application suites: the command hook works like the HTTP trigger, the
interactive prompt can be answered by a script, an application that answers but sends nothing makes scenarios
BROKEN (not failed), `unsupported` skips, and an unreachable driver stops the run at the preflight with an
unreachable verdict."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ktbench.cli.registry import build_registry
from ktbench.driver.contract import reply_for
from ktbench.generations.kt2.apps import Kt2AppSettings, embedded_app, free_port
from ktbench.runner.suite_run import RunOptions, run_suite
from ktbench.targets.model import Target
from simulators.common.host import running_asgi
from simulators.kt2.apps.host import running_app
from tests.scripted_person import run_interactively

OPTIONS = RunOptions(capture_output=True, quiet=True, timeout=300)


@contextmanager
def _command_target(tmp_path: Path) -> Iterator[Target]:
    """The simulated module, driven through the command hook instead of its trigger URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/ktbench-alpha/fhir/r4"
    with running_app("module", fhir_base=base, client_id="module-under-test") as app:
        settings = Kt2AppSettings(driver="command", command=(sys.executable, "-m", "simulators.common.driver_hook",
                                                             app.trigger_url),
                                  server_port=port, client_id="module-under-test", jwks_url=app.jwks_url,
                                  traffic_timeout_seconds=2.0)
        yield Target(name="module-by-command", kind="kt2-module", url=app.base_url, settings=settings)


def test_command_hook_driver_runs_the_module_suite(tmp_path: Path) -> None:
    with _command_target(tmp_path) as target:
        opts = RunOptions(**{**OPTIONS.__dict__, "tags": "@req:KT2-APP-MODULE-AD-ENDPOINT or "
                                                          "@req:KT2-APP-MODULE-TASK-STATUS"})
        run = run_suite(build_registry(), "kt2-apps-module", target=target, workdir=tmp_path, options=opts)
    assert run.returncode == 0, run.output
    assert run.counts["passed"] == len(run.scenarios) == 3, run.counts


@contextmanager
def _silent_portal() -> Iterator[str]:
    """A portal whose driver says `done` to send-patient but sends nothing, and `unsupported` to subscribe."""
    async def trigger(request: Request) -> Response:
        action = await request.json()
        status = "unsupported" if action.get("action") == "subscribe" else "done"
        return JSONResponse(reply_for(action, status, "silent test portal").to_json())

    async def root(request: Request) -> Response:
        return JSONResponse({"keys": []})

    app = Starlette(routes=[Route("/trigger", trigger, methods=["POST"]), Route("/", root, methods=["GET"])])
    with running_asgi(app, name="silent-portal") as server:
        yield server.url.rstrip("/")


def test_no_traffic_is_broken_and_unsupported_is_skipped(tmp_path: Path) -> None:
    with _silent_portal() as base:
        settings = Kt2AppSettings(driver="http", trigger_url=f"{base}/trigger", server_port=free_port(),
                                  client_id="silent-portal", jwks_url=f"{base}/", traffic_timeout_seconds=0.5)
        target = Target(name="silent", kind="kt2-portal", url=base, settings=settings)
        opts = RunOptions(**{**OPTIONS.__dict__, "tags": "@req:KT2-APP-PORTAL-ASSERTION-CLAIMS or "
                                                          "@req:KT2-APP-PORTAL-SUBSCRIPTION"})
        run = run_suite(build_registry(), "kt2-apps-portal", target=target, workdir=tmp_path, options=opts)
    outcomes = {s.name: (s.outcome, s.message) for s in run.scenarios}
    claims = outcomes["The portal's client assertions name itself and the token endpoint"]
    assert claims[0] == "broken" and "no traffic within" in claims[1], outcomes
    subscription = outcomes["A Subscription of the portal follows the KT2 rules"]
    assert subscription[0] == "skipped" and "subscribe" in subscription[1], outcomes


def test_unreachable_driver_is_a_configuration_verdict(tmp_path: Path) -> None:
    dead = free_port()
    settings = Kt2AppSettings(driver="http", trigger_url=f"http://127.0.0.1:{dead}/trigger", server_port=free_port(),
                              client_id="nobody", jwks_url=f"http://127.0.0.1:{dead}/jwks", action_timeout_seconds=2)
    target = Target(name="nobody", kind="kt2-module", url=f"http://127.0.0.1:{dead}", settings=settings)
    run = run_suite(build_registry(), "kt2-apps-module", target=target, workdir=tmp_path, options=OPTIONS)
    assert run.preflight and run.preflight[0].kind == "unreachable", run.preflight
    assert run.summary["verdict"] == "unreachable"
    assert not run.scenarios


def test_interactive_mode_answered_by_a_script(tmp_path: Path) -> None:
    """`ktbench run` with driver = "interactive": a script reads each prompt and carries the action out (here by
    handing it to the simulated module's trigger, as a person would click in the module)."""
    _, suite = build_registry().suite("kt2-apps-module")
    with embedded_app(suite, workdir=tmp_path) as started:
        run = run_interactively(tmp_path, started, "kt2-apps-module",
                                "@req:KT2-APP-MODULE-AD-ENDPOINT or @req:KT2-APP-MODULE-OWN-TOKEN",
                                traffic_timeout_seconds=15.0)
    assert run.code == 0, run.output[-3000:]
    assert run.answered == ["publish-activity", "publish-activity"], run.output[-3000:]
    assert "Please make the KT2 module act now" in run.output

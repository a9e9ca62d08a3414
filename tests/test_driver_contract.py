"""The application driver contract (ktbench.driver) and inbound recording (ktbench.http.inbound), piece by piece.

Each driver form is exercised for real: the HTTP trigger against a Starlette app on 127.0.0.1, the command hook
as a real subprocess (also through simulators.common.driver_hook), the interactive prompt through its printed
machine-readable line.  The end-to-end use (role suites against the simulated applications) is tested in
tests/test_kt1_apps*.py and tests/test_kt2_apps*.py.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from ktbench.core.errors import BenchError
from ktbench.core.events import EventStream, HttpExchange
from ktbench.core.redact import Redactor
from ktbench.driver.contract import (
    DriverError,
    action_names,
    make_action,
    parse_reply,
    schema_problems,
)
from ktbench.driver.drivers import (
    PROMPT_PREFIX,
    CommandHook,
    HttpTrigger,
    Interactive,
    driver_for,
)
from ktbench.driver.settings import AppTargetSettings
from ktbench.http.inbound import InboundLog, NoTraffic, RecordingMiddleware, publish
from simulators.common.host import running_asgi


def _action(name: str = "send-patient", **params: object) -> dict:
    params = params or {"patient": {"identifier": "p-1", "family": "Jansen", "given": "Piet"}}
    return make_action(name, generation="kt2", role="portal", instruction="Send patient Piet Jansen.",
                       params=params)


# -- the schemas ------------------------------------------------------------------------------------------------
def test_the_bench_only_builds_actions_its_schema_accepts() -> None:
    action = _action()
    assert schema_problems(action, "action") == []
    assert action["id"].startswith("act-") and action["ktbench_driver"] == 1
    with pytest.raises(BenchError, match="params/patient: 'family' is a required property"):
        make_action("send-patient", generation="kt2", role="portal", instruction="x",
                    params={"patient": {"identifier": "p", "given": "Piet"}})
    with pytest.raises(BenchError, match="is not one of"):
        make_action("make-coffee", generation="kt2", role="portal", instruction="x")
    with pytest.raises(BenchError, match="should be non-empty|is too short"):
        make_action("ping", generation="kt1", role="module", instruction="")
    assert {"ping", "send-patient", "process-mailbox", "accept-launch"} <= set(action_names())


def test_a_ping_carries_no_params_and_unknown_keys_are_refused() -> None:
    ping = make_action("ping", generation="kt1", role="portal", instruction="Are you there?")
    assert schema_problems({**ping, "params": {"x": 1}}, "action")
    assert schema_problems({**ping, "extra": True}, "action")


def test_replies_are_checked_against_their_schema_and_the_action_id() -> None:
    action = _action()
    good = json.dumps({"ktbench_driver": 1, "id": action["id"], "status": "done", "detail": "sent"})
    assert parse_reply(good, action, "hook").status == "done"
    with pytest.raises(DriverError, match="did not answer with JSON"):
        parse_reply("OK", action, "hook")
    with pytest.raises(DriverError, match="status: 'ok' is not one of"):
        parse_reply(json.dumps({"ktbench_driver": 1, "id": action["id"], "status": "ok"}), action, "hook")
    with pytest.raises(DriverError, match="with the reply of act-other"):
        parse_reply(json.dumps({"ktbench_driver": 1, "id": "act-other", "status": "done"}), action, "hook")


def test_settings_name_what_each_driver_needs() -> None:
    assert AppTargetSettings().driver == "interactive"
    with pytest.raises(ValidationError, match="needs trigger_url"):
        AppTargetSettings(driver="http")
    with pytest.raises(ValidationError, match="needs command"):
        AppTargetSettings(driver="command")
    with pytest.raises(ValidationError, match="http:// or https://"):
        AppTargetSettings(driver="http", trigger_url="ftp://x")
    with pytest.raises(ValidationError):
        AppTargetSettings(drivr="http")  # type: ignore[call-arg]
    assert isinstance(driver_for(AppTargetSettings(driver="command", command=("true",)), print), CommandHook)


# -- the HTTP trigger -------------------------------------------------------------------------------------------
def _trigger_app(seen: list[dict]) -> Starlette:
    async def trigger(request: Request):
        action = json.loads(await request.body())
        seen.append(action)
        if action["action"] == "report-status":
            return PlainTextResponse("boom", status_code=500)
        if action["action"] == "subscribe":
            return PlainTextResponse("not json")
        status = "unsupported" if action["action"] == "launch-task" else "done"
        return JSONResponse({"ktbench_driver": 1, "id": action["id"], "status": status})

    return Starlette(routes=[Route("/trigger", trigger, methods=["POST"])])


def test_the_http_trigger_posts_the_action_and_reads_the_reply() -> None:
    seen: list[dict] = []
    with running_asgi(_trigger_app(seen), name="trigger") as server, httpx.Client() as client:
        driver = HttpTrigger(f"{server.url}/trigger", client=client, timeout=5)
        action = _action()
        assert driver.perform(action).status == "done"
        assert seen == [action]
        launch = _action("launch-task", patient_identifier="p-1", activity="act")
        assert driver.perform(launch).status == "unsupported"
        with pytest.raises(DriverError, match="answered action 'report-status' with HTTP 500"):
            driver.perform(_action("report-status", status="completed"))
        with pytest.raises(DriverError, match="did not answer with JSON"):
            driver.perform(_action("subscribe", criteria="Task?status=completed"))
    with pytest.raises(DriverError, match="could not be reached"):
        HttpTrigger(f"{server.url}/trigger", timeout=2).perform(action)


# -- the command hook -------------------------------------------------------------------------------------------
def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "hook.py"
    path.write_text("import json, sys\naction = json.load(sys.stdin)\n" + body, encoding="utf-8")
    return [sys.executable, str(path)]


def test_the_command_hook_gets_the_action_on_stdin_and_prints_the_reply(tmp_path: Path) -> None:
    hook = CommandHook(_script(tmp_path, "print('working...')\n"
                                         "print(json.dumps({'ktbench_driver': 1, 'id': action['id'],"
                                         " 'status': 'accepted', 'detail': action['params']['patient']['family']}))"))
    reply = hook.perform(_action())
    assert (reply.status, reply.detail) == ("accepted", "Jansen")  # the last line is the reply


def test_a_failing_or_silent_or_slow_hook_is_a_driver_error(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="exited with 3 .*: no patient"):
        CommandHook(_script(tmp_path, "print('no patient', file=sys.stderr); sys.exit(3)")).perform(_action())
    with pytest.raises(DriverError, match="printed no reply"):
        CommandHook(_script(tmp_path, "pass")).perform(_action())
    with pytest.raises(DriverError, match="within 1 s"):
        CommandHook(_script(tmp_path, "import time; time.sleep(5)"), timeout=1).perform(_action())
    with pytest.raises(DriverError, match="no such command"):
        CommandHook([str(tmp_path / "missing")]).perform(_action())


def test_the_forwarding_hook_drives_a_trigger_endpoint() -> None:
    seen: list[dict] = []
    with running_asgi(_trigger_app(seen), name="trigger") as server:
        hook = CommandHook([sys.executable, "-m", "simulators.common.driver_hook", f"{server.url}/trigger"],
                           cwd=str(Path(__file__).resolve().parents[1]))
        assert hook.perform(_action()).status == "done"
        assert len(seen) == 1
        with pytest.raises(DriverError, match="exited with 1"):
            hook.perform(_action("report-status", status="completed"))


# -- interactive ------------------------------------------------------------------------------------------------
def test_the_interactive_prompt_says_what_to_do_and_carries_the_action_for_a_script() -> None:
    said: list[str] = []
    driver = Interactive(say=said.append)
    action = _action()
    assert driver.perform(action).status == "accepted"
    text = "".join(said)
    assert "Send patient Piet Jansen." in text and "KT2 portal" in text
    line = next(x for x in text.splitlines() if x.startswith(PROMPT_PREFIX))
    assert json.loads(line[len(PROMPT_PREFIX):]) == action
    said.clear()
    assert driver.perform(make_action("ping", generation="kt2", role="portal", instruction="?")).status == "done"
    assert said == []  # a ping needs nobody


# -- inbound recording ------------------------------------------------------------------------------------------
def _server_app() -> Starlette:
    async def patient(request: Request):
        await request.body()
        return JSONResponse({"resourceType": "Patient", "id": "1"}, status_code=201,
                            headers={"ETag": 'W/"1"'})

    return Starlette(routes=[Route("/fhir/Patient", patient, methods=["POST"])])


def test_the_recording_middleware_keeps_what_the_application_sent_and_the_answer() -> None:
    log = InboundLog()
    with running_asgi(RecordingMiddleware(_server_app(), log), name="bench-server") as server:
        mark = log.mark()

        def application() -> None:
            time.sleep(0.2)
            httpx.post(f"{server.url}/fhir/Patient?x=1", json={"resourceType": "Patient"},
                       headers={"Authorization": "Bearer s3cr3t-token"})

        threading.Thread(target=application).start()
        got = log.wait_for(lambda x: x.method == "POST" and x.path == "/fhir/Patient", timeout=5,
                           what="send a patient", after=mark)
        assert got.status == 201 and got.query == "x=1" and got.header("etag", response=True) == 'W/"1"'
        assert json.loads(got.request_body) == {"resourceType": "Patient"}
        with pytest.raises(NoTraffic, match="within 0.3 s: the application did not send a care plan"):
            log.wait_for(lambda x: x.path == "/fhir/CarePlan", timeout=0.3, what="send a care plan")
        assert isinstance(NoTraffic("x"), BenchError)  # broken, not failed

        events = EventStream()
        seen: list[HttpExchange] = []
        events.subscribe(seen.append, HttpExchange)
        publish(log.since(mark), events, Redactor(), base=server.url, role="portal")
        assert len(seen) == 1 and seen[0].url == f"{server.url}/fhir/Patient?x=1" and seen[0].role == "portal"
        assert "s3cr3t-token" not in repr(seen[0])  # the Authorization header is redacted

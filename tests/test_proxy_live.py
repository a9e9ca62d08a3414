"""The real thing: `ktbench proxy` (a subprocess) between the real KT1 connector and the KT1 reference server.

Proves, on real sockets, what the unit tests prove on the addon chain: the
connector works unchanged through the proxy (every byte it sends reaches the
server and every byte the server answers reaches the connector, compared
exchange by exchange), every FHIR exchange is recorded and validated (the
summary accounts for each one, none lost), and a deliberately invalid body is
reported as an error at the right location.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ktbench.fhir.dstu1.constants import EXT_PROCESSING_STATUS, EXT_PS_STATUS
from ktbench.proxy.worker import DEFAULT_VALIDATOR, resolve_validator

koppeltaal_connector = pytest.importorskip("koppeltaal.connector", reason="the koppeltaal connector is not installed")
from koppeltaal import models as kt_models  # noqa: E402
from koppeltaal.utils import Credentials  # noqa: E402

from simulators.kt1.app import create_app  # noqa: E402
from simulators.kt1.embedded import running_kt1_server  # noqa: E402

try:
    resolve_validator(DEFAULT_VALIDATOR)
except Exception as exc:  # pragma: no cover - only while the engine is missing
    pytest.skip(f"the validation engine is not available: {exc}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
DATA = tomllib.loads((REPO / "simulators" / "kt1" / "default_data.toml").read_text(encoding="utf-8"))
APPS = {app["id"]: app for app in DATA["applications"]}
DOMAIN = APPS["ktbench-portal"]["domain"]


class WireTap:
    """ASGI middleware recording the exact bytes the server received and sent, per exchange."""

    def __init__(self, app) -> None:
        self.app = app
        self.state = app.state  # running_kt1_server closes the store through app.state
        self.exchanges: list[dict] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = {"method": scope["method"], "path": scope["path"], "request": b"", "response": b""}

        async def tapped_receive():
            message = await receive()
            if message["type"] == "http.request":
                record["request"] += message.get("body", b"")
            return message

        async def tapped_send(message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            elif message["type"] == "http.response.body":
                record["response"] += message.get("body", b"")
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)
        self.exchanges.append(record)


class ProxyProcess:
    """`ktbench proxy` as a tester runs it, in its own process."""

    def __init__(self, upstream: str, out: Path, *extra: str) -> None:
        self.out = out
        self.stderr_path = out.parent / f"{out.name}-stderr.txt"
        self._stderr = self.stderr_path.open("wb")
        command = [sys.executable, "-m", "ktbench.cli", "proxy", "--upstream", upstream, "--listen", "0",
                   "--out", str(out), *extra]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._stderr, cwd=REPO,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while not (out / "proxy.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"ktbench proxy did not start:\n{self.stderr()}")
            time.sleep(0.05)
        self.info = json.loads((out / "proxy.json").read_text(encoding="utf-8"))
        self.url = self.info["listen"]

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode

    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text(encoding="utf-8"))

    def findings(self) -> list[dict]:
        lines = (self.out / "findings.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@contextmanager
def proxied_kt1(tmp_path: Path, *extra: str) -> Iterator[tuple[WireTap, ProxyProcess]]:
    tap = WireTap(create_app())
    with running_kt1_server(app=tap) as server:
        proxy = ProxyProcess(server.url, tmp_path / "out", *extra)
        try:
            yield tap, proxy
        finally:
            proxy.stop()


def make_connector(base_url: str, app_id: str, wire: list[dict]):
    app = APPS[app_id]
    connector = koppeltaal_connector.Connector(
        Credentials(base_url, app["username"], app["password"], app["domain"], {}),
        koppeltaal_connector.Integration(name=app["name"], url=f"https://{app_id}.example.org/fhir",
                                         software="ktbench-tests", version="1.0"),
    )
    session = connector.transport.session
    session.trust_env = False  # talk to the proxy directly, whatever the environment says

    def remember(response, *args, **kwargs):
        body = response.request.body or b""
        wire.append({"method": response.request.method, "path": response.request.path_url.split("?")[0],
                     "request": body.encode() if isinstance(body, str) else body, "response": response.content})
        return response

    session.hooks["response"].append(remember)
    return connector


def test_connector_session_through_the_proxy(tmp_path):
    client_wire: list[dict] = []
    with proxied_kt1(tmp_path, "--har", str(tmp_path / "session.har"),
                     "--flows", str(tmp_path / "session.flows")) as (tap, proxy):
        portal = make_connector(proxy.url, "ktbench-portal", client_wire)
        module = make_connector(proxy.url, "ktbench-module", client_wire)

        assert portal.metadata()["resourceType"] == "Conformance"
        assert {a.identifier for a in portal.activities()} >= {"ktbench-game-1", "ktbench-elearning-1"}
        patient = kt_models.Patient(name=[kt_models.Name(given=["Anna"], family=["Visser"])], gender="F",
                                    active=True)
        portal.send("CreateOrUpdatePatient", patient, patient)
        received = []
        for update in module.updates():
            with update:
                received.append(update.message.event)
        assert received == ["CreateOrUpdatePatient"]
        assert proxy.stop() == 0

    # Byte for byte, exchange by exchange: what the connector sent is what the server got, and back.
    server_wire = tap.exchanges
    assert len(client_wire) == len(server_wire) >= 6
    for client, server in zip(client_wire, server_wire, strict=True):
        assert (client["method"], client["path"]) == (server["method"], server["path"])
        assert client["request"] == server["request"]
        assert client["response"] == server["response"]

    summary = proxy.summary()
    assert summary["flows_seen"] == len(server_wire)
    assert summary["fhir_flows"] == len(server_wire) == summary["flows_validated"]
    assert summary["lost_flows"] == 0 and summary["unvalidated_flows"] == 0
    bodies_with_content = sum(bool(x["request"]) + bool(x["response"]) for x in server_wire)
    assert summary["bodies"]["validated"] == bodies_with_content
    assert summary["bodies"]["crashed"] == 0

    findings = proxy.findings()  # the file exists; its content is the validator's business
    assert sum(summary["findings"]["by_rule"].values()) == len(findings)

    har = json.loads((tmp_path / "session.har").read_text(encoding="utf-8"))
    har_paths = [httpx.URL(e["request"]["url"]).path for e in har["log"]["entries"]]
    assert har_paths == [x["path"] for x in server_wire]

    from mitmproxy import io

    with (tmp_path / "session.flows").open("rb") as fh:
        recorded = list(io.FlowReader(fh).stream())
    assert [f.request.path.split("?")[0] for f in recorded] == [x["path"] for x in server_wire]
    assert [f.response.content for f in recorded] == [x["response"] for x in server_wire]
    assert {f["flow_id"] for f in findings} <= {f.id for f in recorded}

    # The connector's Basic credentials appear nowhere in what the proxy wrote.
    basic = base64.b64encode(f"{APPS['ktbench-portal']['username']}:{APPS['ktbench-portal']['password']}"
                             .encode()).decode()
    for path in (tmp_path / "session.har", tmp_path / "session.flows", proxy.out / "findings.jsonl"):
        content = path.read_bytes()
        assert basic.encode() not in content and APPS["ktbench-portal"]["password"].encode() not in content


def test_invalid_processing_status_is_reported_at_its_location(tmp_path):
    client_wire: list[dict] = []
    with proxied_kt1(tmp_path) as (_tap, proxy):
        portal = make_connector(proxy.url, "ktbench-portal", client_wire)
        patient = kt_models.Patient(name=[kt_models.Name(given=["Piet"], family=["Jansen"])], gender="M")
        portal.send("CreateOrUpdatePatient", patient, patient)
        (good_post,) = [x for x in client_wire if x["path"].endswith("/Mailbox")]

        # The connector's own (valid) message, with a ProcessingStatus whose code is not in the value set.
        bundle = json.loads(good_post["request"])
        index = next(i for i, e in enumerate(bundle["entry"]) if e["content"]["resourceType"] == "MessageHeader")
        header = bundle["entry"][index]["content"]
        header.setdefault("extension", []).append(
            {"url": EXT_PROCESSING_STATUS, "extension": [{"url": EXT_PS_STATUS, "valueCode": "Bogus"}]})
        expected_location = f"Bundle.entry[{index}].content.extension[{len(header['extension']) - 1}]" \
                            f".extension[0].valueCode"
        app = APPS["ktbench-portal"]
        with httpx.Client(base_url=proxy.url, auth=(app["username"], app["password"]), trust_env=False) as client:
            reply = client.post("/FHIR/Koppeltaal/Mailbox", content=json.dumps(bundle).encode(),
                                headers={"Content-Type": "application/json", "Accept": "application/json"})
        assert reply.status_code < 500
        assert proxy.stop(signal.SIGTERM) == 0  # SIGTERM shuts down as cleanly as Ctrl-C

    findings = proxy.findings()
    mailbox_posts = [f for f in findings if f["method"] == "POST" and f["url"].endswith("/FHIR/Koppeltaal/Mailbox")
                     and f["direction"] == "request"]
    at_location = [f for f in mailbox_posts if f["location"] == expected_location]
    assert at_location, f"no finding at {expected_location}; request findings: {mailbox_posts}"
    assert all(f["severity"] == "error" and "Bogus" in f["message"] for f in at_location)
    assert len({f["flow_id"] for f in at_location}) == 1  # only the tampered message, not the connector's own
    summary = proxy.summary()
    assert summary["findings"]["by_severity"].get("error", 0) >= 1
    assert summary["bodies"]["invalid"] >= 1 and summary["unvalidated_flows"] == 0

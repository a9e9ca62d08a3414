"""How much latency does the validating proxy add, compared with a bare mitmdump?

Both proxies run as real processes in front of the same KT1 reference server
on loopback; one client sends the same realistic mix through each of them and
directly: the CapabilityStatement (`metadata`), a Mailbox POST of a
CreateOrUpdatePatient message, and a GetNextNewAndClaim that returns that
message as a bundle.  Rounds alternate between the targets so that drift in
the server (its store grows) hits all of them alike; the validation of a
round's flows overlaps with the next requests through our proxy, so its
cost is counted where it would be felt.  At the end our proxy is stopped with
SIGINT and its summary tells how many flows it saw and whether any went
unvalidated (expected: 0).

Goal: p50 added latency <= +1 ms over bare mitmdump.

Usage: python benchmarks/proxy_latency.py [--rounds N]  -> JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from simulators.kt1.actors.kt1_messages import message_bundle  # noqa: E402
from simulators.kt1.actors.kt1_resources import LocalResource, patient  # noqa: E402
from simulators.kt1.data import load_data  # noqa: E402
from simulators.kt1.embedded import running_kt1_server  # noqa: E402

GOAL_ADDED_P50_MS = 1.0
KINDS = ("metadata", "mailbox_post", "claim")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited early with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("proxy did not start listening")


def start_bare_mitmdump(upstream: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    exe = shutil.which("mitmdump", path=str(Path(sys.executable).parent)) or "mitmdump"
    proc = subprocess.Popen([exe, "-q", "--mode", f"reverse:{upstream}", "--listen-host", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def start_ktbench_proxy(upstream: str, out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "ktbench.cli", "proxy", "--upstream", upstream, "--listen", "0",
                             "--out", str(out), "--quiet", *extra], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (out / "proxy.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("ktbench proxy did not start")
        time.sleep(0.05)
    return proc, json.loads((out / "proxy.json").read_text())["listen"]


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class CpuMeter:
    """CPU time used by the proxies while measuring: unlike latency, it does not depend on machine load."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        out = {name: _cpu_seconds(pid) for name, pid in self.processes.items()}
        out["ktbench_workers"] = sum(_cpu_seconds(c) for c in _children(self.processes["ktbench_proxy"]))
        return out

    def begin(self) -> None:
        self.start = self._now()

    def per_request_ms(self, requests: int) -> dict[str, float]:
        end = self._now()
        return {name: round((end[name] - self.start.get(name, 0.0)) * 1000 / max(1, requests), 3) for name in end}


class Mix:
    """The three requests of one round, sent through one target."""

    def __init__(self, base_url: str, portal: tuple[str, str], module: tuple[str, str], domain: str) -> None:
        self.portal = httpx.Client(base_url=base_url, auth=portal, trust_env=False, timeout=30)
        self.module = httpx.Client(base_url=base_url, auth=module, trust_env=False, timeout=30)
        self.domain = domain
        self.samples: dict[str, list[float]] = {kind: [] for kind in KINDS}

    def _message(self) -> bytes:
        url = f"https://portal.example.org/fhir/Koppeltaal/Patient/{uuid.uuid4().hex[:16]}"
        content = patient(given="Anna", family="Visser", gender="F", birth_date="1980-02-03", age=44,
                          email="anna@example.org", bsn="999911120")
        bundle = message_bundle(domain=self.domain, event="CreateOrUpdatePatient", identifier=str(uuid.uuid4()),
                                focal=LocalResource("Patient", url, content), others=[], patient_url=url,
                                source={"name": "bench portal", "software": "ktbench", "version": "1",
                                        "endpoint": "https://portal.example.org/fhir/Koppeltaal"},
                                header_base="https://portal.example.org/fhir/Koppeltaal")
        return json.dumps(bundle).encode()

    def _timed(self, kind: str, send) -> None:
        started = time.perf_counter()
        response = send()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise RuntimeError(f"{kind}: HTTP {response.status_code}: {response.text[:300]}")
        self.samples[kind].append(elapsed)

    def round(self) -> None:
        body = self._message()
        self._timed("metadata", lambda: self.portal.get("/FHIR/Koppeltaal/metadata",
                                                        headers={"Accept": "application/json"}))
        self._timed("mailbox_post", lambda: self.portal.post(
            "/FHIR/Koppeltaal/Mailbox", content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"}))
        self._timed("claim", lambda: self.module.get(
            "/FHIR/Koppeltaal/MessageHeader", params={"_query": "MessageHeader.GetNextNewAndClaim"},
            headers={"Accept": "application/json"}))

    def reset(self) -> None:
        self.samples = {kind: [] for kind in KINDS}

    def close(self) -> None:
        self.portal.close()
        self.module.close()

    def stats(self) -> dict:
        every = [x for kind in KINDS for x in self.samples[kind]]
        return {"n": len(every), **_stats(every),
                "per_kind_p50_ms": {kind: _stats(self.samples[kind])["p50_ms"] for kind in KINDS}}


def _stats(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(values), 3), "p99_ms": round(q[98], 3)}


def measure(rounds: int = 200, warmup: int = 20, pause_s: float = 0.01, proxy_args: tuple[str, ...] = ()) -> dict:
    """Run the comparison; returns the JSON-able result.  `proxy_args`: extra `ktbench proxy` options."""
    data = load_data(None)  # the shipped data file: its test credentials
    portal_app, module_app = data.by_id("ktbench-portal"), data.by_id("ktbench-module")
    portal = (portal_app.username, portal_app.password)
    module = (module_app.username, module_app.password)
    domain = portal_app.domain
    out = Path(tempfile.mkdtemp(prefix="ktbench-proxy-bench-"))
    with running_kt1_server() as server:
        bare_proc, bare_url = start_bare_mitmdump(server.url)
        ours_proc, ours_url = start_ktbench_proxy(server.url, out / "ktbench", *proxy_args)
        try:
            targets = {
                "direct": Mix(server.url, portal, module, domain),
                "bare_mitmdump": Mix(bare_url, portal, module, domain),
                "ktbench_proxy": Mix(ours_url, portal, module, domain),
            }
            order = list(targets)
            meter = CpuMeter({"bare_mitmdump": bare_proc.pid, "ktbench_proxy": ours_proc.pid})
            for i in range(warmup + rounds):
                if i == warmup:
                    for mix in targets.values():
                        mix.reset()
                    meter.begin()
                for name in order[i % 3:] + order[: i % 3]:  # rotate who goes first
                    targets[name].round()
                time.sleep(pause_s)
            time.sleep(0.5)  # let the workers finish this round's validations
            cpu = meter.per_request_ms(3 * rounds)
            results = {name: mix.stats() for name, mix in targets.items()}
            samples = {name: mix.samples for name, mix in targets.items()}
            for mix in targets.values():
                mix.close()
        finally:
            stop(bare_proc)
            rc = stop(ours_proc)
    summary = json.loads((out / "ktbench" / "summary.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    sent = 3 * (warmup + rounds)
    bare, ours, direct = results["bare_mitmdump"], results["ktbench_proxy"], results["direct"]
    added_p50 = round(ours["p50_ms"] - bare["p50_ms"], 3)
    # The same request of the same round through both proxies: differences cancel slow load drift.
    paired = [o - b for kind in KINDS for o, b in zip(samples["ktbench_proxy"][kind], samples["bare_mitmdump"][kind])]
    return {
        "rounds": rounds,
        "requests_per_target": ours["n"],
        "mix": list(KINDS),
        "latency_ms": results,
        "bare_mitmdump_added_over_direct": {
            "p50_ms": round(bare["p50_ms"] - direct["p50_ms"], 3),
            "p99_ms": round(bare["p99_ms"] - direct["p99_ms"], 3)},
        "ktbench_added_over_bare": {"p50_ms": added_p50, "p99_ms": round(ours["p99_ms"] - bare["p99_ms"], 3),
                                    "paired_median_ms": _stats(paired)["p50_ms"]},
        "cpu_ms_per_request": cpu,
        "goal_added_p50_ms": GOAL_ADDED_P50_MS,
        "meets_goal": added_p50 <= GOAL_ADDED_P50_MS,
        "flows_sent": sent,
        "flows_seen_by_proxy": summary["fhir_flows"],
        "bodies_validated": summary["bodies"]["validated"],
        "validation_ms": summary["validation_ms"],
        "lost_flows": summary["lost_flows"] + (sent - summary["fhir_flows"]),
        "unvalidated_flows": summary["unvalidated_flows"],
        "proxy_exit_code": rc,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rounds, args.warmup), indent=2))


if __name__ == "__main__":
    main()

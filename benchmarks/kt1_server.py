"""How fast is the KT1.3 reference server on a file database?

Why: a bench that runs whole suites, fuzzers and proxies against the reference
server must not be slowed down by it.  The unit of work is one message
cycle the way real KT1 traffic flows: an eHealth module POSTs an
UpdateCarePlanActivityStatus (a versioned update of the same resource, so the
1.3.5 version check and the supersede rule run every time), the portal claims
it with GetNextNewAndClaim and PUTs ProcessingStatus Success on the versioned
MessageHeader link.

The server runs as its own process (`ktbench serve kt1 --db <file>` under
uvicorn).  Two load generators drive it, each against a fresh database:

* lean (the headline): stdlib `http.client` keep-alive connections in 1 and 2
  separate client PROCESSES released together by a barrier.  The Mailbox body
  is pre-serialised once and only its ids, timestamps, focal version and
  percentage are filled in per cycle, so every POST is still a fresh, valid
  versioned update.  A client this cheap does not cap the measurement.
* httpx (a realistic client): one httpx.Client per thread, 1 and 2 threads in
  this process, as a Python integration would do it.  It costs about as much
  CPU per cycle as the server, so on 2 cores it measures itself as much as the
  server.

Each client process/thread works in its own domain (alpha, beta), so two of
them are two independent portal/module pairs.  Also reported: p50/p99 of single
requests per endpoint, the CPU the server process used per cycle (from
/proc/<pid>/stat) and the CPU the clients used per cycle.  For comparison the
lean load also runs against the embedded in-thread server.

Goal: >= 300 cycles/s on 2 cores against the separate server process.

Usage: python benchmarks/kt1_server.py [--seconds S] [--repeats R] [--samples N] [--no-thread-mode]
       -> JSON on stdout.
Stops by itself: every phase is bounded by time and by count.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GOAL_CYCLES_PER_SECOND = 300.0
NS = "http://ggz.koppeltaal.nl/fhir/Koppeltaal/"
MAILBOX = "/FHIR/Koppeltaal/Mailbox"
SEARCH = "/FHIR/Koppeltaal/MessageHeader/_search"
CLAIM_PARAMS = {"_query": "MessageHeader.GetNextNewAndClaim"}
EVENT = "UpdateCarePlanActivityStatus"
MAX_CYCLES = 20_000
START_TIMEOUT = 120.0   # seconds a client process may take to start and connect


@dataclass(frozen=True)
class Pair:
    """A portal and a module of one domain in the shipped default data file."""

    domain: str
    module: tuple[str, str]
    portal: tuple[str, str]
    module_oauth_secret: str


PAIRS = (
    Pair("ktbench-alpha", ("ktbench-module", "module-secret"), ("ktbench-portal", "portal-secret"),
         "module-oauth-secret"),
    Pair("ktbench-beta", ("ktbench-beta-module", "beta-module-secret"), ("ktbench-beta-portal", "beta-portal-secret"),
         "beta-module-oauth-secret"),
)


# --------------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    pid: int | None = None   # the process whose CPU time is the server's (read from /proc)


def _wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the KT1 server exited early with code {proc.returncode}")
        try:
            if httpx.get(url + "/FHIR/Koppeltaal/metadata", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the KT1 server did not come up")


@contextmanager
def process_server(db: Path) -> Iterator[Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ktbench.cli", "serve", "kt1", "--port", str(port),
                             "--db", str(db)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, proc)
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def thread_server(db: Path) -> Iterator[Server]:
    """The server in a thread of this process; only the lean load (other processes) runs against it, so this
    process's CPU time is the server's."""
    from simulators.kt1.embedded import running_kt1_server
    with running_kt1_server(db=str(db)) as srv:
        yield Server(srv.url, os.getpid())


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process from /proc (Linux); None where that is not available."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


# --------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------
def _bundle(domain: str, event: str, focal: dict[str, Any], focal_url: str, focal_version: str | None,
            patient_url: str, sender_url: str, *, stamp: str | None = None, bundle_id: str | None = None,
            header_id: str | None = None, entry_uuid: str | None = None) -> dict[str, Any]:
    """A message bundle; ids and the timestamp are fresh unless given (the lean client's template gives them)."""
    stamp = stamp or _now_stamp()
    focal_ref = f"{focal_url}/_history/{focal_version}" if focal_version else focal_url
    header = {
        "resourceType": "MessageHeader", "identifier": header_id or str(uuid.uuid4()),
        "timestamp": stamp,
        "event": {"system": NS + "MessageEvents", "code": event, "display": event},
        "source": {"name": "benchmark", "software": "ktbench benchmark", "version": "1", "endpoint": sender_url},
        "data": [{"reference": focal_ref}],
        "extension": [{"url": NS + "MessageHeader#Patient", "valueResource": {"reference": patient_url}}],
    }
    focal_entry: dict[str, Any] = {"id": focal_url, "content": focal}
    if focal_version:
        focal_entry["link"] = [{"rel": "self", "href": focal_ref}]
    return {
        "resourceType": "Bundle", "id": bundle_id or f"urn:uuid:{uuid.uuid4()}",
        "updated": stamp,
        "category": [{"term": f"{NS}Domain#{domain}", "label": domain, "scheme": "http://hl7.org/fhir/tag/security"},
                     {"term": "http://hl7.org/fhir/tag/message", "scheme": "http://hl7.org/fhir/tag"}],
        "entry": [{"id": f"{sender_url}/MessageHeader/{entry_uuid or uuid.uuid4()}", "content": header},
                  focal_entry],
    }


def activity_status(percentage: int | str) -> dict[str, Any]:
    """`percentage` is a str only as the lean client's template placeholder."""
    return {"resourceType": "Other",
            "code": {"coding": [{"system": NS + "OtherResourceUsage", "code": "CarePlanActivityStatus",
                                 "display": "CarePlanActivityStatus"}]},
            "extension": [
                {"url": NS + "CarePlanActivityStatus#Activity", "valueString": "benchmark-activity"},
                {"url": NS + "CarePlanActivityStatus#ActivityStatus",
                 "valueCoding": {"system": NS + "CarePlanActivityStatus", "code": "InProgress",
                                 "display": "InProgress"}},
                {"url": NS + "CarePlanActivityStatus#PercentageCompleted",
                 "valueInteger": percentage if isinstance(percentage, str) else percentage % 101}]}


def processing_status_success(header: dict[str, Any]) -> dict[str, Any]:
    """The claimed header with its ProcessingStatus set to Success, as a portal sends it back."""
    header["extension"] = [ext for ext in header.get("extension", [])
                           if not ext["url"].startswith(NS + "MessageHeader#ProcessingStatus")
                           and ext["url"] != NS + "MessageHeader#IsExpired"]
    header["extension"].append({"url": NS + "MessageHeader#ProcessingStatus", "extension": [
        {"url": NS + "MessageHeader#ProcessingStatusStatus", "valueCode": "Success"},
        {"url": NS + "MessageHeader#ProcessingStatusStatusLastChanged", "valueInstant": _now_stamp()}]})
    return header


def _self_link(entry: dict[str, Any]) -> str:
    return next(link["href"] for link in entry["link"] if link["rel"] == "self")


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def merge(self, samples: dict[str, list[float]]) -> None:
        for name, values in samples.items():
            self.samples.setdefault(name, []).extend(values)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, values in self.samples.items():
            ordered = sorted(values)
            out[name] = {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
                         "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)}
        return out


def _rates(cycles: int, elapsed: float, client_cpu: float, server: Server, cpu_before: float | None,
           cpu_after: float | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "cycles": cycles, "seconds": round(elapsed, 2),
        "cycles_per_second": round(cycles / elapsed, 1) if elapsed > 0 else 0.0,
        "requests_per_second": round(3 * cycles / elapsed, 1) if elapsed > 0 else 0.0,
        "client_cpu_ms_per_cycle": round(1000 * client_cpu / max(1, cycles), 3),
    }
    if cpu_before is not None and cpu_after is not None and cycles:
        server_ms = 1000 * (cpu_after - cpu_before) / cycles
        result["server_cpu_percent"] = round(100 * (cpu_after - cpu_before) / elapsed, 1)
        result["server_cpu_ms_per_cycle"] = round(server_ms, 3)
        # The server is one thread: with a core of its own it could not go faster than this.
        result["server_bound_cycles_per_second"] = round(1000 / server_ms, 1) if server_ms else None
    return result


def best_of(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest window, plus every window's rate: on a shared machine other work steals whole windows."""
    best = dict(max(windows, key=lambda w: w["cycles_per_second"]))
    best["windows_cycles_per_second"] = [w["cycles_per_second"] for w in windows]
    best["median_cycles_per_second"] = statistics.median(best["windows_cycles_per_second"])
    return best


# --------------------------------------------------------------------------------------------------
# Lean load generator: http.client keep-alive connections in separate processes
# --------------------------------------------------------------------------------------------------
class MailboxBodies:
    """The Mailbox POST body of one module, serialised once.

    Per cycle only the bundle id, MessageHeader identifier, entry id, timestamp, focal version and
    percentage change; they are filled into the pre-serialised JSON with one `str.format`, so each POST is
    still a fresh, valid versioned update at a fraction of building and dumping the dict.
    """

    _FIELDS = ("bundle_id", "stamp", "header_id", "entry_uuid", "version", "percent")

    def __init__(self, pair: Pair, focal_url: str, patient_url: str, sender_url: str) -> None:
        self._make = lambda version, percent, **ids: _bundle(
            pair.domain, EVENT, activity_status(percent), focal_url, version, patient_url, sender_url, **ids)
        self._create = self._template(None)
        self._update = self._template("@@version@@")
        self._self_check()

    def _template(self, version: str | None) -> str:
        marks = {name: f"@@{name}@@" for name in self._FIELDS if name not in ("version", "percent")}
        text = json.dumps(self._make(version, "@@percent@@", **marks), separators=(",", ":"))
        text = text.replace('"@@percent@@"', "@@percent@@").replace("{", "{{").replace("}", "}}")
        for name in self._FIELDS:
            text = text.replace(f"@@{name}@@", "{" + name + "}")
        return text

    def render(self, cycle: int, version: str | None, *, stamp: str | None = None,
               ids: tuple[str, str, str] | None = None) -> bytes:
        bundle_id, header_id, entry_uuid = ids or (f"urn:uuid:{uuid.uuid4()}", str(uuid.uuid4()),
                                                   str(uuid.uuid4()))
        template = self._update if version else self._create
        return template.format(bundle_id=bundle_id, stamp=stamp or _now_stamp(), header_id=header_id,
                               entry_uuid=entry_uuid, version=json.dumps(version or "")[1:-1],
                               percent=cycle % 101).encode()

    def _self_check(self) -> None:
        """The template must produce exactly what building the bundle would."""
        ids = ("urn:uuid:" + str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
        stamp = _now_stamp()
        for version in (None, "2024-01-02T03:04:05:678.9012"):
            expected = self._make(version, 7, stamp=stamp, bundle_id=ids[0], header_id=ids[1], entry_uuid=ids[2])
            if json.loads(self.render(7, version, stamp=stamp, ids=ids)) != expected:
                raise AssertionError("the pre-serialised Mailbox body differs from the built one")


@dataclass(frozen=True)
class LeanJob:
    """What one lean client process does (picklable: it crosses into a spawned process)."""

    url: str
    pair_index: int
    seconds: float
    max_cycles: int
    keep_timings: bool


def _basic(credentials: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def _lean_cycles(job: LeanJob, barrier: Any) -> dict[str, Any]:
    pair = PAIRS[job.pair_index]
    target = urlsplit(job.url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    sender_url = f"https://{pair.module[0]}.bench.test/fhir/Koppeltaal"
    bodies = MailboxBodies(pair, f"{sender_url}/Other/CarePlanActivityStatus/{uuid.uuid4()}",
                           f"{sender_url}/Patient/{uuid.uuid4()}", sender_url)
    accept = {"Accept": "application/json"}
    post_headers = {**accept, "Authorization": _basic(pair.module), "Content-Type": "application/json"}
    get_headers = {**accept, "Authorization": _basic(pair.portal)}
    put_headers = {**get_headers, "Content-Type": "application/json"}
    claim_path = SEARCH + "?" + urlencode(CLAIM_PARAMS)
    samples: dict[str, list[float]] = {"warm-up": [], "mailbox_post": [], "claim": [], "ack_put": []}
    keep = job.keep_timings
    perf = time.perf_counter

    def call(method: str, path: str, body: bytes | None, headers: dict[str, str], name: str) -> bytes:
        start = perf()
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
        if keep:
            samples[name].append(perf() - start)
        if response.status >= 400:
            raise RuntimeError(f"{name}: HTTP {response.status}: {data[:300]!r}")
        return data

    call("GET", "/FHIR/Koppeltaal/metadata", None, accept, "warm-up")   # opens the keep-alive connection
    del samples["warm-up"]
    barrier.wait(timeout=START_TIMEOUT)
    start = time.monotonic()
    cpu_before = time.process_time()
    deadline = start + job.seconds
    version: str | None = None
    done = 0
    while done < job.max_cycles and time.monotonic() < deadline:
        reply = json.loads(call("POST", MAILBOX, bodies.render(done, version), post_headers, "mailbox_post"))
        version = reply["entry"][0]["content"]["data"][0]["reference"].rsplit("/_history/", 1)[1]
        claimed = json.loads(call("GET", claim_path, None, get_headers, "claim"))
        header_entry = claimed["entry"][0]
        header = header_entry["content"]
        if not header["data"][0]["reference"].endswith("/_history/" + version):
            raise RuntimeError(f"claimed {header['data'][0]['reference']}, expected version {version}")
        ack = json.dumps(processing_status_success(header), separators=(",", ":")).encode()
        call("PUT", urlsplit(_self_link(header_entry)).path, ack, put_headers, "ack_put")
        done += 1
    end = time.monotonic()
    cpu = time.process_time() - cpu_before
    conn.close()
    return {"cycles": done, "start": start, "end": end, "cpu": cpu, "samples": samples if keep else {}}


def lean_worker(job: LeanJob, barrier: Any, results: Any) -> None:
    """Entry point of a lean client process: its result or its error goes into `results`."""
    try:
        results.put(_lean_cycles(job, barrier))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        try:
            barrier.abort()   # release the others instead of letting them wait for us
        except Exception:  # noqa: BLE001
            pass
        results.put({"error": f"client {job.pair_index}: {type(exc).__name__}: {exc}"})


def lean_throughput(server: Server, processes: int, seconds: float, timings: Timings | None = None) -> dict[str, Any]:
    """`processes` lean clients (one domain each) started together by a barrier, so the window holds load only."""
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(processes + 1)
    results = mp.Queue()
    workers = [mp.Process(target=lean_worker, name=f"lean-{i}", daemon=True,
                          args=(LeanJob(server.url, i, seconds, MAX_CYCLES, timings is not None), barrier, results))
               for i in range(processes)]
    for w in workers:
        w.start()
    outs: list[dict[str, Any]] = []
    try:
        try:
            barrier.wait(timeout=START_TIMEOUT)
        except threading.BrokenBarrierError:
            pass   # a client failed to start: its error arrives through the queue
        cpu_before = cpu_seconds(server.pid)
        for _ in workers:
            try:
                outs.append(results.get(timeout=seconds + START_TIMEOUT))
            except queue.Empty:
                raise RuntimeError("a lean client process did not report back") from None
        cpu_after = cpu_seconds(server.pid)
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
                w.join(timeout=10)
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise RuntimeError("; ".join(errors))
    cycles = sum(o["cycles"] for o in outs)
    elapsed = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    if timings is not None:
        for o in outs:
            timings.merge(o["samples"])
    result = {"client": "http.client keep-alive, pre-serialised Mailbox body", "client_processes": processes,
              **_rates(cycles, elapsed, sum(o["cpu"] for o in outs), server, cpu_before, cpu_after),
              "cycles_per_process": [o["cycles"] for o in outs]}
    return result


# --------------------------------------------------------------------------------------------------
# httpx load generator: threads of this process
# --------------------------------------------------------------------------------------------------
def _timed(timings: Timings | None, name: str, call: Callable[[], httpx.Response]) -> httpx.Response:
    start = time.perf_counter()
    response = call()
    if timings is not None:
        timings.add(name, time.perf_counter() - start)
    if response.status_code >= 400:
        raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def run_cycles(base: str, pair: Pair, deadline: float, max_cycles: int, timings: Timings | None) -> int:
    """POST -> claim -> ack until the deadline; returns the number of completed cycles."""
    sender_url = f"https://{pair.module[0]}.bench.test/fhir/Koppeltaal"
    focal_url = f"{sender_url}/Other/CarePlanActivityStatus/{uuid.uuid4()}"
    patient_url = f"{sender_url}/Patient/{uuid.uuid4()}"
    version: str | None = None
    done = 0
    with httpx.Client(base_url=base, timeout=30, headers={"Accept": "application/json"}) as client:
        while done < max_cycles and time.monotonic() < deadline:
            body = _bundle(pair.domain, EVENT, activity_status(done), focal_url, version, patient_url, sender_url)
            reply = _timed(timings, "mailbox_post", lambda: client.post(MAILBOX, json=body, auth=pair.module)).json()
            version = reply["entry"][0]["content"]["data"][0]["reference"].rsplit("/_history/", 1)[1]
            claimed = _timed(timings, "claim", lambda: client.get(SEARCH, params=CLAIM_PARAMS, auth=pair.portal)).json()
            header_entry = claimed["entry"][0]
            header = processing_status_success(header_entry["content"])
            ack_path = urlsplit(_self_link(header_entry)).path
            _timed(timings, "ack_put", lambda: client.put(ack_path, json=header, auth=pair.portal))
            done += 1
    return done


def httpx_throughput(server: Server, threads: int, seconds: float, timings: Timings | None = None) -> dict[str, Any]:
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def work(i: int) -> None:
        counts[i] = run_cycles(server.url, PAIRS[i], deadline, MAX_CYCLES, timings if i == 0 else None)

    cpu_before = cpu_seconds(server.pid)
    client_before = time.process_time()
    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,), name=f"bench-{i}") for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_before
    cpu_after = cpu_seconds(server.pid)
    return {"client": "httpx.Client per thread, one process", "client_threads": threads,
            **_rates(sum(counts), elapsed, client_cpu, server, cpu_before, cpu_after)}


def endpoint_latencies(server: Server, samples: int, seconds: float, timings: Timings) -> None:
    """metadata, summary search, Other search and token, one request at a time (mailbox/claim/ack come from
    the cycle run)."""
    pair = PAIRS[0]
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=server.url, timeout=30, headers={"Accept": "application/json"}) as client:
        for _ in range(samples):
            if time.monotonic() > deadline:
                break
            _timed(timings, "metadata", lambda: client.get("/FHIR/Koppeltaal/metadata"))
            _timed(timings, "summary_search", lambda: client.get(
                SEARCH, params={"_summary": "true", "_count": "100"}, auth=pair.portal))
            _timed(timings, "other_search", lambda: client.get(
                "/FHIR/Koppeltaal/Other/_search", params={"code": "ActivityDefinition"}, auth=pair.portal))
            launch = client.get("/OAuth2/Koppeltaal/Launch", auth=pair.portal, params={
                "client_id": pair.module[0], "patient": "https://p.bench.test/Patient/1",
                "user": "https://p.bench.test/Practitioner/1", "resource": "benchmark-activity"})
            launch_id = parse_qs(urlsplit(launch.headers["location"]).query)["launch"][0]
            redirect = "https://module.bench.test/auth"
            authorized = client.get("/OAuth2/Koppeltaal/Authorize", params={
                "client_id": pair.module[0], "redirect_uri": redirect, "response_type": "code",
                "scope": f"patient/*.read launch:{launch_id}"})
            code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
            _timed(timings, "token", lambda: client.get("/OAuth2/Koppeltaal/Token", params={
                "code": code, "grant_type": "authorization_code", "redirect_uri": redirect},
                auth=(pair.module[0], pair.module_oauth_secret)))


# --------------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------------
@contextmanager
def _fresh_server(server_factory: Callable[[Path], Any]) -> Iterator[tuple[Server, Path]]:
    with tempfile.TemporaryDirectory(prefix="ktbench-bench-") as tmp:
        db = Path(tmp) / "kt1.sqlite3"
        with server_factory(db) as server:
            yield server, db


def _db_bytes(db: Path) -> int:
    return db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob(db.name + "-*"))


def measure_lean(kind: str, server_factory: Callable[[Path], Any], seconds: float, repeats: int) -> dict[str, Any]:
    with _fresh_server(server_factory) as (server, db):
        lean_throughput(server, 1, min(1.0, seconds))            # warm-up: imports, caches, page cache
        timings = Timings()
        one = best_of([lean_throughput(server, 1, seconds, timings) for _ in range(repeats)])
        two = best_of([lean_throughput(server, 2, seconds) for _ in range(repeats)])
        size = _db_bytes(db)
    return {"server": kind, "one_process": one, "two_processes": two,
            "latency_one_process": timings.summary(), "db_bytes_after_run": size}


def measure_httpx(kind: str, server_factory: Callable[[Path], Any], seconds: float, repeats: int,
                  samples: int) -> dict[str, Any]:
    with _fresh_server(server_factory) as (server, db):
        httpx_throughput(server, 1, min(1.0, seconds))           # warm-up
        timings = Timings()
        one = best_of([httpx_throughput(server, 1, seconds, timings) for _ in range(repeats)])
        two = best_of([httpx_throughput(server, 2, seconds) for _ in range(repeats)])
        endpoint_latencies(server, samples, seconds * repeats, timings)
        size = _db_bytes(db)
    return {"server": kind, "one_thread": one, "two_threads": two, "latency_one_thread": timings.summary(),
            "db_bytes_after_run": size}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_probe_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop (best of 3).  On a shared host the same code runs
    noticeably faster or slower from minute to minute; compare runs only at similar probe values."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        total = 0
        for i in range(300_000):
            total += i * i
        best = min(best, time.process_time() - start)
    return round(1000 * best, 1)


def _two_core_estimate(run: dict[str, Any]) -> float | None:
    """Cycles/s an otherwise idle 2-core machine allows from the CPU costs measured: the one-thread server
    needs a core of its own, and server plus clients share both."""
    server_ms = run.get("server_cpu_ms_per_cycle")
    if not server_ms:
        return None
    return round(1000 / max(server_ms, (server_ms + run["client_cpu_ms_per_cycle"]) / 2), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one load window")
    parser.add_argument("--repeats", type=int, default=3, help="load windows per phase (the best one is reported)")
    parser.add_argument("--samples", type=int, default=200, help="single-request samples per endpoint")
    parser.add_argument("--no-thread-mode", action="store_true", help="skip the in-thread server comparison")
    args = parser.parse_args()
    if args.seconds <= 0 or args.repeats < 1 or args.samples < 1:
        parser.error("--seconds must be > 0, --repeats and --samples >= 1")
    load_before = _load()   # other work on the machine makes wall-clock figures noisy; say how busy it was
    probe_before = _cpu_probe_ms()

    kind = "separate process: ktbench serve kt1 --db <file> (uvicorn)"
    lean = measure_lean(kind, process_server, args.seconds, args.repeats)
    via_httpx = measure_httpx(kind, process_server, args.seconds, args.repeats, args.samples)
    embedded = None
    if not args.no_thread_mode:
        embedded = measure_lean("embedded in-thread server of the benchmark process", thread_server,
                                args.seconds, args.repeats)
    # Headline: the lean client in separate processes against the separate server process; whichever of one
    # or two client processes went faster (on an idle 2-core machine two keep the server busy all the time).
    headline_key = max(("one_process", "two_processes"), key=lambda k: lean[k]["cycles_per_second"])
    headline = lean[headline_key]
    httpx_best = max(via_httpx["one_thread"]["cycles_per_second"], via_httpx["two_threads"]["cycles_per_second"])
    report: dict[str, Any] = {
        "benchmark": "kt1_server",
        "cycle": "module POST UpdateCarePlanActivityStatus (versioned) -> portal claim -> portal PUT Success",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "cpu_probe_ms_before": probe_before,
        "goal_cycles_per_second": GOAL_CYCLES_PER_SECOND,
        "cycles_per_second": headline["cycles_per_second"],
        "goal_met": headline["cycles_per_second"] >= GOAL_CYCLES_PER_SECOND,
        "headline": f"lean client, {headline['client_processes']} separate client process(es), separate server "
                    f"process, best of {args.repeats} windows of {args.seconds:g} s",
        "headline_median_cycles_per_second": headline["median_cycles_per_second"],
        "server_cpu_ms_per_cycle": headline.get("server_cpu_ms_per_cycle"),
        "client_cpu_ms_per_cycle": headline["client_cpu_ms_per_cycle"],
        "estimated_idle_2core_cycles_per_second": _two_core_estimate(lean["two_processes"]),
        "httpx_cycles_per_second": httpx_best,
        "lean_client": lean,
        "httpx_client": via_httpx,
    }
    if embedded is not None:
        report["embedded_server_lean_client"] = embedded
    report["load_average_after"] = _load()
    report["cpu_probe_ms_after"] = _cpu_probe_ms()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

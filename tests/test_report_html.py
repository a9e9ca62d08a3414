"""`ktbench run --html`: the Allure 3 HTML report, built by the real Allure CLI and rendered by a real Chromium.

What a tester sees is what counts, so the report is served over http (the
Awesome report fetches its data files and shows nothing from file://) by a
tiny http.server on 127.0.0.1, rendered by headless Chromium (`--dump-dom`,
`--screenshot`), and checked for the scenarios that ran, their status, the
failure categories and the absence of every configured secret.  Targets: the
embedded reference server (passes), the reference server with one catalogued
fault (fails a smoke scenario) and a closed port (unreachable: broken).  Only
the smoke feature runs.

The rendering tests skip when Chromium or the Allure 3 CLI is missing (.ci/run
installs both, best effort); the tests of the CLI lookup, the destination and
the secret guard need neither or only Allure.
"""

from __future__ import annotations

import base64
import functools
import html
import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ktbench.report.html import (
    AllureCli,
    HtmlReportError,
    build_html_report,
    find_allure,
    java_regex_to_js,
    report_secrets,
)
from ktbench.generations.kt1 import GENERATION as KT1

WINDOW = (1280, 1000)
REPORT_NAME = "ktbench KT1 conformance"
CONFORMANCE = "The metadata endpoint returns the Koppeltaal Conformance statement"
OAUTH_URIS = "The Conformance statement advertises the OAuth authorize and token endpoints"
SMOKE_FEATURE = "KT1 server describes itself (Conformance statement)"


# ---------------------------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------------------------
def chromium_path() -> str | None:
    configured = os.environ.get("KTBENCH_CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@functools.lru_cache(maxsize=1)
def _allure_or_reason() -> AllureCli | str:
    try:
        return find_allure()
    except HtmlReportError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def allure() -> AllureCli:
    found = _allure_or_reason()
    if isinstance(found, str):
        pytest.skip(f"the Allure 3 CLI is not installed ({found})")
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    found = chromium_path()
    if found is None:
        pytest.skip("no headless Chromium (chromium, chromium-browser or google-chrome on PATH, or "
                    "$KTBENCH_CHROMIUM); Debian: apt-get install chromium")
    return found


@pytest.fixture(scope="module")
def embedded_server() -> Any:
    return pytest.importorskip("simulators.kt1.embedded", reason="the embedded KT1 reference server is not there")


# ---------------------------------------------------------------------------------------------------------------
# Running ktbench
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    root: Path
    proc: subprocess.CompletedProcess[str]

    @property
    def rc(self) -> int:
        return self.proc.returncode

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @property
    def report(self) -> Path:
        return self.root / "html"

    def scenarios(self) -> dict[str, str]:
        """name -> outcome of every scenario that ran, from summary.json."""
        summary = json.loads((self.root / "summary.json").read_text(encoding="utf-8"))
        return {s["name"]: s["outcome"] for s in summary["scenarios"]}


def ktbench_run(root: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    command = [sys.executable, "-m", "ktbench.cli", "run",
               "--alluredir", str(root / "allure-results"), "--junitxml", str(root / "junit.xml"),
               "--summary", str(root / "summary.json"), "--pytest-args", "-p no:cacheprovider",
               "--html-dir", str(root / "html"), *args]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})})
    return Run(root, proc)


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------------------------
# Serving and rendering the report
# ---------------------------------------------------------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def served(directory: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Page:
    url: str
    dom: str
    screenshot: Path | None

    @property
    def text(self) -> str:
        body = self.dom[self.dom.find("<body"):]
        body = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", body, flags=re.DOTALL | re.IGNORECASE)
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))

    def tree_leaves(self) -> dict[str, str]:
        """Scenario title -> status of every scenario the tree shows (open groups only)."""
        leaf = re.compile(r'data-testid="tree-leaf-status-(\w+)"(?:(?!data-testid="tree-leaf").)*?'
                          r'data-testid="tree-leaf-title"[^>]*>([^<]*)<', re.DOTALL)
        return {html.unescape(title).strip(): status for status, title in leaf.findall(self.dom)}

    def result_status(self) -> tuple[str, str]:
        """(title, status) shown on a test result page."""
        title = re.search(r'data-testid="test-result-info-title"[^>]*>([^<]*)<', self.dom)
        status = re.search(r'data-testid="test-result-status-(\w+)"', self.dom)
        assert title and status, f"no test result rendered at {self.url}"
        return html.unescape(title.group(1)).strip(), status.group(1)


class Browser:
    """Headless Chromium, one fresh profile per page; the network is loopback only."""

    def __init__(self, executable: str, profiles: Path) -> None:
        self.executable = executable
        self.profiles = profiles
        self._count = 0
        self._lock = threading.Lock()

    def _profile(self) -> Path:
        with self._lock:
            self._count += 1
            return self.profiles / f"profile-{self._count}"

    def render(self, url: str, screenshot: Path | None = None) -> Page:
        args = [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--virtual-time-budget=8000", "--no-first-run", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", f"--user-data-dir={self._profile()}", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
        if screenshot is not None:
            args.append(f"--screenshot={screenshot}")
        proc = subprocess.Popen([*args, "--dump-dom", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            dom, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the browser and the renderers it started
            proc.communicate()
            raise AssertionError(f"Chromium did not finish rendering {url}") from None
        assert proc.returncode == 0 and "<html" in dom, f"Chromium failed on {url}: {err[-2000:]}"
        return Page(url, dom, screenshot)

    def render_all(self, requests: list[tuple[str, Path | None]]) -> list[Page]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda r: self.render(*r), requests))


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Browser:
    return Browser(chromium, tmp_path / "chromium")


def leaf_ids(report: Path) -> dict[str, str]:
    """Scenario name -> the report's id for it (its page is index.html#/<id>)."""
    tree = json.loads((report / "widgets" / "tree.json").read_text(encoding="utf-8"))
    return {leaf["name"]: node_id for node_id, leaf in tree["leavesById"].items()}


# ---------------------------------------------------------------------------------------------------------------
# Screenshots: PNG decoded with the standard library
# ---------------------------------------------------------------------------------------------------------------
def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "truncated PNG data"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


@dataclass
class Picture:
    width: int
    height: int
    colours: int  # distinct colours among the sampled pixels
    dominant: float  # share of the most common colour
    red: int  # strongly red sampled pixels (failed status)
    green: int  # strongly green sampled pixels (passed status)


def look_at(path: Path) -> Picture:
    width, height, rows, bpp = decode_png(path.read_bytes())
    counts: dict[bytes, int] = {}
    red = green = 0
    for row in rows[::2]:
        for i in range(0, len(row), bpp * 2):
            r, g, b = row[i], row[i + 1], row[i + 2]
            key = row[i:i + 3]
            counts[key] = counts.get(key, 0) + 1
            red += r > 200 and g < 110 and b < 110
            green += g > 150 and r < 120 and b < 140
    return Picture(width, height, len(counts), max(counts.values()) / sum(counts.values()), red, green)


def assert_real_report_picture(picture: Picture) -> None:
    assert (picture.width, picture.height) == WINDOW
    # a blank page is one colour; the report page without its data (file://) is > 99 % background
    assert picture.colours > 200 and picture.dominant < 0.9, f"the screenshot looks blank: {picture}"


# ---------------------------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------------------------
def configured_secrets() -> list[str]:
    target = KT1.target_for_url("http://127.0.0.1")
    values = list(target.secrets())
    for creds in target.roles.values():
        for user in {creds.username, creds.app_id}:
            for secret in (creds.password.reveal(), creds.client_secret.reveal()):
                values.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return values


def assert_no_secrets(directory: Path) -> None:
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    secrets = configured_secrets()
    assert "portal-secret" in secrets and "module-secret" in secrets
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"secret {secret[:3]}... in {path.relative_to(directory)}"


def assert_attachments_redacted(report: Path) -> None:
    """The exchanges are in the report (so the absence of secrets means something), with Basic redacted."""
    attachments = "".join(p.read_text(encoding="utf-8", errors="replace")
                          for p in (report / "data" / "attachments").glob("*"))
    assert "/FHIR/Koppeltaal/metadata" in attachments
    assert "authorization: Basic ***" in attachments


# ---------------------------------------------------------------------------------------------------------------
# Rendered reports
# ---------------------------------------------------------------------------------------------------------------
def test_passing_run_renders_every_scenario_as_passed(embedded_server: Any, allure: AllureCli, browser: Browser,
                                                      tmp_path: Path) -> None:
    run = ktbench_run(tmp_path, "--suite", "kt1", "--tags", "@smoke")
    assert run.rc == 0, run.output
    assert f"HTML report:    {run.report / 'index.html'}" in run.output
    index = (run.report / "index.html").read_text(encoding="utf-8")
    assert "googletagmanager" not in index and "gtag(" not in index  # the report does not call home
    ran = run.scenarios()
    assert ran == {CONFORMANCE: "passed", OAUTH_URIS: "passed"}
    assert_attachments_redacted(run.report)
    assert_no_secrets(run.report)

    ids = leaf_ids(run.report)
    shot = tmp_path / "passed.png"
    with served(run.report) as url:
        main, *pages = browser.render_all([(url, shot), *((f"{url}#/{ids[name]}", None) for name in ran)])
    assert REPORT_NAME in main.text and SMOKE_FEATURE in main.text
    assert "embedded" in main.text  # the Environment widget names the target
    assert 'data-testid="tab-failed"' not in main.dom and 'data-testid="tab-passed"' in main.dom
    for page, (name, outcome) in zip(pages, ran.items()):
        assert page.result_status() == (name, outcome)
        assert "Passed" in page.text
        assert "KT1-META-" in page.text  # the requirement label
    picture = look_at(shot)
    assert_real_report_picture(picture)
    assert picture.green > 300 and picture.red < 150, picture  # all-green pie and status bar


def test_failing_target_renders_the_scenario_as_failed(embedded_server: Any, allure: AllureCli, browser: Browser,
                                                       tmp_path: Path) -> None:
    # the reference server labelling JSON application/fhir+json breaks the Content-Type exchange rule, which
    # every exchange is held to: both smoke scenarios read metadata, so both fail
    with embedded_server.running_kt1_server(faults=["wrong-content-type"]) as server:
        run = ktbench_run(tmp_path, "--target", server.url, "--tags", "@smoke")
    assert run.rc == 1, run.output  # --html does not change the verdict
    assert run.scenarios() == {CONFORMANCE: "failed", OAUTH_URIS: "failed"}
    assert_no_secrets(run.report)

    ids = leaf_ids(run.report)
    shot = tmp_path / "failed.png"
    with served(run.report) as url:
        main, failed = browser.render_all([(url, shot), (f"{url}#/{ids[CONFORMANCE]}", None)])
    # groups holding a failure open by default: the failed scenario is visible on the front page
    assert main.tree_leaves().get(CONFORMANCE) == "failed", main.tree_leaves()
    assert 'data-testid="tab-failed"' in main.dom and "KT1-META-CONFORMANCE" in main.text
    assert failed.result_status() == (CONFORMANCE, "failed")
    assert "Failed" in failed.text
    assert "RequirementFailed: KT1-META-CONFORMANCE:" in failed.text and "application/fhir+json" in failed.text
    picture = look_at(shot)
    assert_real_report_picture(picture)
    assert picture.red > 300, picture  # red status bars and pie segment


def test_unreachable_target_renders_broken_not_failed(allure: AllureCli, browser: Browser, tmp_path: Path) -> None:
    # the preflight stops the run: no scenario ran (summary.json lists none), but the report and the JUnit file
    # carry one broken preflight result saying why, so a CI pipeline publishing them shows the verdict
    run = ktbench_run(tmp_path, "--target", closed_port_url(), "--tags", "@smoke")
    assert run.rc == 3, run.output
    assert run.scenarios() == {}
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert 'errors="1"' in junit and 'type="TargetUnreachable"' in junit and "<failure" not in junit
    with served(run.report) as url:
        main = browser.render(url)
    leaves = main.tree_leaves()  # groups holding broken results open by default, like failed ones
    assert leaves == {"Preflight: The target can be reached": "broken"}, leaves
    assert 'data-testid="tab-broken"' in main.dom and 'data-testid="tab-failed"' not in main.dom
    # categories.json's Java regex (?s).*TargetUnreachable.* reached Allure 3 as a working RegExp
    # (the Categories tab renders this file; one page load less)
    categories = json.loads((run.report / "widgets" / "categories.json").read_text(encoding="utf-8"))
    names = {node["name"]: node["statistic"] for node in categories["nodes"].values() if node["type"] == "category"}
    assert names == {"Target unreachable (not a conformance verdict)": {"total": 1, "broken": 1}}, names


# ---------------------------------------------------------------------------------------------------------------
# The CLI lookup, the exit code, the destination and the secret guard
# ---------------------------------------------------------------------------------------------------------------
def test_missing_allure_is_explained_and_keeps_the_exit_code(embedded_server: Any, tmp_path: Path) -> None:
    run = ktbench_run(tmp_path, "--suite", "kt1", "--tags", "@smoke and @req:KT1-META-OAUTH-URIS",
                      env={"KTBENCH_ALLURE": str(tmp_path / "no-such-allure")})
    assert run.rc == 0, run.output
    assert "HTML report not built" in run.proc.stderr and "npm install allure@3" in run.proc.stderr
    assert "Traceback" not in run.output
    assert not run.report.exists()


def test_find_allure_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(HtmlReportError, match=r"npm install allure@3"):
        find_allure(env={"PATH": str(tmp_path)}, repo_root=tmp_path)
    # an Allure 2 (Java) command line on PATH is named, and not used
    allure2 = tmp_path / "allure"
    allure2.write_text("#!/bin/sh\necho 2.30.0\n", encoding="utf-8")
    allure2.chmod(0o755)
    with pytest.raises(HtmlReportError, match=r"Allure 2\.30\.0.*npm install allure@3"):
        find_allure(env={"PATH": str(tmp_path)}, repo_root=tmp_path)
    with pytest.raises(HtmlReportError, match=r"KTBENCH_ALLURE.*not an executable"):
        find_allure(env={"PATH": str(tmp_path), "KTBENCH_ALLURE": str(tmp_path / "missing")}, repo_root=tmp_path)


def test_categories_regex_becomes_a_javascript_regex() -> None:
    assert java_regex_to_js("(?s).*TargetUnreachable.*") == {"source": "^(?:.*TargetUnreachable.*)$", "flags": "s"}
    assert java_regex_to_js("Assertion.*") == {"source": "^(?:Assertion.*)$", "flags": ""}


def planted_results(directory: Path, attachment: str, suffix: str = ".txt") -> Path:
    """A minimal Allure results directory: one passed test with one attachment."""
    directory.mkdir(parents=True)
    source = f"0a1b2c3d-attachment{suffix}"
    (directory / source).write_text(attachment, encoding="utf-8")
    result = {"uuid": "0a1b2c3d", "name": "planted scenario", "fullName": "planted.feature:planted scenario",
              "historyId": "planted", "status": "passed", "start": 1_700_000_000_000, "stop": 1_700_000_000_100,
              "labels": [{"name": "feature", "value": "planted"}, {"name": "requirement", "value": "KT1-TEST"}],
              "steps": [{"name": "When something is sent", "status": "passed", "start": 1_700_000_000_000,
                         "stop": 1_700_000_000_100,
                         "attachments": [{"name": "exchange", "source": source, "type": "text/plain"}]}]}
    (directory / "0a1b2c3d-result.json").write_text(json.dumps(result), encoding="utf-8")
    return directory


def test_a_directory_that_is_not_a_report_is_never_replaced(tmp_path: Path) -> None:
    results = planted_results(tmp_path / "results", "nothing secret")
    keep = tmp_path / "docs"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(HtmlReportError, match="refusing to replace"):
        build_html_report(results, keep)
    assert (keep / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(HtmlReportError, match="outside the results directory"):
        build_html_report(results, results / "html")
    with pytest.raises(HtmlReportError, match="no Allure results"):
        build_html_report(tmp_path / "docs", tmp_path / "html")


def test_secrets_left_in_the_results_never_reach_the_report(allure: AllureCli, tmp_path: Path) -> None:
    secrets = report_secrets(KT1.target_for_url("http://127.0.0.1"))
    basic = base64.b64encode(b"ktbench-portal:portal-secret").decode()
    results = planted_results(tmp_path / "results",
                              f"authorization: Basic {basic}\nerror: wrong password portal-secret\n")
    report = build_html_report(results, tmp_path / "html", secrets=secrets, allure=allure)
    assert any("scrubbed" in note and "portal Basic credentials" in note for note in report.notes), report.notes
    for directory in (results, report.directory):
        text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in directory.rglob("*") if p.is_file())
        assert "portal-secret" not in text and basic not in text
    attachments = "".join(p.read_text(encoding="utf-8") for p in (report.directory / "data" / "attachments").glob("*"))
    assert "authorization: Basic ***" in attachments and "wrong password ***" in attachments

    # a secret in a file the scrubber cannot rewrite: no report is built, the previous one stays
    binary = planted_results(tmp_path / "binary-results", "token portal-secret", suffix=".bin")
    with pytest.raises(HtmlReportError, match="secrets remain"):
        build_html_report(binary, tmp_path / "html", secrets=secrets, allure=allure)
    assert (tmp_path / "html" / "index.html").is_file()

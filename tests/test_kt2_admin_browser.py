"""KT2 domain admin web page in a real headless Chromium: a domain admin logs in, opens a pending connection
request, accepts it with a role and sees the result, clicking as a person does.

Chromium is driven over the Chrome DevTools Protocol (`--remote-debugging-port`) with a small websocket client
on `wsproto` (installed with mitmproxy): real key input, real mouse clicks at the element's position, real
navigation through the 303 redirects.  The pages are also photographed: once by Chromium's own `--screenshot`
(the log-in page) and once over CDP (the accepted request), and both PNGs are checked to be real pictures.
Skips when there is no Chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kt2_admin_support import MGMT, PASSWORDS, AdminHarness, admin, no_unhandled_errors  # noqa: F401
from test_report_html import chromium  # noqa: F401  (the fixture: skips with a reason when Chromium is missing)

WINDOW = (1280, 900)
SCREENSHOTS = Path(os.environ.get("KTBENCH_SCREENSHOTS", tempfile.gettempdir())) / "ktbench-kt2-admin"


BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
              f"--window-size={WINDOW[0]},{WINDOW[1]}")


# -- a minimal CDP client ----------------------------------------------------------------------------------
class Cdp:
    """One websocket to one page target; `call()` waits for its answer and keeps the events seen meanwhile."""

    def __init__(self, ws_url: str, timeout: float = 15.0) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request

        parts = urlsplit(ws_url)
        self.timeout = timeout
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{parts.hostname}:{parts.port}", target=parts.path)))
        self.events: list[dict[str, Any]] = []
        self._answers: dict[int, dict[str, Any]] = {}
        self._buffer = ""
        self._next = 0
        deadline = time.monotonic() + timeout
        accepted = False
        while not accepted:
            if time.monotonic() > deadline:
                raise TimeoutError("no websocket handshake with Chromium")
            self.ws.receive_data(self.sock.recv(65536))
            accepted = any(isinstance(e, AcceptConnection) for e in self.ws.events())

    def _pump(self) -> None:
        from wsproto.events import CloseConnection, Ping, TextMessage

        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("Chromium closed the DevTools connection")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._buffer += event.data
                if event.message_finished:
                    message = json.loads(self._buffer)
                    self._buffer = ""
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                raise ConnectionError("Chromium closed the DevTools connection")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        from wsproto.events import TextMessage

        self._next += 1
        ident = self._next
        self.sock.sendall(self.ws.send(TextMessage(json.dumps({"id": ident, "method": method, "params": params}))))
        deadline = time.monotonic() + self.timeout
        while ident not in self._answers:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to {method}")
            self._pump()
        answer = self._answers.pop(ident)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, seen in enumerate(self.events):
                if seen.get("method") == event:
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event}")
            self._pump()

    def close(self) -> None:
        self.sock.close()


class Tab:
    """What a person does: open a page, type into a field, click something, read the page."""

    def __init__(self, cdp: Cdp) -> None:
        self.cdp = cdp
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")

    def _loaded(self, action) -> None:
        self.cdp.events.clear()
        action()
        self.cdp.wait_for("Page.loadEventFired")

    def open(self, url: str) -> None:
        self._loaded(lambda: self.cdp.call("Page.navigate", url=url))

    def js(self, expression: str) -> Any:
        result = self.cdp.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        assert self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                       f"if (!e) return false; e.focus(); return true; }})()"), selector
        self.cdp.call("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select> by keyboard, as a person tabbing through the form would."""
        index = self.js(f"[...document.querySelector({json.dumps(selector)}).options]"
                        f".findIndex(o => o.value === {json.dumps(value)})")
        assert index is not None and index >= 0, (selector, value)
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        for _ in range(index):
            for kind in ("keyDown", "keyUp"):
                self.cdp.call("Input.dispatchKeyEvent", type=kind, key="ArrowDown", code="ArrowDown",
                              windowsVirtualKeyCode=40)
        assert self.js(f"document.querySelector({json.dumps(selector)}).value") == value

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element; waits for the page it leads to."""
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; "
                      "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        assert box is not None, f"nothing matches {selector}"
        x, y = box

        def press() -> None:
            for kind in ("mousePressed", "mouseReleased"):
                self.cdp.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        self._loaded(press)

    def click_link(self, text: str, near: str | None = None) -> None:
        """Click the link with this text (in the table row that mentions `near`, if given)."""
        marker = "data-ktbench-target"
        found = self.js(
            "(() => { const links = [...document.querySelectorAll('a')].filter(a => a.textContent.trim() === "
            f"{json.dumps(text)} && ({json.dumps(near)} === null || (a.closest('tr') || document.body)"
            f".textContent.includes({json.dumps(near)}))); if (links.length !== 1) return links.length; "
            f"links[0].setAttribute('{marker}', '1'); return -1; }})()")
        assert found == -1, f"{found} links {text!r} near {near!r}"
        self.click(f"a[{marker}]")

    @property
    def url(self) -> str:
        return self.js("location.href")

    @property
    def text(self) -> str:
        return self.js("document.body.innerText")

    def screenshot(self, path: Path) -> Path:
        data = self.cdp.call("Page.captureScreenshot", format="png")["data"]
        import base64
        path.write_bytes(base64.b64decode(data))
        return path


@pytest.fixture
def tab(chromium: str, tmp_path: Path) -> Iterator[Tab]:
    process = subprocess.Popen([chromium, *BASE_FLAGS, "--remote-debugging-port=0",
                                f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cdp = None
    try:
        deadline = time.monotonic() + 30
        endpoint = None
        assert process.stderr is not None
        while endpoint is None:
            line = process.stderr.readline()
            if not line and (process.poll() is not None or time.monotonic() > deadline):
                pytest.fail("Chromium did not open its DevTools port")
            match = re.search(r"DevTools listening on (ws://[^\s]+)", line)
            if match:
                endpoint = match[1]
        port = urlsplit(endpoint).port
        targets = []
        while not targets and time.monotonic() < deadline:
            targets = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            time.sleep(0.05)
        cdp = Cdp(targets[0]["webSocketDebuggerUrl"])
        yield Tab(cdp)
    finally:
        if cdp is not None:
            cdp.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- PNG check ---------------------------------------------------------------------------------------------
def png_facts(path: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decoded scanlines) of a PNG; fails if it is not one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    pixels = zlib.decompress(idat)
    return width, height, len(set(pixels))


def assert_real_picture(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 10_000, f"{path}: {path.stat().st_size if path.exists() else 0} B"
    width, height, distinct = png_facts(path)
    assert width >= 800 and height >= 600, (width, height)
    assert distinct > 30, f"{path} looks blank ({distinct} distinct byte values)"


# -- the tests ---------------------------------------------------------------------------------------------
def test_login_page_screenshot(chromium: str, admin: AdminHarness, tmp_path: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "login.png"
    shot.unlink(missing_ok=True)
    subprocess.run([chromium, *BASE_FLAGS, "--virtual-time-budget=8000", f"--user-data-dir={tmp_path / 'p'}",
                    f"--screenshot={shot}", f"{admin.url}{MGMT}/login"], capture_output=True, timeout=90, check=False)
    assert_real_picture(shot)
    assert png_facts(shot)[:2] == WINDOW


def test_domain_admin_accepts_a_request_in_chromium(admin: AdminHarness, tab: Tab) -> None:
    filed = admin.filed(name="Module via Chromium", redirect_uris=["https://module.example.test/cb"])
    tab.open(f"{admin.url}{MGMT}/")
    assert tab.url == f"{admin.url}{MGMT}/login"                      # no session yet: the log-in form
    tab.type_into("#username", "alpha-admin")
    tab.type_into("#password", PASSWORDS["alpha-admin"])
    tab.click("#login")
    assert tab.url == f"{admin.url}{MGMT}/"
    assert "Mijn domeinen" in tab.text and "Beheerder Alpha" in tab.text
    assert tab.js("document.cookie") == ""                           # HttpOnly: no script sees the session

    tab.click_link("Openen", near="ktbench-alpha")
    assert tab.url == f"{admin.url}{MGMT}/domains/ktbench-alpha"
    assert "Applicatieinstanties" in tab.text
    tab.click_link("Connectieaanvragen")
    assert "Module via Chromium" in tab.text and "In behandeling" in tab.text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert_real_picture(tab.screenshot(SCREENSHOTS / "domain-requests.png"))
    tab.click_link("Inzien", near="Module via Chromium")
    assert tab.url == f"{admin.url}{MGMT}/connection-requests/{filed['id']}"
    assert "https://module.example.test/cb" in tab.text
    assert_real_picture(tab.screenshot(SCREENSHOTS / "pending.png"))

    tab.choose("#role", "eHealth Module")
    tab.click("#accept")
    assert tab.url == f"{admin.url}{MGMT}/connection-requests/{filed['id']}?melding=geaccepteerd"
    page = tab.text
    assert "<" not in page, page                                     # no template markup shown as text
    assert "De connectieaanvraag is geaccepteerd" in page and "Geaccepteerd" in page
    client_id = tab.js("document.querySelector('#client-id').textContent")
    assert re.fullmatch(r"[0-9a-f-]{36}", client_id), client_id
    assert "eHealth Module" in page

    assert_real_picture(tab.screenshot(SCREENSHOTS / "accepted.png"))

    # what the page showed is what happened
    record = admin.admin.instance("ktbench-alpha", client_id)
    assert record is not None and (record.status, record.role) == ("active", "eHealth Module")
    assert admin.fhir.device("ktbench-alpha", client_id)["status"] == "active"
    assert "Connectieaanvraag geaccepteerd" in [m["subject"] for m in admin.mails_to("vendor-admin")]

    tab.click_link("Details")
    assert tab.url == f"{admin.url}{MGMT}/instances/{client_id}"
    assert "Actief" in tab.text and "Statusgeschiedenis" in tab.text and "<" not in tab.text
    assert_real_picture(tab.screenshot(SCREENSHOTS / "instance.png"))

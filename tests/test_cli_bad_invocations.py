"""The command line never crashes: a table of bad invocations across every command, each in its own process.

Each one must end by itself (no hang), print no Python traceback, give the documented exit code and say what
is wrong in one clear message.  Placeholders name fixtures made once per run: {file} (a plain file), {dir}
(a folder), {bad_toml}, {bad_json}, {empty}, {binary}, {busy} (a port somebody listens on), {closed} (a URL
nobody answers), {web} (a web server that is no Koppeltaal server) and {tmp} (a scratch folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from simulators.common.host import running_asgi

KTBENCH = [sys.executable, "-m", "ktbench"]
TIMEOUT = 90

USAGE = 2
# (arguments, exit code, a fragment the output must contain)
GLOBAL = [
    (["no-such-command"], USAGE, "No such command"),
    (["--generation", "nocolon", "run"], USAGE, "module:attribute"),
    (["--generation", "tests.no_such_module:G", "run"], USAGE, "cannot import generation module"),
    (["--generation", "ktbench.generations.kt1:KIND", "run"], USAGE, "is not a ktbench generation"),
    (["--generation"], USAGE, "requires an argument"),
    (["--no-such-option"], USAGE, "No such option"),
]
RUN = [
    (["run", "--suite", "kt9"], USAGE, "unknown suite 'kt9'"),
    (["run", "--suite", ""], USAGE, "unknown suite ''"),
    (["run", "--target", "nosuch"], USAGE, "neither a URL nor a target name"),
    (["run", "--target", "ftp://host"], USAGE, "is not an http(s) URL"),
    (["run", "--target", "http://"], USAGE, "is not an http(s) URL"),
    (["run", "--target", "http://h:99999"], USAGE, "invalid port"),
    (["run", "--target", "http://h/?x=1"], USAGE, "must not have a query"),
    (["run", "--target", "http://h/#frag"], USAGE, "must not have a query or fragment"),
    (["run", "--targets", "{tmp}/missing.toml", "--target", "a"], USAGE, "does not exist"),
    (["run", "--targets", "{dir}", "--target", "a"], USAGE, "is a directory"),
    (["run", "--targets", "{bad_toml}", "--target", "a"], USAGE, "is not valid TOML"),
    (["run", "--targets", "{empty}", "--target", "a"], USAGE, "no [targets.<name>] tables found"),
    (["run", "--targets", "{binary}", "--target", "a"], USAGE, "is not valid TOML"),
    (["run", "--targets", "{t_unknown_kind}", "--target", "a"], USAGE, "unknown target kind 'kt9-server'"),
    (["run", "--targets", "{t_no_url}", "--target", "a"], USAGE, "missing required key 'url'"),
    (["run", "--targets", "{t_bad_role}", "--target", "a"], USAGE, "unknown role 'nurse'"),
    (["run", "--targets", "{t_bad_tls}", "--target", "a"], USAGE, "is not a readable file"),
    (["run", "--targets", "{t_env}", "--target", "a"], USAGE, "KTBENCH_TEST_UNSET_VARIABLE is not set"),
    (["run", "--targets", "{t_good}", "--target", "acceptanse"], USAGE, "did you mean 'acceptance'"),
    (["run", "--targets", "{t_good}", "--target", "acceptance", "--suite", "kt9"], USAGE, "unknown suite"),
    (["run", "--target", "{closed}", "-n", "many"], USAGE, "-n must be a number"),
    (["run", "--target", "{closed}", "-n", "0"], USAGE, "-n must be a number from 1 to 64"),
    (["run", "--suite", "kt1-apps"], USAGE, "needs --role module or portal"),
    (["run", "--suite", "kt1-apps", "--role", "nurse"], USAGE, "has no role 'nurse'"),
    (["run", "--suite", "kt2", "--role", "portal"], USAGE, "--role goes with an application suite"),
    (["run", "--suite", "kt1-apps", "--role", "module", "-n", "2"], USAGE, "runs serially"),
    (["run", "--suite", "kt2-apps", "--role", "portal", "--target", "{closed}"], USAGE, "a bare URL cannot"),
    (["run", "--suite", "kt1", "--fault", "no-such-fault"], USAGE, "has no fault 'no-such-fault'"),
    (["run", "--target", "{closed}", "--fault", "double-claim"], USAGE, "leave out --target"),
    (["run", "--suite", "kt2-apps", "--role", "module", "--fault"], USAGE, "requires an argument"),
    (["run", "--target", "{closed}", "-n", "-1"], USAGE, "-n must be a number"),
    (["run", "--target", "{closed}", "-n", "9999"], USAGE, "-n must be a number from 1 to 64"),
    (["run", "--target", "{closed}", "-n", "²"], USAGE, "-n must be a number"),
    (["run", "--target", "{closed}", "--tags", "@a and"], USAGE, "--tags"),
    (["run", "--target", "{closed}", "--tags", "(@a"], USAGE, "--tags"),
    (["run", "--target", "{closed}", "--tags", "not"], USAGE, "--tags"),
    (["run", "--target", "{closed}", "--tags", "and @a"], USAGE, "--tags"),
    (["run", "--target", "{closed}", "--tags", "@a)"], USAGE, "--tags"),
    (["run", "--target", "{closed}", "--validate", "sometimes"], USAGE, "--validate must be"),
    (["run", "--target", "{closed}", "--fail-on", "sometimes"], USAGE, "--fail-on must be one of"),
    (["run", "--target", "{closed}", "--validation-policy", "{tmp}/missing.toml"], USAGE, "does not exist"),
    (["run", "--target", "{closed}", "--validation-policy", "{dir}"], USAGE, "is a directory"),
    (["run", "--target", "{closed}", "--validation-policy", "{bad_toml}"], USAGE, "is not valid TOML"),
    (["run", "--target", "{closed}", "--validation-policy", "{empty}"], USAGE, "version"),
    (["run", "--target", "{closed}", "--pytest-args", "'unclosed"], USAGE, "--pytest-args"),
    (["run", "--target", "{closed}", "--alluredir", "{file}"], USAGE, "--alluredir"),
    (["run", "--target", "{closed}", "--junitxml", "{dir}"], USAGE, "is a directory"),
    (["run", "--target", "{closed}", "--summary", "{dir}"], USAGE, "is a directory"),
    (["run", "--target", "{closed}", "--events", "{dir}"], USAGE, "is a directory"),
    (["run", "--target", "{closed}", "--html-dir", "{file}"], USAGE, "--html-dir"),
    (["run", "--target", "{closed}", "--summary", "{file}/below/summary.json"], USAGE, "is not a writable directory"),
    (["run", "--target", "{closed}", "--junitxml", "/proc/ktbench/junit.xml"], USAGE, "is not a writable directory"),
    (["run", "--target", "{closed}", "--no-such-option"], USAGE, "No such option"),
    (["run", "--target", "{closed}", "-n"], USAGE, "requires an argument"),
    (["run", "--target"], USAGE, "requires an argument"),
    (["run", "--target", "{closed}"], 3, "cannot be reached"),
    (["run", "--target", "{web}"], USAGE, "does not answer a KT1 Conformance statement"),
    (["run", "--target", "{closed}", "--slow", "--allow-incomplete", "--debug"], 3, "cannot be reached"),
    (["run", "--tags", "@no-such-tag"], USAGE, "no scenario was selected"),
]
SERVE_COMMON = [
    (["--port", "-1"], "cannot listen on"),
    (["--port", "70000"], "cannot listen on"),
    (["--port", "abc"], "Invalid value for"),
    (["--port", "{busy}"], "cannot listen on"),
    (["--host", "999.1.1.1"], "cannot listen on"),
    (["--host", "not a host"], "cannot listen on"),
    (["--data", "{tmp}/missing.toml"], "missing.toml"),
    (["--data", "{dir}"], "is a directory"),
    (["--data", "{bad_toml}"], "not valid TOML"),
    (["--data", "{binary}"], ""),
    (["--fault", "no-such-fault"], "unknown fault(s) no-such-fault"),
    (["--fault", ""], "unknown fault"),
    (["--public-base", "ftp://x"], "--public-base"),
    (["--public-base", "not a url"], "--public-base"),
    (["--public-base", "http://h/?x=1"], "--public-base"),
    (["--db", "{dir}"], ""),
    (["--db", "/proc/ktbench/x.sqlite3"], ""),
    (["--no-such-option"], "No such option"),
    (["--port"], "requires an argument"),
]
SERVE_KT1_ONLY = [
    (["--claim-timeout", "-1"], "--claim-timeout must be a positive number"),
    (["--claim-timeout", "0"], "--claim-timeout must be a positive number"),
    (["--claim-timeout", "abc"], "Invalid value for '--claim-timeout'"),
    (["--claim-timeout", "nan"], "--claim-timeout must be a positive number"),
    (["--data", "{empty}"], ""),
]
SERVE = ([(["serve", "kt1", *args], USAGE, text) for args, text in SERVE_COMMON + SERVE_KT1_ONLY]
         + [(["serve", "kt2", *args], USAGE, text) for args, text in SERVE_COMMON]
         + [(["serve"], USAGE, ""), (["serve", "kt9"], USAGE, "No such command")])
VALIDATE = [
    (["validate"], USAGE, "Missing argument"),
    (["validate", "{tmp}/missing.json"], USAGE, "no such file"),
    (["validate", "{dir}"], USAGE, "is a directory"),
    (["validate", "{empty}"], USAGE, "UNREADABLE"),
    (["validate", "{binary}"], USAGE, "UNREADABLE"),
    (["validate", "{bad_json}"], USAGE, "UNREADABLE"),
    (["validate", "{bad_toml}"], USAGE, "UNREADABLE"),
    (["validate", "--kt", "3", "{bad_json}"], USAGE, "--kt must be 1 or 2"),
    (["validate", "--kt", "abc", "{bad_json}"], USAGE, "Invalid value for"),
    (["validate", "--format", "xml", "{bad_json}"], USAGE, "Invalid value for '--format'"),
    (["validate", "--suppressions", "{tmp}/missing.toml", "{bad_json}"], USAGE, "does not exist"),
    (["validate", "--suppressions", "{bad_toml}", "{bad_json}"], USAGE, "not valid TOML"),
    (["validate", "--suppressions", "{dir}", "{bad_json}"], USAGE, "is a directory"),
    (["validate", "--package", "{tmp}/missing", "{bad_json}"], USAGE, "does not exist"),
    (["validate", "--package", "{file}", "{bad_json}"], USAGE, "package"),
    (["validate", "--max-bytes", "0", "{bad_json}"], USAGE, "--max-bytes must be between"),
    (["validate", "--max-bytes", "-5", "{bad_json}"], USAGE, "--max-bytes must be between"),
    (["validate", "--max-bytes", "abc", "{bad_json}"], USAGE, "Invalid value for"),
    (["validate", "--max-bytes", "3", "{file}"], USAGE, "--max-bytes"),
    (["validate", "-", "-"], USAGE, "standard input ('-') can be read only once"),
    (["validate", "-"], USAGE, "UNREADABLE"),
    (["validate", "{xml_bomb}"], USAGE, "UNREADABLE"),
    (["validate", "{deep_json}"], USAGE, "UNREADABLE"),
    (["validate", "--no-such-option", "{file}"], USAGE, "No such option"),
]
COVERAGE = [
    (["coverage", "--suite", "kt9"], USAGE, "unknown suite 'kt9'"),
    (["coverage", "--summary", "{bad_json}"], USAGE, "is not a readable summary"),
    (["coverage", "--summary", "{dir}"], USAGE, "is not a readable summary"),
    (["coverage", "--format", "pdf"], USAGE, "Invalid value for '--format'"),
    (["coverage", "--out", "{dir}"], USAGE, "cannot write"),
    (["coverage", "--out", "{file}/x.md"], USAGE, "cannot write"),
    (["coverage", "--no-such-option"], USAGE, "No such option"),
    (["--generation", "tests.no_such_module:G", "coverage"], USAGE, "cannot import generation module"),
]
PROXY = [
    (["proxy", "--out", "{tmp}/p1"], USAGE, "reverse mode needs --upstream URL"),
    (["proxy", "--upstream", "ftp://x", "--out", "{tmp}/p2"], USAGE, "the scheme must be http or https"),
    (["proxy", "--upstream", "http://", "--out", "{tmp}/p3"], USAGE, "no host name"),
    (["proxy", "--upstream", "http://h:99999", "--out", "{tmp}/p4"], USAGE, "invalid port"),
    (["proxy", "--upstream", "http://u:p@h", "--out", "{tmp}/p5"], USAGE, "credentials in the URL"),
    (["proxy", "--upstream", "http://h/?x=1", "--out", "{tmp}/p6"], USAGE, "no query string"),
    (["proxy", "--mode", "weird"], USAGE, "Invalid value for '--mode'"),
    (["proxy", "--mode", "regular", "--upstream", "http://h", "--out", "{tmp}/p7"], USAGE, "--upstream is for reverse"),
    (["proxy", "--upstream", "http://h", "--listen", "-1", "--out", "{tmp}/p8"], USAGE, "invalid listen port"),
    (["proxy", "--upstream", "http://h", "--listen", "70000", "--out", "{tmp}/p9"], USAGE, "invalid listen port"),
    (["proxy", "--upstream", "http://h", "--listen", "{busy}", "--out", "{tmp}/p10"], USAGE, "already in use"),
    (["proxy", "--upstream", "http://h", "--listen", "abc"], USAGE, "Invalid value for"),
    (["proxy", "--upstream", "http://h", "--out", "{file}"], USAGE, "is a file"),
    (["proxy", "--upstream", "http://h", "--out", "/proc/ktbench/out"], USAGE, "cannot create the directory"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p11", "--har", "{dir}"], USAGE, "is a directory"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p12", "--flows", "{dir}"], USAGE, "is a directory"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p13", "--har", "{file}/x.har"], USAGE, "is not a directory"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p14", "--kt", "3"], USAGE, "--kt must be 1 or 2"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p15", "--workers", "0"], USAGE, "at least 1"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p16", "--workers", "999"], USAGE, "at most 64"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p17", "--suppressions", "{tmp}/missing.toml"], USAGE,
     "cannot use suppression file"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p18", "--suppressions", "{bad_toml}"], USAGE,
     "cannot use suppression file"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p19", "--filter", "~q ((("], USAGE, "bad --filter"),
    (["proxy", "--upstream", "http://h", "--out", "{tmp}/p20", "--validator", "no_such_module:x"], USAGE,
     "cannot be loaded"),
    (["proxy", "--no-such-option"], USAGE, "No such option"),
]
TABLE = GLOBAL + RUN + SERVE + VALIDATE + COVERAGE + PROXY


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("bad-invocations")
    (root / "dir").mkdir()
    files = {
        "file": b"just a file\n", "bad_toml": b"this is [not toml\n", "bad_json": b'{"resourceType": "Patient",',
        "empty": b"", "binary": bytes(range(256)) * 4,
        "xml_bomb": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
                    b'<Patient xmlns="http://hl7.org/fhir">&lol2;</Patient>',
        "deep_json": b'{"resourceType": "Patient", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "t_unknown_kind": b'[targets.a]\nkind = "kt9-server"\nurl = "http://h"\n',
        "t_no_url": b'[targets.a]\nkind = "kt1-server"\n',
        "t_bad_role": b'[targets.a]\nkind = "kt1-server"\nurl = "http://h"\n[targets.a.roles.nurse]\napp_id = "x"\n',
        "t_bad_tls": b'[targets.a]\nkind = "kt1-server"\nurl = "http://h"\n[targets.a.tls]\nca_file = "nope.pem"\n',
        "t_env": b'[targets.a]\nkind = "kt1-server"\nurl = "http://h"\n[targets.a.roles.portal]\napp_id = "p"\n'
                 b'password = "${KTBENCH_TEST_UNSET_VARIABLE}"\n',
        "t_good": b'[targets.acceptance]\nkind = "kt1-server"\nurl = "http://127.0.0.1:1"\n',
    }
    paths = {"tmp": str(root), "dir": str(root / "dir")}
    for name, data in files.items():
        path = root / name
        path.write_bytes(data)
        paths[name] = str(path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    paths["busy"] = str(busy.getsockname()[1])
    with running_asgi(Starlette(), name="closed") as gone:
        paths["closed"] = gone.url

    async def page(request):
        return HTMLResponse("<html>it works</html>")

    with running_asgi(Starlette(routes=[Route("/{p:path}", page)]), name="web") as web:
        paths["web"] = web.url
        try:
            yield paths
        finally:
            busy.close()


def _invoke(args: list[str], places: dict[str, str]) -> subprocess.CompletedProcess[str] | str:
    argv = [a.format(**places) for a in args]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    env.pop("KTBENCH_TARGETS", None)
    try:
        return subprocess.run([*KTBENCH, *argv], capture_output=True, text=True, timeout=TIMEOUT, env=env,
                              cwd=places["tmp"], stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"did not end within {TIMEOUT} s (a hang)"


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) >= 150, len(TABLE)
    commands = {args[0] if args[0] != "--generation" else args[-1] for args, _, _ in TABLE}
    assert {"run", "serve", "validate", "coverage", "proxy"} <= commands


def test_every_bad_invocation_ends_with_a_clear_message_and_the_documented_code(places) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda row: (row, _invoke(row[0], places)), TABLE))
    problems = []
    for (args, code, fragment), proc in results:
        shown = " ".join(args)
        if isinstance(proc, str):
            problems.append(f"{shown}: {proc}")
            continue
        output = proc.stdout + proc.stderr
        if "Traceback (most recent call last)" in output:
            problems.append(f"{shown}: printed a traceback:\n{output[-1500:]}")
        elif proc.returncode != code:
            problems.append(f"{shown}: exit {proc.returncode}, expected {code}:\n{output[-800:]}")
        elif fragment and fragment.lower() not in output.lower():
            problems.append(f"{shown}: the message lacks {fragment!r}:\n{output[-800:]}")
    assert not problems, f"{len(problems)} of {len(TABLE)} invocations misbehaved:\n\n" + "\n\n".join(problems)

"""`ktbench proxy` refuses bad configuration with a clear message and exit code 2, before starting anything."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from ktbench.cli import app
from ktbench.proxy.runner import ProxyConfigError, parse_upstream

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["proxy", *args])


@pytest.mark.parametrize(
    ("upstream", "complaint"),
    [
        ("ftp://127.0.0.1:21", "scheme must be http or https"),
        ("127.0.0.1:8080", "scheme must be http or https"),
        ("http://", "no host name"),
        ("http://127.0.0.1:99999", "invalid port"),
        ("http://user:pw@127.0.0.1:8080", "credentials in the URL"),
        ("http://127.0.0.1:8080/FHIR?x=1", "no query string"),
    ],
)
def test_bad_upstream_url_exits_2(upstream, complaint, tmp_path):
    result = invoke("--upstream", upstream, "--listen", "0", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "bad upstream URL" in result.output and complaint in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "proxy.json").exists()  # nothing was started


def test_port_in_use_exits_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("--upstream", "http://127.0.0.1:9", "--listen", str(port), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--listen", "0"], "reverse mode needs --upstream"),
        (["--mode", "regular", "--upstream", "http://127.0.0.1:9"], "--upstream is for reverse mode"),
        (["--upstream", "http://127.0.0.1:9", "--kt", "3"], "--kt must be 1 or 2"),
        (["--upstream", "http://127.0.0.1:9", "--workers", "0"], "--workers must be at least 1"),
        (["--upstream", "http://127.0.0.1:9", "--filter", "~q ((("], "bad --filter expression"),
    ],
)
def test_other_bad_options_exit_2(args, complaint, tmp_path):
    result = invoke(*args, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert complaint in result.output


def test_missing_suppression_file_exits_2(tmp_path):
    result = invoke("--upstream", "http://127.0.0.1:9", "--listen", "0", "--out", str(tmp_path),
                    "--suppressions", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "cannot use suppression file" in result.output


def test_upstream_with_a_base_path_forwards_from_the_root():
    upstream = parse_upstream("https://kt.example.org/FHIR/Koppeltaal/")
    assert upstream.origin == "https://kt.example.org"
    assert upstream.base_path == "/FHIR/Koppeltaal"
    assert parse_upstream("http://[::1]:8080").origin == "http://[::1]:8080"
    with pytest.raises(ProxyConfigError):
        parse_upstream("mailto:someone@example.org")

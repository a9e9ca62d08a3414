"""`ktbench validate`: exit codes 0 valid / 1 invalid / 2 unreadable, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_validation_support import PACKAGE_DIR, careplan_message, kt2_example, mutated
from ktbench.cli import app

runner = CliRunner()


def _write(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    path.write_bytes(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
    return path


def _run(*args: str):
    result = runner.invoke(app, ["validate", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_valid_file_exits_0(tmp_path: Path) -> None:
    result = _run(str(_write(tmp_path, "msg.json", careplan_message())))
    assert result.exit_code == 0, result.output
    assert "VALID (KT1 json)" in result.output


def test_invalid_file_exits_1_and_names_rule_and_location(tmp_path: Path) -> None:
    bad = mutated(careplan_message(), lambda m: m["entry"][1]["content"].pop("status"))
    result = _run(str(_write(tmp_path, "bad.json", bad)))
    assert result.exit_code == 1
    assert "error [kt1.cardinality] Bundle.entry[1].content.status" in result.output


@pytest.mark.parametrize(
    "content",
    [None, b"", b'{"resourceType": "Bundle", "entry": [', bytes(range(256)), b"<feed xmlns='http://www.w3.org/2005/Atom'><entry>"],
    ids=["missing", "empty", "truncated", "binary", "truncated-xml"],
)
def test_unreadable_input_exits_2(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_bytes(content)
    result = _run(str(path))
    assert result.exit_code == 2, result.output
    assert "input.unreadable" in result.output


def test_directory_argument_exits_2(tmp_path: Path) -> None:
    assert _run(str(tmp_path)).exit_code == 2


def test_worst_file_decides(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.json", careplan_message())
    bad = _write(tmp_path, "bad.json", mutated(careplan_message(), lambda m: m["entry"][1]["content"].pop("status")))
    assert _run(str(good), str(bad)).exit_code == 1
    assert _run(str(good), str(bad), str(tmp_path / "missing.json")).exit_code == 2


def test_json_output(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.json", mutated(careplan_message(), lambda m: m["entry"][1]["content"].pop("status")))
    result = _run("--format", "json", str(bad))
    assert result.exit_code == 1
    report = json.loads(result.output)
    [entry] = report["results"]
    assert entry["ok"] is False and entry["kt"] == 1 and entry["format"] == "json"
    issue = entry["operationOutcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].content.status"]
    assert issue["details"]["coding"][0]["code"] == "kt1.cardinality"


def test_force_kt_and_xml(tmp_path: Path) -> None:
    from ktbench.fhir.dstu1.xmlcodec import to_xml

    xml = _write(tmp_path, "msg.xml", to_xml(careplan_message()))
    result = _run("--kt", "1", str(xml))
    assert result.exit_code == 0 and "VALID (KT1 xml)" in result.output
    assert _run("--kt", "2", str(xml)).exit_code == 2  # KT2 XML is not supported
    assert _run("--kt", "3", str(xml)).exit_code == 2


def test_suppressions_option(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.json", mutated(careplan_message(), lambda m: m["entry"][1]["content"].update(status="running")))
    sup = tmp_path / "sup.toml"
    sup.write_text('version = 1\n[[suppression]]\nrule = "kt1.binding"\nlocation = "Bundle.entry[1].content.status"\nreason = "known"\n')
    result = _run("--suppressions", str(sup), str(bad))
    assert result.exit_code == 0, result.output
    assert "suppressed error: known" in result.output
    sup.write_text("version = 7\n")
    result = _run("--suppressions", str(sup), str(bad))
    assert result.exit_code == 2 and "unsupported or missing version" in result.output
    assert _run("--suppressions", str(tmp_path / "none.toml"), str(bad)).exit_code == 2


def test_package_option(tmp_path: Path) -> None:
    if not PACKAGE_DIR.is_dir():
        pytest.skip(f"KT2 package 0.8 not available at {PACKAGE_DIR}")
    task = mutated(kt2_example("task-minimaal"), lambda r: r["owner"].update(reference="RelatedPerson/r", type="RelatedPerson"))
    path = _write(tmp_path, "task.json", task)
    assert _run(str(path)).exit_code == 0
    result = _run("--package", str(PACKAGE_DIR), str(path))
    assert result.exit_code == 1 and "kt2.reference" in result.output
    assert _run("--package", str(tmp_path / "nope"), str(path)).exit_code == 2


def test_real_subprocess_exit_codes(tmp_path: Path) -> None:
    """The installed entry point behaves the same (no traceback on stderr)."""
    good = _write(tmp_path, "good.json", kt2_example("task-minimaal"))
    trunc = _write(tmp_path, "trunc.json", b'{"resourceType": "Task", "status":')
    cmd = [sys.executable, "-m", "ktbench.cli", "validate"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([*cmd, str(trunc)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "invalid JSON" in bad.stdout

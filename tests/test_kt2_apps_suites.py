"""The bench's simulated KT2 portal and module, as applications under test, pass their role suites unattended
(HTTP trigger driver, every scenario passed, well within the time budget of a role suite).  The embedded module
takes path B (the SMART app launch); a module that takes path A passes too, with the path-B scenarios skipped
as not its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktbench.cli.registry import build_registry
from ktbench.generations.kt2.apps import Kt2AppSettings, free_port
from ktbench.runner.suite_run import RunOptions, run_suite
from ktbench.targets.model import Target
from simulators.kt2.apps.host import running_app

OPTIONS = RunOptions(capture_output=True, quiet=True, timeout=300)
PATH_B_SCENARIOS = 3


@pytest.mark.parametrize(("suite", "fewest"), [("kt2-apps-portal", 16), ("kt2-apps-module", 18)])
def test_simulated_application_passes_its_role_suite(suite: str, fewest: int, tmp_path: Path) -> None:
    run = run_suite(build_registry(), suite, workdir=tmp_path, options=OPTIONS)
    counts = run.counts
    assert run.returncode == 0, run.output
    assert counts["passed"] == len(run.scenarios) >= fewest, counts
    assert run.wall_seconds < 30, f"{suite} took {run.wall_seconds:.1f} s"


def test_a_path_a_module_passes_with_path_b_skipped(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1/ktbench-alpha/fhir/r4"
    with running_app("module", fhir_base=base, client_id="module-under-test", launch_path="A") as app:
        settings = Kt2AppSettings(driver="http", trigger_url=app.trigger_url, server_port=port,
                                  client_id="module-under-test", jwks_url=app.jwks_url, traffic_timeout_seconds=2.0,
                                  launch_path="A")
        target = Target(name="path-a-module", kind="kt2-module", url=app.base_url, settings=settings)
        run = run_suite(build_registry(), "kt2-apps-module", target=target, workdir=tmp_path, options=OPTIONS)
    counts = run.counts
    assert counts["failed"] == counts["broken"] == 0, run.output[-3000:]
    assert counts["skipped"] == PATH_B_SCENARIOS, counts
    skipped = [s for s in run.scenarios if s.outcome == "skipped"]
    assert all("launch_path" in s.message for s in skipped), [s.message for s in skipped]
    assert counts["passed"] == len(run.scenarios) - PATH_B_SCENARIOS >= 15, counts

"""The KT1 role suites against the bench's simulated applications under test.

Each simulated application (simulators/kt1/apps) must pass its role suite unattended, the suite itself in
under 15 s; a driver that cannot be reached is a configuration verdict before any scenario runs.
"""

from __future__ import annotations

import pytest

from ktbench.cli.registry import build_registry
from ktbench.generations.kt1.apps import embedded_app
from ktbench.runner.suite_run import run_suite
from tests.test_kt1_apps_support import kt1_roles, options, outcome_lines

ROLES = ("portal", "module")


@pytest.mark.parametrize("role", ROLES)
def test_simulated_application_passes_its_role_suite(role, request, tmp_path_factory) -> None:
    run = run_suite(build_registry(), f"kt1-apps-{role}", workdir=tmp_path_factory.mktemp(f"pass-{role}"),
                    options=options(request, tmp_path_factory))
    assert run.returncode == 0, outcome_lines(run)
    assert run.counts["passed"] == len(run.scenarios) >= 10, outcome_lines(run)
    # the suite's own run time (pytest session in the summary); the subprocess start-up comes on top
    assert run.summary["duration_seconds"] < 15, f"the {role} suite took {run.summary['duration_seconds']} s"
    print(f"kt1-apps-{role}: {len(run.scenarios)} scenarios, suite {run.summary['duration_seconds']} s, "
          f"wall {run.wall_seconds:.1f} s")


def test_an_unreachable_driver_is_a_configuration_verdict(request, tmp_path_factory) -> None:
    from ktbench.generations.kt1.apps import free_port

    with embedded_app("kt1-module", kt1_roles("kt1-module")) as target:
        dead = f"http://127.0.0.1:{free_port()}/ktbench/trigger"
        broken = target.model_copy(update={"settings": target.settings.model_copy(update={"trigger_url": dead})})
        run = run_suite(build_registry(), "kt1-apps-module", target=broken,
                        workdir=tmp_path_factory.mktemp("dead-driver"), options=options(request, tmp_path_factory))
    assert run.preflight and not run.scenarios
    assert [p.kind for p in run.preflight] == ["configuration"]
    assert "could not be reached" in run.preflight[0].message

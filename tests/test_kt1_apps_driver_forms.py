"""The three driver forms and what the bench makes of an application's replies.

The command-hook form works as well as the HTTP trigger; the interactive form prints an instruction and a
machine-readable `ktbench-action:` line, which a script (standing in for the person) answers by carrying the
action out; an application that answers `done` but sends nothing makes its scenarios BROKEN (never failed: it
was not tested), one that answers `unsupported` makes them skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ktbench.cli.registry import build_registry
from ktbench.generations.kt1.apps import embedded_app
from ktbench.runner.suite_run import run_suite
from tests.scripted_person import run_interactively
from tests.test_kt1_apps_support import kt1_roles, options, outcome_lines

REPO = Path(__file__).resolve().parents[1]


HOOK_TAGS = {"portal": "@req:KT1-APP-PORTAL-CONFLICT-RECOVER or @req:KT1-APP-PORTAL-ACK-FAILED",
             "module": "@req:KT1-APP-MODULE-STATUS-VERSION or @req:KT1-APP-MODULE-SSO-TOKEN"}


@pytest.mark.parametrize("role, tags", sorted(HOOK_TAGS.items()))
def test_command_hook_driver_works(role, tags, request, tmp_path_factory) -> None:
    kind = f"kt1-{role}"
    with embedded_app(kind, kt1_roles(kind), driver="command") as target:
        assert target.settings.driver == "command"
        run = run_suite(build_registry(), f"kt1-apps-{role}", target=target,
                        workdir=tmp_path_factory.mktemp(f"hook-{role}"),
                        options=options(request, tmp_path_factory, validate="off", tags=tags))
    assert run.returncode == 0, outcome_lines(run)
    assert run.counts["passed"] == len(run.scenarios) >= 2, outcome_lines(run)


def test_an_application_that_sends_nothing_is_broken_not_failed(request, tmp_path_factory) -> None:
    with embedded_app("kt1-portal", kt1_roles("kt1-portal"), silent=True, traffic_timeout=0.5) as target:
        run = run_suite(build_registry(), "kt1-apps-portal", target=target,
                        workdir=tmp_path_factory.mktemp("silent"),
                        options=options(request, tmp_path_factory, validate="off", tags="@req:KT1-APP-PORTAL-PATIENT-CONTENT"))
    assert run.scenarios and all(s.outcome == "broken" for s in run.scenarios), outcome_lines(run)
    assert all("no traffic within" in s.message for s in run.scenarios), outcome_lines(run)
    assert run.returncode != 0


def test_an_unsupported_action_skips_the_scenario(request, tmp_path_factory) -> None:
    with embedded_app("kt1-portal", kt1_roles("kt1-portal"), unsupported=("launch-task",)) as target:
        run = run_suite(build_registry(), "kt1-apps-portal", target=target,
                        workdir=tmp_path_factory.mktemp("unsupported"),
                        options=options(request, tmp_path_factory, validate="off", tags="@req:KT1-APP-PORTAL-LAUNCH"))
    assert run.scenarios and all(s.outcome == "skipped" for s in run.scenarios), outcome_lines(run)
    assert all("launch-task" in s.message for s in run.scenarios), outcome_lines(run)




def test_interactive_mode_answered_by_a_script(tmp_path: Path) -> None:
    """`ktbench run` with driver = "interactive": a script reads each prompt and performs the action."""
    with embedded_app("kt1-portal", kt1_roles("kt1-portal")) as started:
        run = run_interactively(tmp_path, started, "kt1-apps-portal", "@req:KT1-APP-PORTAL-LAUNCH")
    assert run.code == 0, run.output[-3000:]
    assert run.answered == ["send-patient", "assign-activity", "launch-task"], run.output[-3000:]
    assert "Please make the KT1 portal act now" in run.output

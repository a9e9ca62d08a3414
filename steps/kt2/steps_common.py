"""Steps several KT2 features share: the scene (a patient, the module's activity, the portal's task) and generic
checks of the last answer."""

from __future__ import annotations

from pytest_bdd import given, parsers, then

from ktbench.core.requirements import ScenarioRequirements
from steps.kt2.checks import expect_status
from steps.kt2.world import Kt2World


@given("the portal has registered a patient")
def given_patient(kt2: Kt2World) -> None:
    kt2.patient()


@given("the module has published an activity with its launch endpoint")
def given_activity(kt2: Kt2World) -> None:
    kt2.activity()


@given("the portal has assigned the activity to the patient as a task")
def given_task(kt2: Kt2World) -> None:
    kt2.task()


@then(parsers.parse("the answer is {status:d}"))
def answer_is(kt2: Kt2World, kt_requirements: ScenarioRequirements, status: int) -> None:
    if kt2.last is None:
        from ktbench.core.errors import BenchError

        raise BenchError("no earlier step sent a request")
    expect_status(kt2.last, status, kt_requirements.only(), "the last request")

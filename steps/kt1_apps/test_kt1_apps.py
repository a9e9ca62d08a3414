"""The KT1.3 role suites: the scenarios of features/kt1/apps/*.feature (steps in steps_*.py, loaded by
conftest.py); the suite's default tags pick the scenarios of the application's role."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1" / "apps"))

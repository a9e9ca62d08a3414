"""The KT1.3 server suite: the scenarios of features/kt1/*.feature (steps in steps/kt1/steps_*.py, loaded by
conftest.py).  Only the folder's own files: features/kt1/apps/ holds the application-under-test suites."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(*sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "features" / "kt1").glob("*.feature")))

"""The KT2 server suite: the scenarios of features/kt2/*.feature (steps in steps/kt2/steps_*.py, loaded by
conftest.py).  Only the folder's own files: features/kt2/apps/ holds the application-under-test suites."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(*sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "features" / "kt2").glob("*.feature")))

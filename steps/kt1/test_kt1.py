"""The KT1.3 suite: every scenario of features/kt1/ (steps in steps/kt1/steps_*.py, loaded by conftest.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1"))

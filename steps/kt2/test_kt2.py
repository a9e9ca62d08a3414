"""The KT2 suite: every scenario of features/kt2/ (steps in steps/kt2/steps_*.py, loaded by conftest.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt2"))

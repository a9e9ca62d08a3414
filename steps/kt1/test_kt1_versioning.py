"""KT1.3 scenarios: Resource versions and 409 conflicts (KT1.3.5 optimistic locking) (features/kt1/versioning.feature; steps in steps/kt1/steps_*.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1" / "versioning.feature"))

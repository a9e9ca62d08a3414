"""KT1.3 scenarios: Single sign-on: launching a module for a patient (SMART on FHIR, KT1 flavour) (features/kt1/sso.feature; steps in steps/kt1/steps_*.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1" / "sso.feature"))

"""The KT2 application-under-test scenarios (features/kt2/apps; steps loaded by conftest.py).  The suite's
default tags pick the role: @role:portal for kt2-apps-portal, @role:module for kt2-apps-module."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt2" / "apps"))

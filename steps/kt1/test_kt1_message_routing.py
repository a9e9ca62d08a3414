"""KT1.3 scenarios: Every message event reaches its subscribers intact, and nobody else (features/kt1/message_routing.feature; steps in steps/kt1/steps_*.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1" / "message_routing.feature"))

"""KT1.3 scenarios: Webhook notification of new messages (features/kt1/webhook.feature; steps in steps/kt1/steps_*.py)."""

from __future__ import annotations

from pathlib import Path

from pytest_bdd import scenarios

scenarios(str(Path(__file__).resolve().parents[2] / "features" / "kt1" / "webhook.feature"))

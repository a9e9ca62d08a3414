"""Steps of HTI launch, SMART app launch and introspection (features/kt2/launch.feature)."""

from __future__ import annotations

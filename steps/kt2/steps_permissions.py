"""Steps of permissions, resource-origin, validation and referential integrity (features/kt2/permissions.feature, validation.feature)."""

from __future__ import annotations

"""Steps of connection approval and instance statuses (features/kt2/connection_approval.feature)."""

from __future__ import annotations

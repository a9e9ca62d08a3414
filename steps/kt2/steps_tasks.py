"""Steps of Task lifecycle, subscriptions, AuditEvents and trace headers (features/kt2/tasks.feature, subscriptions.feature, audit.feature)."""

from __future__ import annotations

"""Steps of FHIR REST, search and versioning (features/kt2/rest.feature, search.feature, versioning.feature)."""

from __future__ import annotations

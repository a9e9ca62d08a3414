"""Steps of the KT1 smoke scenarios: the server's Conformance statement (features/kt1/smoke.feature).

Only the KT1-specific checks live here; requests and generic checks come from steps.common.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pytest_bdd import parsers, then

from ktbench.fhir.dstu1.constants import OAUTH_URI_FAMILIES
from steps.common import MISSING, ScenarioContext, json_path

# Real KT1 servers and connectors use the smartplatforms.org family (kt1-protocol.md §3, step 2).
SMART_OAUTH_URIS = OAUTH_URI_FAMILIES[0]


@then(parsers.parse('the Conformance statement advertises the OAuth "{kind}" URI'))
def _(kind: str, kt_context: ScenarioContext) -> None:
    extensions = json_path(kt_context.json(), "rest[0].security.extension")
    if extensions is MISSING or not isinstance(extensions, list):
        raise kt_context.fail("Conformance has no rest[0].security.extension list (rest must be an array)")
    wanted = f"{SMART_OAUTH_URIS}#{kind}"
    values = [e.get("valueUri") for e in extensions if isinstance(e, dict) and e.get("url") == wanted]
    if not values:
        raise kt_context.fail(f"rest[0].security.extension has no {wanted!r}")
    uri = values[0]
    parts = urlsplit(uri) if isinstance(uri, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise kt_context.fail(f"{wanted} valueUri must be an absolute http(s) URL, got {uri!r}")

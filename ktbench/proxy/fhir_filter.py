"""Which flows are FHIR traffic: the only flows the bench validates.

A proxy in front of a Koppeltaal server also sees OAuth token calls, SMART
discovery documents, launch redirects and maybe a web UI.  Validating those
against FHIR profiles would bury the real findings under noise, so this addon
classifies every finished flow once and records the verdict in
`flow.metadata` (metadata travels with the flow into flow files, so a recorded
session shows why a flow was or was not validated).  Classification only
reads the flow; the bytes on the wire are never touched.

Rules, in order:

1. a user flow-filter expression (mitmproxy syntax), if given, must match;
2. OAuth / SMART / JWKS endpoints are never FHIR (their JSON is not a resource);
3. a path under a FHIR base (a ``/fhir`` segment, e.g. ``/FHIR/Koppeltaal/``
   for KT1.3 or ``/fhir/r4/`` for KT2) makes it FHIR;
4. a FHIR media type on either side (``application/fhir+json``,
   ``application/json+fhir``, ``application/xml+fhir``) makes it FHIR;
5. otherwise a JSON/XML body that looks like a resource (``"resourceType"``,
   the FHIR or Atom namespace near the start) makes it FHIR.
"""

from __future__ import annotations

import re

from mitmproxy import flowfilter, http

FHIR_KEY = "ktbench.fhir"
WHY_KEY = "ktbench.fhir.why"

_EXCLUDED_PATH = re.compile(
    r"/(oauth2?|auth|openid-connect|protocol/openid-connect)(/|$)|/\.well-known/|/jwks(\.json)?$",
    re.IGNORECASE,
)
_FHIR_PATH = re.compile(r"/fhir(/|$)", re.IGNORECASE)
_SNIFF_BYTES = 512
_SNIFF_MARKERS = (b'"resourceType"', b"http://hl7.org/fhir", b"http://www.w3.org/2005/Atom")


def _content_type(message: http.Message | None) -> str:
    if message is None:
        return ""
    return message.headers.get("content-type", "").lower()


def is_fhir_media_type(content_type: str) -> bool:
    return "fhir" in content_type


def is_structured_media_type(content_type: str) -> bool:
    return "json" in content_type or "xml" in content_type


def _looks_like_resource(message: http.Message | None) -> bool:
    if message is None or message.headers.get("content-encoding"):
        return False  # never decompress on the event loop just to sniff
    raw = message.raw_content
    if not raw:
        return False
    head = raw[:_SNIFF_BYTES]
    return any(marker in head for marker in _SNIFF_MARKERS)


def is_fhir(flow: http.HTTPFlow) -> bool:
    """The classification recorded by `FhirTrafficFilter` (False if the flow was never classified)."""
    return bool(flow.metadata.get(FHIR_KEY, False))


class FhirTrafficFilter:
    """Marks finished HTTP flows as FHIR or not (see module docstring for the rules)."""

    def __init__(self, expression: str | None = None) -> None:
        self._filter = flowfilter.parse(expression) if expression else None

    def classify(self, flow: http.HTTPFlow) -> tuple[bool, str]:
        if self._filter is not None and not self._filter(flow):
            return False, "excluded by the filter expression"
        path = flow.request.path.split("?", 1)[0]
        if _EXCLUDED_PATH.search(path):
            return False, "OAuth/SMART endpoint"
        if _FHIR_PATH.search(path):  # checked before the (slower) header lookups; both mean FHIR
            return True, "path under a FHIR base"
        request_type = _content_type(flow.request)
        response_type = _content_type(flow.response)
        if is_fhir_media_type(request_type) or is_fhir_media_type(response_type):
            return True, "FHIR media type"
        for message, ctype in ((flow.request, request_type), (flow.response, response_type)):
            if (not ctype or is_structured_media_type(ctype)) and _looks_like_resource(message):
                return True, "body looks like a FHIR resource"
        return False, "not FHIR"

    def _mark(self, flow: http.HTTPFlow) -> None:
        if FHIR_KEY in flow.metadata:
            return  # an `error` after a `response`: keep the first verdict
        verdict, why = self.classify(flow)
        flow.metadata[FHIR_KEY] = verdict
        flow.metadata[WHY_KEY] = why

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._mark(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._mark(flow)

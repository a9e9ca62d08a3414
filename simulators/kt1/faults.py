"""The fault catalogue: realistic defects the KT1 reference server can be told to have.

`ktbench serve kt1 --fault NAME` switches one on.  The bench's own tests run the KT1 suite against the
server with each fault and require a failing scenario that names one of the requirements the fault
`breaks`: a suite that cannot see a defect a real server could ship is not worth running.
"""

from __future__ import annotations

from simulators.common.faults import Fault, FaultCatalogue, UnknownFault

__all__ = ["FAULTS", "UnknownFault", "VALIDATION_ONLY_FAULTS", "check_faults"]

FAULTS = FaultCatalogue([
    Fault("skip-version-check",
          "Mailbox accepts a stale or missing focal version instead of answering 409.",
          breaks=('KT1-VER-STALE-FOCAL', 'KT1-VER-NO-FOCAL-VERSION')),
    Fault("wrong-conflict-text",
          "409 conflicts carry a different OperationOutcome text than the standard wording.",
          breaks=('KT1-VER-OUTCOME',)),
    Fault("versions-not-increasing",
          "Minted resource versions go down instead of up.",
          breaks=('KT1-VER-INCREASING',)),
    Fault("stale-non-focal-accepted",
          "A non-focal resource sent with a stale version is accepted.",
          breaks=('KT1-VER-STALE-NON-FOCAL',)),
    Fault("no-route-to-sender",
          "The sender does not get its own copy of a message it is subscribed to.",
          breaks=('KT1-ROUTE-SENDER',)),
    Fault("route-to-unsubscribed",
          "Messages are queued for applications not subscribed to the event.",
          breaks=('KT1-ROUTE-UNSUBSCRIBED',)),
    Fault("cross-domain-leak",
          "Messages are also queued for subscribed applications of other domains.",
          breaks=('KT1-ROUTE-DOMAIN', 'KT1-SEC-CROSS-DOMAIN-CLAIM')),
    Fault("double-claim",
          "GetNextNewAndClaim leaves the message New, so it is handed out again.",
          breaks=('KT1-CLAIM-ONCE',)),
    Fault("empty-claim-without-entry",
          "An empty claim answer has no `entry` key.",
          breaks=('KT1-CLAIM-EMPTY',)),
    Fault("claim-next-link",
          "Claim answers carry a `next` paging link.",
          breaks=('KT1-CLAIM-NO-NEXT',)),
    Fault("reject-historyless-ack",
          "A ProcessingStatus PUT on the history-less MessageHeader URL is refused.",
          breaks=('KT1-ACK-HISTORYLESS',)),
    Fault("claim-never-expires",
          "Claimed messages never return to New.",
          breaks=('KT1-CLAIM-EXPIRY',)),
    Fault("no-max-retries",
          "Messages never become MaximumRetriesExceeded; expired claims go back to New forever.",
          breaks=('KT1-CLAIM-MAX-RETRIES',)),
    Fault("no-replaced-by-new-version",
          "Older unprocessed messages for the same focal resource are not superseded.",
          breaks=('KT1-MSG-REPLACED',)),
    Fault("wrong-content-type",
          "JSON answers are labelled application/fhir+json instead of application/json.",
          breaks=('KT1-META-JSON-CONTENT-TYPE',)),
    Fault("no-content-location",
          "ActivityDefinition create/update answers lack Content-Location.",
          breaks=('KT1-AD-PUBLISH',)),
    Fault("archived-activities-listed",
          "Archived ActivityDefinitions are listed without includearchived=yes.",
          breaks=('KT1-AD-ARCHIVE',)),
    Fault("launch-without-launch-id",
          "The Launch redirect lacks application_id and launch_id.",
          breaks=('KT1-SSO-LAUNCH-IDS',)),
    Fault("expires-in-string",
          "The token answer gives expires_in as a string.",
          breaks=('KT1-SSO-TOKEN',)),
    Fault("refresh-token-reusable",
          "Refreshing does not revoke the old access and refresh tokens.",
          breaks=('KT1-SSO-REFRESH',)),
    Fault("code-reusable",
          "Authorization codes can be exchanged more than once.",
          breaks=('KT1-SSO-CODE-SINGLE-USE',)),
    Fault("auth-not-checked",
          "Basic passwords are not checked.",
          breaks=('KT1-SEC-BASIC',)),
    Fault("bearer-any-patient",
          "A Bearer token reads messages of any patient.",
          breaks=('KT1-SSO-BEARER-PATIENT',)),
    Fault("wrong-domain-accepted",
          "A bundle whose Domain# category names another domain is accepted.",
          breaks=('KT1-SEC-WRONG-DOMAIN',)),
    Fault("paging-ignored",
          "Summary searches ignore _count and never page.",
          breaks=('KT1-SEARCH-PAGING',)),
    Fault("status-filter-ignored",
          "The ProcessingStatus search filter is ignored.",
          breaks=('KT1-SEARCH-STATUS-FILTER',)),
    Fault("reply-wrong-identifier",
          "The Mailbox reply's response.identifier does not echo the request identifier.",
          breaks=('KT1-MSG-REPLY-ECHO',)),
    Fault("ack-overwrites-header",
          "A ProcessingStatus PUT also overwrites other MessageHeader fields.",
          breaks=('KT1-ACK-ONLY-STATUS',)),
    Fault("no-webhook",
          "Webhook notifications are never sent.",
          breaks=('KT1-HOOK-NOTIFY',)),
    Fault("xml-ignored",
          "Requests for XML are answered with JSON.",
          breaks=('KT1-FMT-XML', 'KT1-FMT-XML-CLAIM', 'KT1-FMT-XML-MAILBOX', 'KT1-FMT-XML-SAME')),
    Fault("minted-links-internal-host",
          "Without --public-base, minted links (bundle links, MessageHeader self links, Content-Location, the launch iss) name the server's internal address instead of the one the client used.",
          breaks=('KT1-URL-MINTED', 'KT1-SSO-LAUNCH')),
    Fault("errors-as-text",
          "Error answers (4xx) are plain text instead of a JSON OperationOutcome.",
          breaks=('KT1-META-JSON-CONTENT-TYPE',)),
    Fault("last-changed-not-instant",
          "Delivered MessageHeaders carry ProcessingStatusStatusLastChanged in a local date format (2024/05/01 10:00:00) instead of a FHIR instant.",
          breaks=('KT1-PROFILE-EXCHANGE',), validation_only=True),
])

# Faults no step asserts on: only the live profile validation of the exchanged messages sees them, so the
# suite kills them with a KT1-PROFILE-EXCHANGE failure, and a run with `--fail-on never` lets them pass
# (tests/test_engine_validation_policy.py).
VALIDATION_ONLY_FAULTS = FAULTS.validation_only


def check_faults(names: list[str] | tuple[str, ...]) -> frozenset[str]:
    return FAULTS.check(names)

"""The fault catalogue: realistic defects the reference server can be told to have.

`ktbench serve kt1 --fault NAME` switches one on.  The bench's own tests run
the KT1 suite against the server with each fault and require at least one
scenario to fail: a suite that cannot see a defect a real server could ship
is not worth running.  Each entry says which rule it breaks.
"""

from __future__ import annotations

FAULTS: dict[str, str] = {
    "skip-version-check": "Mailbox accepts a stale or missing focal version instead of answering 409.",
    "wrong-conflict-text": "409 conflicts carry a different OperationOutcome text than the standard wording.",
    "versions-not-increasing": "Minted resource versions go down instead of up.",
    "stale-non-focal-accepted": "A non-focal resource sent with a stale version is accepted.",
    "no-route-to-sender": "The sender does not get its own copy of a message it is subscribed to.",
    "route-to-unsubscribed": "Messages are queued for applications not subscribed to the event.",
    "cross-domain-leak": "Messages are also queued for subscribed applications of other domains.",
    "double-claim": "GetNextNewAndClaim leaves the message New, so it is handed out again.",
    "empty-claim-without-entry": "An empty claim answer has no `entry` key.",
    "claim-next-link": "Claim answers carry a `next` paging link.",
    "reject-historyless-ack": "A ProcessingStatus PUT on the history-less MessageHeader URL is refused.",
    "claim-never-expires": "Claimed messages never return to New.",
    "no-max-retries": "Messages never become MaximumRetriesExceeded; expired claims go back to New forever.",
    "no-replaced-by-new-version": "Older unprocessed messages for the same focal resource are not superseded.",
    "wrong-content-type": "JSON answers are labelled application/fhir+json instead of application/json.",
    "no-content-location": "ActivityDefinition create/update answers lack Content-Location.",
    "archived-activities-listed": "Archived ActivityDefinitions are listed without includearchived=yes.",
    "launch-without-launch-id": "The Launch redirect lacks application_id and launch_id.",
    "expires-in-string": "The token answer gives expires_in as a string.",
    "refresh-token-reusable": "Refreshing does not revoke the old access and refresh tokens.",
    "code-reusable": "Authorization codes can be exchanged more than once.",
    "auth-not-checked": "Basic passwords are not checked.",
    "bearer-any-patient": "A Bearer token reads messages of any patient.",
    "wrong-domain-accepted": "A bundle whose Domain# category names another domain is accepted.",
    "paging-ignored": "Summary searches ignore _count and never page.",
    "status-filter-ignored": "The ProcessingStatus search filter is ignored.",
    "reply-wrong-identifier": "The Mailbox reply's response.identifier does not echo the request identifier.",
    "ack-overwrites-header": "A ProcessingStatus PUT also overwrites other MessageHeader fields.",
    "no-webhook": "Webhook notifications are never sent.",
    "xml-ignored": "Requests for XML are answered with JSON.",
    # Only the profile validation of the exchanged messages sees this one: no step reads the time stamp.
    "last-changed-not-instant": "Delivered MessageHeaders carry ProcessingStatusStatusLastChanged in a local "
                                "date format (2024/05/01 10:00:00) instead of a FHIR instant.",
}

# Faults no step asserts on: only the live profile validation of the exchanged messages sees them, so the
# suite kills them with a KT1-PROFILE-EXCHANGE failure (tests/test_suite_kill_matrix.py), and a run with
# `--fail-on never` lets them pass (tests/test_engine_validation_policy.py).
VALIDATION_ONLY_FAULTS = frozenset({"last-changed-not-instant"})


class UnknownFault(ValueError):
    pass


def check_faults(names: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise UnknownFault(f"unknown fault(s) {unknown}; see --list-faults")
    return frozenset(names)

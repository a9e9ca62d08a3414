"""Realistic defects of the simulated KT1 portal and eHealth module under test, and what each one breaks.

The role suites (features/kt1/apps) prove their power by failing against these: a vendor's application with
one of these bugs must not pass.  Every fault names the requirements of features/kt1/apps/requirements.toml
it violates; the kill matrix (tests/test_kt1_apps_kill_*.py) only counts a failure naming one of them.
"""

from __future__ import annotations

from simulators.common.faults import Fault, FaultCatalogue

P = "KT1-APP-PORTAL-"
M = "KT1-APP-MODULE-"

PORTAL_FAULTS = FaultCatalogue([
    Fault("portal-patient-wrong-identifier", "sends the patient with the internal record number instead of the "
          "business identifier it was given", (P + "PATIENT-CONTENT",)),
    Fault("portal-patient-no-patient-extension", "leaves the Patient extension out of the MessageHeader",
          (P + "PATIENT-CONTENT",)),
    Fault("portal-update-without-version", "sends a change of a known patient without the version the server "
          "minted", (P + "PATIENT-VERSION",)),
    Fault("portal-stale-version", "keeps quoting the version of its first send (never learns the minted one)",
          (P + "PATIENT-VERSION", P + "CAREPLAN-VERSION")),
    Fault("portal-ignores-409", "gives up after a 409 instead of taking the latest version and resending",
          (P + "CONFLICT-RECOVER",)),
    Fault("portal-retries-same-version", "after a 409 resends the same stale version", (P + "CONFLICT-RECOVER",)),
    Fault("portal-careplan-wrong-definition", "puts its own activity code in the care plan instead of the "
          "module's ActivityDefinition identifier", (P + "CAREPLAN-CONTENT",)),
    Fault("portal-careplan-without-patient", "sends the care plan without the Patient resource it is about",
          (P + "CAREPLAN-CONTENT",)),
    Fault("portal-careplan-new-url", "mints a new CarePlan URL for every change instead of updating its care plan",
          (P + "CAREPLAN-VERSION",)),
    Fault("portal-launch-own-client-id", "launches with its own application id as client_id",
          (P + "LAUNCH",)),
    Fault("portal-launch-without-resource", "launches without naming the care plan activity (resource)",
          (P + "LAUNCH",)),
    Fault("portal-search-instead-of-claim", "reads its mailbox with a plain search and acks without claiming",
          (P + "CLAIM",)),
    Fault("portal-no-ack", "claims its messages but never acks them", (P + "ACK-SUCCESS",)),
    Fault("portal-acks-success-on-bad", "acks Success on a status update about an activity it never assigned",
          (P + "ACK-FAILED",)),
    Fault("portal-failed-without-exception", "acks bad content Failed without saying why (no exception)",
          (P + "ACK-FAILED",)),
])

MODULE_FAULTS = FaultCatalogue([
    Fault("module-search-instead-of-claim", "reads its mailbox with a plain search and acks without claiming",
          (M + "CLAIM",)),
    Fault("module-no-ack", "claims its messages but never acks them", (M + "ACK-SUCCESS",)),
    Fault("module-ack-drops-identifier", "acks with a bare ProcessingStatus header, dropping the message's "
          "identifier and event", (M + "ACK-SUCCESS",)),
    Fault("module-acks-success-on-bad", "acks Success on a care plan whose activity it does not offer",
          (M + "ACK-FAILED",)),
    Fault("module-failed-without-exception", "acks bad content Failed without saying why (no exception)",
          (M + "ACK-FAILED",)),
    Fault("module-status-wrong-activity", "reports the status under its own internal activity number",
          (M + "STATUS-REPORT",)),
    Fault("module-status-without-version", "reports every status change without the version the server minted",
          (M + "STATUS-VERSION",)),
    Fault("module-status-new-resource", "creates a new CarePlanActivityStatus resource for every report",
          (M + "STATUS-VERSION",)),
    Fault("module-sso-no-launch-scope", "asks Authorize without the launch:<id> scope", (M + "SSO-AUTHORIZE",)),
    Fault("module-sso-password-as-secret", "authenticates at Token with its Basic password instead of its "
          "OAuth client secret", (M + "SSO-TOKEN",)),
    Fault("module-sso-accepts-reused-code", "logs the user in again when a used authorization code comes back",
          (M + "SSO-REUSED-CODE",)),
    Fault("module-sso-trusts-any-iss", "follows a launch from whatever issuer the link names",
          (M + "SSO-ISS",)),
])


def catalogue_for(role: str) -> FaultCatalogue:
    return PORTAL_FAULTS if role == "portal" else MODULE_FAULTS

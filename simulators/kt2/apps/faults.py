"""Fault catalogues of the simulated KT2 applications under test (portal and eHealth module).

Each fault is a realistic defect of a vendor's application and names the requirements of
features/kt2/apps/requirements.toml it breaks; the kill matrix (tests/test_kt2_apps_kill.py) shows the role
suite catches every one.
"""

from __future__ import annotations

from simulators.common.faults import Fault, FaultCatalogue

P = "KT2-APP-PORTAL-"
M = "KT2-APP-MODULE-"

PORTAL_FAULTS = FaultCatalogue([
    Fault("assertion-wrong-aud", "Client assertions name the FHIR base as aud instead of the token endpoint.",
          (P + "ASSERTION-CLAIMS",)),
    Fault("assertion-no-kid", "Client assertions carry no kid header.", (P + "ASSERTION-KID",)),
    Fault("assertion-hs256", "Client assertions are HMAC-signed (HS256) with a shared secret.",
          (P + "ASSERTION-ALG",)),
    Fault("assertion-long-lifetime", "Client assertions are valid for an hour.", (P + "ASSERTION-LIFETIME",)),
    Fault("assertion-reused-jti", "Every client assertion carries the same jti.", (P + "ASSERTION-JTI",)),
    Fault("jwks-private-keys", "The published JWKS carries the private key members.", (P + "JWKS-PUBLIC",)),
    Fault("no-if-match", "Updates are PUT without If-Match.", (P + "IF-MATCH",)),
    Fault("task-update-without-if-match", "Task updates (a status change by the portal) are PUT without If-Match; "
                                          "patient updates still carry it.", (P + "IF-MATCH",)),
    Fault("if-match-star", "Updates are PUT with If-Match: * instead of the version read.", (P + "IF-MATCH",)),
    Fault("sets-resource-origin", "Created resources carry a resource-origin extension the portal set itself.",
          (P + "NO-RESOURCE-ORIGIN",)),
    Fault("no-meta-profile", "Created resources carry no meta.profile.", (P + "META-PROFILE",)),
    Fault("task-instantiates-canonical", "Tasks point at the activity with instantiatesCanonical instead of the "
                                         "KT2 instantiates extension.", (P + "TASK-INSTANTIATES",)),
    Fault("hti-wrong-aud", "HTI launch tokens name the module's bare client id as aud, not Device/<id>.",
          (P + "HTI-CLAIMS",)),
    Fault("hti-long-lifetime", "HTI launch tokens are valid for an hour.", (P + "HTI-CLAIMS",)),
    Fault("hti-foreign-key", "HTI launch tokens are signed with a key the portal does not publish.",
          (P + "HTI-SIGNED",)),
    Fault("launch-as-get", "The launch goes to the module as a GET with query parameters, not a form POST.",
          (P + "LAUNCH-FORM",)),
    Fault("subscription-with-payload", "Subscriptions ask for a payload (channel.payload) KT2 forbids.",
          (P + "SUBSCRIPTION",)),
    Fault("no-receive-audit", "A notification is processed without the receive AuditEvent.",
          (P + "RECEIVE-AUDIT",)),
    Fault("receive-audit-without-correlation", "The receive AuditEvent and the search of the criteria that "
                                               "follows carry no correlation with the notification's X-Request-Id.",
          (P + "RECEIVE-AUDIT",)),
])

MODULE_FAULTS = FaultCatalogue([
    Fault("ad-without-endpoint", "The ActivityDefinition is published without the KT2 Endpoint extension.",
          (M + "AD-ENDPOINT",)),
    Fault("no-meta-profile", "Created resources carry no meta.profile.", (M + "META-PROFILE",)),
    Fault("sets-resource-origin", "Created resources carry a resource-origin extension the module set itself.",
          (M + "NO-RESOURCE-ORIGIN",)),
    Fault("assertion-long-lifetime", "Client assertions are valid for an hour.", (M + "ASSERTION",)),
    Fault("assertion-reused-jti", "Every client assertion carries the same jti.", (M + "ASSERTION",)),
    Fault("jwks-private-keys", "The published JWKS carries the private key members.", (M + "JWKS-PUBLIC",)),
    Fault("skips-introspection", "Launches are accepted on the token's unverified claims (no introspection).",
          (M + "LAUNCH-VERIFY", M + "LAUNCH-SIGNATURE")),
    Fault("ignores-inactive", "The introspection answer is not looked at: active false is accepted.",
          (M + "LAUNCH-REPLAY", M + "LAUNCH-EXPIRED", M + "LAUNCH-AUD", M + "LAUNCH-SIGNATURE")),
    Fault("accepts-replayed-launch", "A launch token seen before reopens its old session without introspection.",
          (M + "LAUNCH-REPLAY",)),
    Fault("launch-token-as-bearer", "The Task is read with the launch token as Bearer instead of the module's own "
                                    "access token.", (M + "OWN-TOKEN",)),
    Fault("no-if-match", "Task status updates are PUT without If-Match.", (M + "TASK-IF-MATCH",)),
    Fault("stale-if-match", "Task status updates send the version seen at launch, not the current one.",
          (M + "TASK-IF-MATCH",)),
    Fault("no-launch-audit", "Accepted launches are not recorded: no Application Start AuditEvent.",
          (M + "LAUNCH-AUDIT",)),
    Fault("launch-audit-wrong-trace", "The launch AuditEvent's trace-id is a fresh id, not the HTI jti.",
          (M + "LAUNCH-AUDIT",)),
    # path B only (PATH_B_FAULTS)
    Fault("pkce-plain", "Path B: authorize carries code_challenge_method plain (the verifier itself as challenge).",
          (M + "PATH-B",)),
    Fault("wrong-scope", "Path B: authorize asks for scope 'launch openid fhirUser patient/*.read', not the fixed "
                         "scope.", (M + "PATH-B",)),
    Fault("noop-on-store", "Path B: the Task is read with the NOOP access token of the code exchange.",
          (M + "OWN-TOKEN",)),
    Fault("drops-task-fields", "Task status updates PUT a Task rebuilt from id and status only.",
          (M + "TASK-STATUS",)),
    Fault("no-receive-audit", "A notification is processed without the receive AuditEvent.",
          (M + "RECEIVE-AUDIT",)),
    Fault("receive-audit-without-correlation", "The receive AuditEvent and the search of the criteria that "
                                               "follows carry no correlation with the notification's X-Request-Id.",
          (M + "RECEIVE-AUDIT",)),
])

PATH_B_FAULTS = frozenset({"pkce-plain", "wrong-scope", "noop-on-store"})
"""Module faults that only exist on path B (the SMART app launch)."""
PATH_A_FAULTS = frozenset({"skips-introspection", "ignores-inactive", "launch-token-as-bearer"})
"""Module faults that only exist on path A (introspection): with one of them the embedded module takes path A."""

"""The fault catalogue of the KT2 voorziening: realistic defects it can be told to have (`--fault NAME`).

Each fault is one small switch (`ctx.fault(name)`) at the place where a real server would get it wrong,
and declares the requirement ids (simulators/kt2/README.md) it breaks; a suite kills a fault only with a
failure on one of those.  Keep this a plain list: the domain admin appends its own entries.
"""

from __future__ import annotations

from simulators.common.faults import Fault, FaultCatalogue

FAULTS = FaultCatalogue([
    # versioning
    Fault("if-match-not-enforced", "PUT without If-Match is accepted instead of 412.", ("KT2-VER-IF-MATCH-REQUIRED",)),
    Fault("stale-version-accepted", "PUT/DELETE with a stale If-Match overwrites instead of 409.",
          ("KT2-VER-STALE", "KT2-VER-DELETE-IF-MATCH", "KT2-VER-CONCURRENT")),
    Fault("etag-missing", "Create, read and update answers carry no ETag header.", ("KT2-VER-ETAG",)),
    # client assertions and tokens
    Fault("jti-replay-accepted", "A client assertion can be replayed (its jti is not remembered).",
          ("KT2-TOKEN-JTI-REPLAY",)),
    Fault("exp-not-checked", "Expired (and too long-lived) client assertions and launch tokens are accepted.",
          ("KT2-TOKEN-EXP", "KT2-LAUNCH-HTI-EXP")),
    Fault("aud-not-checked", "A client assertion for another audience (not the token URL) is accepted.",
          ("KT2-TOKEN-AUD",)),
    Fault("hs256-accepted", "An HS256 assertion is accepted, HMAC-keyed with the client's public key "
                            "(the classic algorithm confusion).", ("KT2-TOKEN-ASYMMETRIC", "KT2-TOKEN-ALG")),
    Fault("unapproved-client-token", "An instance in maintenance or closed still gets tokens.",
          ("KT2-TOKEN-APPROVED",)),
    Fault("role-scope-ignored", "Every client gets scope system/*.cruds whatever its role.",
          ("KT2-TOKEN-SCOPE-ROLE", "KT2-PERM-ROLE")),
    Fault("kid-refetch-missing", "A JWKS is never refetched on an unknown kid: rotated keys are refused until the "
                                 "cache expires.", ("KT2-TOKEN-KEY-ROTATION",)),
    Fault("access-token-never-expires", "Expired access tokens still open the FHIR store.", ("KT2-AT-EXPIRED",)),
    Fault("noop-token-accepted", "The launch access_token 'NOOP' reads the FHIR store.", ("KT2-AT-NOOP",)),
    Fault("cross-domain-read", "An access token of one domain is accepted at another domain's FHIR base.",
          ("KT2-AT-DOMAIN", "KT2-PERM-DOMAIN")),
    # permissions and resource-origin
    Fault("narrowing-missing", "Searches are not narrowed to the resource-origins the scope allows.",
          ("KT2-PERM-NARROWING",)),
    Fault("resource-origin-not-injected", "Created resources get no resource-origin extension.", ("KT2-RO-INJECT",)),
    Fault("resource-origin-overwritable", "An update may change the resource-origin extension.", ("KT2-RO-CHANGE",)),
    Fault("resource-origin-client-set-accepted", "A resource-origin set by the client on create is kept.",
          ("KT2-RO-CLIENT-SET",)),
    # launch and introspection
    Fault("pkce-not-checked", "The code exchange ignores code_verifier.", ("KT2-LAUNCH-PKCE",)),
    Fault("hti-aud-not-checked", "A launch token addressed to another module is accepted.", ("KT2-LAUNCH-HTI-AUD",)),
    Fault("identity-match-skipped", "After the IdP login the user's identifier is not compared with the HTI sub.",
          ("KT2-LAUNCH-IDENTITY",)),
    Fault("state-not-returned", "The final launch redirect lacks state.", ("KT2-LAUNCH-STATE",)),
    Fault("redirect-uri-not-checked", "authorize accepts any redirect_uri.", ("KT2-LAUNCH-REDIRECT",)),
    Fault("introspection-replay-active", "An HTI token stays active however often it is introspected.",
          ("KT2-INTRO-INACTIVE", "KT2-LAUNCH-HTI-JTI")),
    Fault("jwks-private-parts", "The domain JWKS publishes the private key members.", ("KT2-DISC-JWKS",)),
    # subscriptions
    Fault("http-subscription-allowed", "Subscriptions with an http:// endpoint are accepted.", ("KT2-SUB-HTTPS",)),
    Fault("notification-without-trace-headers", "Notifications carry no X-Request-Id/X-Correlation-Id/X-Trace-Id.",
          ("KT2-SUB-TRACE", "KT2-TRACE-CORRELATION")),
    Fault("subscription-narrowing-missing", "Notifications are sent for resources the subscriber may not read.",
          ("KT2-SUB-NARROWING",)),
    # audit
    Fault("audit-event-missing", "No AuditEvents are written.", ("KT2-AUDIT-REST", "KT2-AUDIT-AUTH",
                                                                 "KT2-AUDIT-SEARCH")),
    Fault("audit-event-mutable", "AuditEvents can be updated and deleted.", ("KT2-AUDIT-IMMUTABLE",)),
    # validation and integrity
    Fault("validation-error-500", "Invalid resources are answered with 500 instead of 422.",
          ("KT2-VAL-PROFILE", "KT2-REST-OUTCOME")),
    Fault("delete-ignores-references", "A resource still referenced can be deleted.", ("KT2-RI-DELETE",)),
    Fault("dangling-reference-accepted", "References to resources that do not exist are stored.", ("KT2-RI-WRITE",)),
    Fault("subtask-without-partof-accepted", "A Task with code 'view' and no partOf is accepted.", ("KT2-VAL-SUBTASK",)),
    # REST
    Fault("relative-next-links", "Paging next links are relative instead of absolute.", ("KT2-SEARCH-PAGING",)),
    Fault("search-total-missing", "searchset Bundles have no total.", ("KT2-SEARCH-PAGING",)),
    Fault("deleted-read-404", "Reading a deleted resource answers 404 instead of 410.", ("KT2-REST-GONE",)),
    Fault("history-drops-deletes", "_history leaves out DELETE entries.", ("KT2-REST-HISTORY",)),
    Fault("capability-without-oauth-uris", "The CapabilityStatement lacks the SMART oauth-uris extension.",
          ("KT2-DISC-OAUTH-URIS",)),
    # --- domain admin (simulators/kt2/admin): accounts, connection requests, instance statuses -------------
    Fault("login-any-password", "The domain admin accepts any password for a known username.",
          ("KT2-ADMIN-LOGIN",)),
    Fault("no-lockout", "Admin accounts are never blocked, however many wrong passwords are tried.",
          ("KT2-ADMIN-LOCKOUT",)),
    Fault("request-auto-accepted", "A filed connection request is accepted at once (first role of the data "
          "file) instead of waiting as pending for a domain admin.", ("KT2-ADMIN-REQUEST-PENDING",)),
    Fault("no-request-email", "Filing a connection request sends no e-mail to the domain's admins.",
          ("KT2-ADMIN-REQUEST-NOTIFY",)),
    Fault("no-acceptance-email", "Accepting a connection request sends no e-mail to the application's admins.",
          ("KT2-ADMIN-ACCEPT",)),
    Fault("accept-without-device", "Accepting a connection request creates no Device/<client_id>.",
          ("KT2-ADMIN-DEVICE",)),
    Fault("reject-creates-instance", "A rejected connection request still registers an active instance with a "
          "Device.", ("KT2-ADMIN-REJECT",)),
    Fault("status-reason-optional", "Instance status changes are accepted without a reason.",
          ("KT2-ADMIN-STATUS-MAINTENANCE",)),
    Fault("maintenance-not-reactivatable", "An instance in maintenance cannot be made active again (409).",
          ("KT2-ADMIN-STATUS-ACTIVE",)),
    Fault("closed-instance-reopenable", "A closed instance can be made active or put in maintenance again.",
          ("KT2-ADMIN-STATUS-CLOSED",)),
    Fault("device-status-stale", "The Device's status does not follow the instance status (stays active).",
          ("KT2-ADMIN-STATUS-MAINTENANCE", "KT2-ADMIN-STATUS-CLOSED")),
    # --- end of the domain admin's block ---------------------------------------------------------------------
])


def check_faults(names) -> frozenset[str]:
    return FAULTS.check(names)

"""The FHIR R4 store of the KT2 voorziening: REST interactions, search, versions, rules, AuditEvents and
subscriptions (see simulators/kt2/README.md).  Wired by simulators/kt2/app.py; talks to the authorisation
server only through context.BearerVerifier."""

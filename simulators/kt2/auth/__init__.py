"""The SMART authorisation server of each KT2 domain: keys and JWKS, backend-services tokens, the HTI launch,
introspection (see simulators/kt2/README.md).  Implements context.BearerVerifier for the FHIR store."""

Feature: Portal under test: client assertions and the JWKS
  The portal gets its access tokens with SMART backend services (kt2-protocol.md §1.3): a client assertion
  signed with a key of its JWKS (iss = sub = its client id, aud = the token endpoint, exp at most five minutes
  ahead, a fresh jti, kid).  The bench's voorziening records every token request; the bench decodes each
  assertion and verifies it against the JWKS the portal publishes.  Access tokens of the bench's voorziening
  live two seconds, so every action brings fresh assertions.

  @req:KT2-APP-PORTAL-ASSERTION-CLAIMS @role:portal
  Scenario: The portal's client assertions name itself and the token endpoint
    When the portal sends a new patient
    Then every client assertion of the portal names its client id as iss and sub and the token endpoint as aud

  @req:KT2-APP-PORTAL-ASSERTION-KID @role:portal
  Scenario: The portal's client assertions name a key of its JWKS and verify with it
    When the portal sends a new patient
    Then every client assertion of the portal has a kid of its JWKS and verifies with that key

  @req:KT2-APP-PORTAL-ASSERTION-ALG @role:portal
  Scenario: The portal signs its client assertions asymmetrically
    When the portal sends a new patient
    Then every client assertion of the portal is signed with an asymmetric algorithm

  @req:KT2-APP-PORTAL-ASSERTION-LIFETIME @role:portal
  Scenario: The portal's client assertions live at most five minutes
    When the portal sends a new patient
    Then every client assertion of the portal expires within 5 minutes of its iat

  @req:KT2-APP-PORTAL-ASSERTION-JTI @role:portal
  Scenario: Every client assertion of the portal has a jti of its own
    When the portal sends a new patient
    And the portal's access token has expired
    And the portal sends another new patient
    Then no two client assertions of the portal share a jti

  @req:KT2-APP-PORTAL-JWKS-PUBLIC @role:portal
  Scenario: The portal publishes public keys only
    When the bench fetches the portal's JWKS
    Then the portal's JWKS holds public keys only, each with kty and kid

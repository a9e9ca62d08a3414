Feature: eHealth module under test: publishing its activity, its tokens and its JWKS
  The module publishes what it offers (kt2-protocol.md §2.3, §3): an Endpoint with its launch URL
  (connectionType hti-smart-on-fhir) and an ActivityDefinition whose KT2EndpointExtension references it, with
  KT2 profiles, a business identifier and no resource-origin of its own.  Its client assertions and JWKS follow
  the same rules as every KT2 application's.

  @req:KT2-APP-MODULE-AD-ENDPOINT @role:module
  Scenario: The module's ActivityDefinition references the Endpoint with its launch URL
    When the module publishes its activity
    Then the module created an Endpoint with its launch URL and an ActivityDefinition that references it

  @req:KT2-APP-MODULE-META-PROFILE @role:module
  Scenario: The module's resources name their KT2 profiles
    When the module publishes its activity
    Then the Endpoint and the ActivityDefinition name their KT2 profiles and the ActivityDefinition a business identifier

  @req:KT2-APP-MODULE-NO-RESOURCE-ORIGIN @role:module
  Scenario: The module's resources carry no resource-origin of its own
    When the module publishes its activity
    Then neither the Endpoint nor the ActivityDefinition carries a resource-origin of the module's own

  @req:KT2-APP-MODULE-ASSERTION @role:module
  Scenario: The module's client assertions are correct and never reuse a jti
    When the module publishes its activity
    And the module's access token has expired
    And the module publishes its activity
    Then every client assertion of the module is correct

  @req:KT2-APP-MODULE-JWKS-PUBLIC @role:module
  Scenario: The module publishes public keys only
    When the bench fetches the module's JWKS
    Then the module's JWKS holds public keys only, each with kty and kid

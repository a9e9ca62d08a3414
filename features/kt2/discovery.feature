@role:portal
Feature: Discovery: a client finds the domain's endpoints from its FHIR base, without a token
  A KT2 application is configured with one domain's FHIR base URL and nothing else.  From it, it reads
  the SMART configuration (TOP-KT-016) to find the token, authorize, introspection and JWKS endpoints,
  and the CapabilityStatement for the FHIR version and the SMART security service.

  @req:KT2-DISC-SMART-CONFIG
  Scenario: The smart-configuration names every endpoint and capability KT2 needs
    When an unregistered client reads the smart-configuration
    Then the smart-configuration is answered without a token
    And the smart-configuration names every KT2 endpoint as an absolute URL
    And the smart-configuration lists the KT2 grant types, methods and capabilities
    And the smart-configuration advertises no registration or revocation endpoint

  @req:KT2-DISC-SMART-JSON
  Scenario Outline: The smart-configuration is JSON whatever the client accepts
    When an unregistered client reads the smart-configuration accepting "<accept>"
    Then the smart-configuration is served as application/json

    Examples:
      | accept                |
      | application/fhir+json |
      | text/html             |
      | application/xml       |

  @req:KT2-DISC-CAPABILITY
  Scenario: The CapabilityStatement is public and describes a FHIR 4.0.1 server
    When an unregistered client reads the CapabilityStatement
    Then the CapabilityStatement is answered without a token
    And the CapabilityStatement is for FHIR 4.0.1 in server mode

  @req:KT2-DISC-OAUTH-URIS
  Scenario: The CapabilityStatement names the same OAuth endpoints as the smart-configuration
    When an unregistered client reads the CapabilityStatement
    Then the CapabilityStatement names SMART-on-FHIR as its security service
    And its oauth-uris name the smart-configuration's token, authorize and introspection endpoints

  @req:KT2-DISC-JWKS
  Scenario: The authorisation server publishes public signing keys only
    When an unregistered client reads the domain's JWKS
    Then every published key has kty and kid and no private members

@kt1 @smoke
Feature: KT1 server describes itself (Conformance statement)
  Every Koppeltaal 1.3 connector starts by reading GET /FHIR/Koppeltaal/metadata: it checks the
  FHIR version (DSTU1 0.0.82) and the server name, and finds the OAuth authorize and token
  endpoints it needs to launch eHealth modules (SMART on FHIR "oauth-uris" extensions).

  @req:KT1-META-CONFORMANCE @role:portal
  Scenario: The metadata endpoint returns the Koppeltaal Conformance statement
    When the portal requests GET /FHIR/Koppeltaal/metadata
    Then the response status is 200
    And the response header "Content-Type" is "application/json; charset=utf-8"
    And the response body is a FHIR "Conformance" resource
    And the response JSON at "fhirVersion" is "0.0.82"
    And the response JSON at "name" is "Koppeltaal"

  @req:KT1-META-OAUTH-URIS @role:module
  Scenario: The Conformance statement advertises the OAuth authorize and token endpoints
    When an anonymous client requests GET /FHIR/Koppeltaal/metadata
    Then the response status is 200
    And the Conformance statement advertises the OAuth "authorize" URI
    And the Conformance statement advertises the OAuth "token" URI

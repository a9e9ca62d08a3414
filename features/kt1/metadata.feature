@kt1 @metadata
Feature: The Conformance statement and the JSON representation
  A KT1 connector's first call is GET /FHIR/Koppeltaal/metadata.  The Python connector checks the name,
  compares the version as a string, reads the OAuth endpoints from rest[0] and refuses any JSON answer whose
  Content-Type is not application/json (application/fhir+json included).

  @req:KT1-META-CONFORMANCE @req:KT1-META-JSON-CONTENT-TYPE @role:portal
  Scenario: The statement identifies a Koppeltaal server speaking FHIR DSTU1
    When the portal reads the Conformance statement
    Then the statement is Koppeltaal's, for FHIR DSTU1 0.0.82, with its REST description as an array
    And the answer is labelled application/json

  @req:KT1-META-OAUTH-URIS @role:module
  Scenario: The statement points modules to the server's OAuth endpoints
    When the module reads the Conformance statement
    Then the statement points to the server's own OAuth authorize and token endpoints

  @req:KT1-META-JSON-CONTENT-TYPE @role:module
  Scenario Outline: JSON answers are labelled application/json when the module <interaction>
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the module <interaction> in JSON
    Then the answer is labelled application/json

    Examples:
      | interaction                   |
      | searches its mailbox          |
      | claims a message              |
      | lists the ActivityDefinitions |

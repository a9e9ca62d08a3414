@kt1 @xml
Feature: JSON and XML representations of the same interactions
  KT1.3 content travels as JSON or as DSTU1 XML (Atom feeds for bundles), chosen with HTTP content negotiation:
  the Java connector sends and reads XML, the Python connector JSON.  A message sent in one representation is
  delivered in either, with the same content.

  @req:KT1-FMT-XML @role:portal
  Scenario: The Conformance statement in XML
    When the portal reads the Conformance statement as XML
    Then the answer is an XML Conformance statement for FHIR DSTU1 0.0.82

  @req:KT1-FMT-XML-MAILBOX @req:KT1-FMT-XML-SAME @role:portal @role:module
  Scenario: A care plan sent as XML reaches the module, readable as XML and as JSON alike
    Given a new patient known to the portal
    When the portal sends a CreateOrUpdateCarePlan message about the patient as XML
    Then the server accepts the message and answers in XML
    And the module's copy read as XML has the same content as read as JSON

  @req:KT1-FMT-XML-SAME @req:KT1-MSG-ACCEPT @role:portal @role:module
  Scenario: A message sent as JSON can be read as XML
    Given a new patient known to the portal
    When the module sends a UpdateCarePlanActivityStatus message about the patient
    Then the server accepts the message
    And the portal's copy read as XML has the same content as read as JSON

  @req:KT1-FMT-XML-CLAIM @req:KT1-CLAIM-NEXT @role:module
  Scenario: The module claims a message in XML
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the module claims its next new message for the patient as XML
    Then the claim answer is XML
    And the claim returns the care plan message complete

  @req:KT1-PROFILE-EXCHANGE @role:portal @role:module
  Scenario: Messages the server sends conform to the KT1.3 profiles, in JSON and in XML
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the module claims its next new message for the patient as XML
    Then every message the server sent so far conforms to the KT1.3 profiles

  @req:KT1-FMT-XML @role:portal
  Scenario: ActivityDefinitions listed as XML
    When the portal lists the ActivityDefinitions as XML
    Then the XML list holds the same ActivityDefinitions as the JSON list

@kt1-apps
Feature: KT1 portal under test: patients and care plans with the right content and versions
  The bench asks the portal (through its driver) to register patients and assign the module's activity, and
  judges the messages the portal sends to the bench's Koppeltaal server: the focal resource and its content, the
  versions it quotes (1.3.5 resource versioning), and how it recovers when someone else changed a resource.

  @req:KT1-APP-PORTAL-PATIENT-CONTENT @role:portal
  Scenario: The portal sends a new patient
    When the portal is asked to send a new patient
    Then the portal sent the patient as a new CreateOrUpdatePatient message

  @req:KT1-APP-PORTAL-PATIENT-CONTENT @role:portal
  Scenario: The portal sends a second patient as a resource of its own
    Given the portal has sent a new patient
    When the portal is asked to send another new patient
    Then the portal sent the patient as a new CreateOrUpdatePatient message
    And the second patient is a resource of its own

  @req:KT1-APP-PORTAL-PATIENT-VERSION @role:portal
  Scenario: The portal sends changes of a patient with the versions the server minted
    Given the portal has sent a new patient
    When the portal is asked to send a change of the patient 2 times
    Then every change of the patient quoted the version the server minted last

  @req:KT1-APP-PORTAL-CONFLICT-RECOVER @role:portal
  Scenario: The portal recovers from a 409 by taking the latest version
    Given the portal has sent a new patient
    And someone else has changed the patient on the server
    When the portal is asked to send a change of the patient
    Then the portal's change was refused with 409 and then resent with the latest version

  @req:KT1-APP-PORTAL-CAREPLAN-CONTENT @role:portal
  Scenario: The portal assigns the module's activity in a care plan
    Given the portal has sent a new patient
    When the portal is asked to assign the module's activity to the patient
    Then the portal sent a care plan for the patient with the module's activity

  @req:KT1-APP-PORTAL-CAREPLAN-VERSION @role:portal
  Scenario: The portal updates the patient's care plan with the versions the server minted
    Given the portal has sent a new patient
    When the portal is asked to assign the module's activity to the patient 3 times
    Then every care plan after the first updated the same care plan quoting the version the server minted last

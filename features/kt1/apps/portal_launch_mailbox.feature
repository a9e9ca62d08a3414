@kt1-apps
Feature: KT1 portal under test: launching the module and processing status updates
  The portal launches the module through the server's Launch endpoint (KT1's SSO), and processes the status
  updates the module (played by the bench) sends about the activities it assigned: claimed with
  GetNextNewAndClaim, acked Success when usable, Failed with an exception when not.

  @req:KT1-APP-PORTAL-LAUNCH @role:portal
  Scenario: The portal launches the module for the patient's activity
    Given the portal has sent a new patient
    And the portal has assigned the module's activity to the patient
    When the portal is asked to launch the module's activity for the patient
    Then the portal called Launch for the module with the patient, a user and the care plan activity

  @req:KT1-APP-PORTAL-CLAIM @role:portal
  Scenario: The portal claims the status updates in its mailbox
    Given the portal has sent a new patient
    And the portal has assigned the module's activity to the patient
    And the module has reported the activity "InProgress"
    When the portal is asked to process its mailbox
    Then the portal claimed the status update before acking it

  @req:KT1-APP-PORTAL-ACK-SUCCESS @role:portal
  Scenario: The portal acks a status update it can process Success
    Given the portal has sent a new patient
    And the portal has assigned the module's activity to the patient
    And the module has reported the activity "InProgress"
    When the portal is asked to process its mailbox
    Then the portal acked the status update "Success" on the message's own URL with the delivered header

  @req:KT1-APP-PORTAL-ACK-SUCCESS @role:portal
  Scenario: The portal acks every status update of a busy mailbox Success
    Given the portal has sent a new patient
    And the portal has assigned the module's activity to the patient
    And the portal has assigned the module's activity to the patient
    And the module has reported "Completed" for each assigned activity
    When the portal is asked to process its mailbox
    Then the portal acked the status update "Success" on the message's own URL with the delivered header

  @req:KT1-APP-PORTAL-ACK-FAILED @role:portal
  Scenario: The portal acks a status update about an activity it never assigned Failed with an exception
    Given the portal has sent a new patient
    And the module has reported a status for an activity the portal never assigned
    When the portal is asked to process its mailbox
    Then the portal acked the status update "Failed" with an exception

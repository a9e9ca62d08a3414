@kt1-apps
Feature: KT1 eHealth module under test: care plans claimed and acked, statuses reported with versions
  The portal (played by the bench) assigns the module's activity; the bench asks the module (through its
  driver) to process its mailbox and to report progress, and judges what the module sends to the bench's
  Koppeltaal server.

  @req:KT1-APP-MODULE-CLAIM @role:module
  Scenario: The module claims the care plans in its mailbox
    Given the portal has assigned the module's activity to a new patient
    When the module is asked to process its mailbox
    Then the module claimed the care plan before acking it

  @req:KT1-APP-MODULE-ACK-SUCCESS @role:module
  Scenario: The module acks a care plan it can process Success
    Given the portal has assigned the module's activity to a new patient
    When the module is asked to process its mailbox
    Then the module acked the care plan "Success" on the message's own URL with the delivered header

  @req:KT1-APP-MODULE-ACK-SUCCESS @role:module
  Scenario: The module acks a patient message Success
    Given the portal has sent a new patient to the module
    When the module is asked to process its mailbox
    Then the module acked the patient message "Success" on the message's own URL with the delivered header

  @req:KT1-APP-MODULE-ACK-FAILED @role:module @invalid-request
  Scenario: The module acks a care plan whose activity has no start date Failed with an exception
    Given the portal has assigned the module's activity without a start date to a new patient
    When the module is asked to process its mailbox
    Then the module acked the care plan "Failed" with an exception

  @req:KT1-APP-MODULE-STATUS-REPORT @role:module
  Scenario: The module reports that the patient started the activity
    Given the module has processed the care plan assigning its activity to a new patient
    When the module is asked to report the activity "InProgress"
    Then the module sent an activity status "InProgress" for the care plan activity and the patient

  @req:KT1-APP-MODULE-STATUS-REPORT @role:module
  Scenario: The module reports that the patient completed the activity
    Given the module has processed the care plan assigning its activity to a new patient
    When the module is asked to report the activity "Completed"
    Then the module sent an activity status "Completed" for the care plan activity and the patient

  @req:KT1-APP-MODULE-STATUS-VERSION @role:module
  Scenario: The module reports later statuses with the versions the server minted
    Given the module has processed the care plan assigning its activity to a new patient
    When the module is asked to report the activity "InProgress"
    And the module is asked to report the activity "InProgress"
    And the module is asked to report the activity "Completed"
    Then every later status report updated the same activity status quoting the version the server minted last

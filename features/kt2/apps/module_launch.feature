Feature: eHealth module under test: receiving launches
  The bench plays the portal: it makes a patient and a Task for the module's activity and form-POSTs HTI
  launch tokens to the module's launch URL (the address of the Endpoint it published).  The module must
  verify each one at the voorziening (path A: introspection with its own client assertion; path B: the SMART
  app launch) before it lets anyone in, accept a good one and refuse replayed, expired, misaddressed and badly
  signed ones, and read the Task with its own backend-services token (kt2-protocol.md §2.4-2.5).

  Background:
    Given the module has published its activity
    And the bench's portal has assigned the activity to a patient as a task

  @req:KT2-APP-MODULE-LAUNCH-VERIFY @req:KT2-APP-MODULE-LAUNCH-ACCEPT @role:module
  Scenario: A valid launch is verified at the voorziening and accepted
    When the bench's portal launches the module for the task
    Then the module verified the launch token at the voorziening before it answered
    And the module accepted the launch

  @req:KT2-APP-MODULE-LAUNCH-REPLAY @role:module
  Scenario: A launch token sent a second time is refused
    When the bench's portal launches the module for the task
    And the bench's portal sends the same launch again
    Then the module refused the replayed launch

  @req:KT2-APP-MODULE-LAUNCH-EXPIRED @role:module
  Scenario: An expired launch token is refused
    When the bench's portal launches the module with a launch token that is expired
    Then the module refused the expired launch

  @req:KT2-APP-MODULE-LAUNCH-AUD @role:module
  Scenario: A launch token for another module is refused
    When the bench's portal launches the module with a launch token that is addressed to another module
    Then the module refused the misaddressed launch

  @req:KT2-APP-MODULE-LAUNCH-SIGNATURE @role:module
  Scenario: A launch token the portal did not sign is refused
    When the bench's portal launches the module with a launch token that is signed with a key the portal does not publish
    Then the module refused the badly signed launch

  @req:KT2-APP-MODULE-OWN-TOKEN @role:module
  Scenario: After a launch the module reads the Task with its own access token
    When the bench's portal launches the module for the task
    Then every request of the module to the store carries its own access token

  @req:KT2-APP-MODULE-LAUNCH-AUDIT @role:module
  Scenario: The module records the launch it accepted as an Application Start AuditEvent
    When the bench's portal launches the module for the task
    Then the module wrote an Application Start AuditEvent for the task whose trace-id is the launch token's jti

Feature: eHealth module under test: what it does with a notification
  A subscriber records every notification it receives (kt2-protocol.md §4.5, §4.7): an AuditEvent of type
  iso-21089-lifecycle#receive whose correlation-id is the notification's X-Request-Id, then it searches its
  Subscription's criteria again with X-Correlation-Id = that X-Request-Id.  The bench plays the portal: it
  assigns the module's activity as a Task the module's Subscription matches.

  @req:KT2-APP-MODULE-RECEIVE-AUDIT @role:module
  Scenario: The module records a notification and searches again with its correlation id
    Given the module has published its activity
    And the module has subscribed to "Task?status=ready"
    And the bench's portal has assigned the activity to a patient as a task
    Then the module wrote a receive AuditEvent for the notification
    And the module searched its criteria again with X-Correlation-Id of the notification

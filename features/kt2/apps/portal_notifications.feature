Feature: Portal under test: what it does with a notification
  A subscriber records every notification it receives (kt2-protocol.md §4.5, §4.7): an AuditEvent of type
  iso-21089-lifecycle#receive whose correlation-id is the notification's X-Request-Id, then it searches its
  Subscription's criteria again with X-Correlation-Id = that X-Request-Id.  The bench plays the module: it
  publishes an activity the portal's Subscription matches.

  @req:KT2-APP-PORTAL-RECEIVE-AUDIT @role:portal
  Scenario: The portal records a notification and searches again with its correlation id
    Given the portal has subscribed to "ActivityDefinition?status=active"
    When the bench's module publishes another activity
    Then the portal wrote a receive AuditEvent for the notification
    And the portal searched its criteria again with X-Correlation-Id of the notification

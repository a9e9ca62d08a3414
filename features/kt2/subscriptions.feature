Feature: Subscriptions: rest-hook notifications to https endpoints, without payload, traced and narrowed
  TOP-KT-006 (kt2-protocol.md §4.5, §4.6): an application subscribes with criteria (a KT2 search), a
  rest-hook channel to its own https endpoint, no payload and optional channel headers.  On every
  matching create or update the voorziening POSTs the endpoint with an empty body, the channel headers
  and the trace headers: a new X-Request-Id, X-Correlation-Id = the X-Request-Id of the request that
  caused it, the same X-Trace-Id.  It notifies only about what the subscriber may read, retries a refused
  notification and sets the Subscription to error when deliveries keep failing.  Notifications reach the
  bench's actor host; where the voorziening cannot reach it the scenarios are skipped.

  @req:KT2-SUB-HTTPS @role:portal
  Scenario: A Subscription to a plain http endpoint is refused
    When the portal subscribes with the endpoint "http://notify.ktbench.test/hook"
    Then the subscription is refused with 422 and an OperationOutcome

  @req:KT2-SUB-REST-HOOK @role:portal
  Scenario Outline: A Subscription with a <type> channel is refused
    When the portal subscribes with a <type> channel
    Then the subscription is refused with 422 and an OperationOutcome

    Examples:
      | type      |
      | websocket |
      | email     |
      | message   |

  @req:KT2-SUB-NO-PAYLOAD @role:portal
  Scenario: A Subscription that asks for a payload is refused
    When the portal subscribes with the payload "application/fhir+json"
    Then the subscription is refused with 422 and an OperationOutcome

  @req:KT2-SUB-NO-PAYLOAD @role:portal @role:module @role:server
  Scenario: A notification carries no resource
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to changes of the task on its notification endpoint
    When the module moves the task to in-progress with If-Match
    Then the portal's notification has an empty body

  @req:KT2-SUB-NOTIFY @role:portal @role:module @role:server
  Scenario: Only changes that match the criteria are notified
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to completed tasks of the patient on its notification endpoint
    When the module moves the task to in-progress with If-Match
    And the module moves the task to completed with If-Match
    Then the portal gets one notification, for the change to completed

  @req:KT2-SUB-HEADERS @role:portal @role:module @role:server
  Scenario: Every channel header is sent with the notification
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to changes of the task with the channel headers "X-KTSubscription: UpdateTask" and "X-Ktbench-Scenario: task-update"
    When the module moves the task to in-progress with If-Match
    Then the portal's notification carries every channel header of the subscription

  @req:KT2-SUB-TRACE @req:KT2-TRACE-CORRELATION @role:portal @role:module @role:server
  Scenario: A notification names the request that caused it
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to changes of the task on its notification endpoint
    When the module moves the task to in-progress with its own X-Request-Id and X-Trace-Id
    Then the portal's notification has a new X-Request-Id of its own
    And the portal's notification has the module's X-Request-Id as X-Correlation-Id
    And the portal's notification has the module's X-Trace-Id

  @req:KT2-SUB-RETRY @req:KT2-AUDIT-TRANSMIT @role:portal @role:module @role:server
  Scenario: A refused notification is retried and the Subscription ends in status error
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to changes of the task on its notification endpoint
    And the portal's notification endpoint answers 503 from now on
    When the module moves the task to in-progress with If-Match
    Then the voorziening tries the notification again
    And the portal's subscription gets status error with an error text
    And every notification attempt is recorded as a transmit AuditEvent, the failed ones with outcome 4

  @req:KT2-SUB-NARROWING @role:portal @role:module @role:server
  Scenario: No notification about an AuditEvent the subscriber may not read
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task
    And the portal subscribes to the AuditEvents about the task on its notification endpoint
    When the module records an AuditEvent about the task, which only the module may read
    And the portal records an AuditEvent about the task itself
    Then the portal is notified about its own AuditEvent only

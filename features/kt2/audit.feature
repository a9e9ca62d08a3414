Feature: AuditEvents and trace headers: every interaction is logged, findable by its trace ids, and never changed
  TOP-KT-011 (kt2-protocol.md §4.6, §4.7): the voorziening records every FHIR interaction, refused ones
  included, as an AuditEvent (type rest, the interaction as subtype, action, outcome, the requesting
  Device, the resource; a search adds its query), every notification attempt as a transmit event and
  every token request as a user-authentication event, with the request's X-Request-Id, X-Trace-Id and
  X-Correlation-Id as searchable extensions.  Applications read the AuditEvents of their own requests
  (AuditEvent R OWN); where those are not readable the bench asks a Beheerportaal instance (R ALL), when
  it has the admin accounts to register one.  AuditEvents cannot be updated or deleted by anybody.  Every
  answer carries X-Request-Id (the client's, else a new one) and X-Trace-Id.

  Background:
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task

  @req:KT2-AUDIT-REST @role:portal @role:server
  Scenario Outline: The portal's request to <request> is audited
    When the portal sends a request to <request> with its own X-Request-Id
    Then the AuditEvent of that request is a rest event with subtype <subtype>, action <action> and outcome <outcome>
    And the AuditEvent of that request names the portal's Device as requester and what the request touched

    Examples:
      | request                            | subtype     | action | outcome |
      | read the task                      | read        | R      | 0       |
      | update the task                    | update      | U      | 0       |
      | create a patient                   | create      | C      | 0       |
      | search the patient's tasks         | search-type | E      | 0       |
      | read a task that does not exist    | read        | R      | 4       |
      | update the task without If-Match   | update      | U      | 4       |

  @req:KT2-AUDIT-SEARCH @role:portal @role:server
  Scenario Outline: AuditEvents are found by the request's <parameter>
    When the portal sends a request to read the task with its own X-Request-Id, X-Trace-Id and X-Correlation-Id
    Then searching AuditEvent by <parameter> finds the AuditEvent of that request

    Examples:
      | parameter     |
      | requestId     |
      | traceId       |
      | correlationId |

  @req:KT2-SEARCH-AUDIT @role:portal @role:server
  Scenario: A search is audited with its query and every hit
    When the portal sends a request to search the patient's tasks with its own X-Request-Id
    Then the AuditEvent of that search holds the query, base64-encoded, as a query entity
    And the AuditEvent of that search names the task it found

  @req:KT2-AUDIT-TRANSMIT @role:portal @role:module @role:server
  Scenario: A notification is audited as a transmit event
    Given the portal subscribes to changes of the task on its notification endpoint
    When the module moves the task to in-progress with its own X-Request-Id and X-Trace-Id
    Then the notification is recorded as a transmit AuditEvent naming the task version and the subscription

  @req:KT2-AUDIT-AUTH @role:portal @role:server
  Scenario: A token request is audited as a user authentication
    When the portal requests a token with its own X-Request-Id
    Then the token request is recorded as a successful user-authentication AuditEvent of the portal

  @req:KT2-AUDIT-AUTH @role:portal @role:server
  Scenario: A refused token request is audited as a failed user authentication
    When the portal requests a token with its own X-Request-Id and an assertion for another audience
    Then the token request is recorded as a failed user-authentication AuditEvent

  @req:KT2-AUDIT-IMMUTABLE @role:portal @role:server
  Scenario Outline: <who> cannot change or delete <event>
    Given <event> has been found
    When <who> tries to update that AuditEvent
    And <who> tries to delete that AuditEvent
    Then both attempts on the AuditEvent are refused with a 4xx status
    And the AuditEvent is still there as it was recorded

    Examples:
      | who                  | event                                      |
      | the portal           | the AuditEvent of the portal's own read    |
      | the portal           | an AuditEvent the portal recorded itself   |
      | a Beheerportaal      | the AuditEvent of the portal's own read    |

  @req:KT2-TRACE-REQUEST-ID @req:KT2-TRACE-TRACE-ID @role:portal @role:server
  Scenario Outline: Every answer echoes the client's X-Request-Id and X-Trace-Id: <request>
    When the portal sends a request to <request> with its own X-Request-Id and X-Trace-Id
    Then the answer carries the client's X-Request-Id
    And the answer carries the client's X-Trace-Id

    Examples:
      | request                         |
      | read the task                   |
      | search the patient's tasks      |
      | create a patient                |
      | read a task that does not exist |
      | read the task without a token   |
      | read the CapabilityStatement    |

  @req:KT2-TRACE-REQUEST-ID @req:KT2-TRACE-TRACE-ID @role:portal @role:server
  Scenario Outline: Every answer gets a new X-Request-Id and X-Trace-Id when the client sends none: <request>
    When the portal sends a request to <request> twice without trace headers
    Then each answer carries its own new X-Request-Id
    And each answer carries its own new X-Trace-Id

    Examples:
      | request                         |
      | read the task                   |
      | search the patient's tasks      |
      | read a task that does not exist |
      | read the task without a token   |
      | read the CapabilityStatement    |

  @req:KT2-TRACE-CORRELATION @role:portal @role:server
  Scenario: The client's X-Correlation-Id is echoed
    When the portal sends a request to read the task with its own X-Request-Id, X-Trace-Id and X-Correlation-Id
    Then the answer carries the client's X-Correlation-Id

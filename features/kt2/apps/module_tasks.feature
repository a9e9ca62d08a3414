Feature: eHealth module under test: moving the Task through its statuses
  After a launch the module reports progress by updating the Task (kt2-protocol.md §3, §4.2): status
  in-progress, later completed, each time with If-Match of the Task's current version and keeping the rest
  of the Task as the portal wrote it.

  Background:
    Given the module has published its activity
    And the bench's portal has assigned the activity to a patient as a task
    And the module has accepted a launch for the task

  @req:KT2-APP-MODULE-TASK-IF-MATCH @req:KT2-APP-MODULE-TASK-STATUS @role:module
  Scenario: The module sets the Task in progress with If-Match
    When the module reports the task in-progress
    Then the module's 1 update(s) of the task carry If-Match with the task's current version
    And the module's last update sets the task in-progress and keeps the rest of the task

  @req:KT2-APP-MODULE-TASK-IF-MATCH @req:KT2-APP-MODULE-TASK-STATUS @role:module
  Scenario: The module completes the Task after setting it in progress
    When the module reports the task in-progress
    And the module reports the task completed
    Then the module's 2 update(s) of the task carry If-Match with the task's current version
    And the module's last update sets the task completed and keeps the rest of the task

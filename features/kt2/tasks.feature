Feature: Tasks: the portal assigns a module's activity, the module works it, the portal follows every change
  The Koppeltaal flow (TOP-KT-007, TOP-KT-009, TOP-KT-013; kt2-protocol.md §3.3): an eHealth module
  publishes an ActivityDefinition with its launch Endpoint; a portal assigns it to a patient as a Task
  (status ready) that instantiates the definition; the module reads the Task and moves it on, with
  If-Match on every update, ready -> in-progress -> completed (or cancelled, on-hold, failed,
  entered-in-error); every status is a new version.  The portal does not poll: it subscribes (rest-hook,
  no payload) and, when notified, reads the Task again.  A `view` sub-task points to its main Task with
  partOf.

  Background:
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    And the portal has assigned the activity to the patient as a task

  @req:KT2-TASK-INSTANTIATES @role:portal @role:module
  Scenario: The module reads the Task the portal made from its ActivityDefinition
    When the module reads the task it was assigned
    Then the module's copy of the task instantiates its ActivityDefinition for the patient
    And the module's copy of the task is the portal's version 1 with status ready

  @req:KT2-TASK-LIFECYCLE @req:KT2-SUB-NOTIFY @role:portal @role:module @role:server
  Scenario: The module works the task to completed and the portal learns each change from a notification
    Given the portal subscribes to changes of the task on its notification endpoint
    When the module moves the task to in-progress with If-Match
    Then the task is stored as version 2 with status in-progress
    And the portal is notified and reads version 2 of the task with status in-progress
    When the module moves the task to completed with If-Match
    Then the task is stored as version 3 with status completed
    And the portal is notified and reads version 3 of the task with status completed

  @req:KT2-TASK-LIFECYCLE @role:portal @role:module
  Scenario Outline: The module ends a started task as <status>
    When the module moves the task to in-progress with If-Match
    And the module moves the task to <status> with If-Match
    Then the task is stored as version 3 with status <status>
    And the task's history holds ready, in-progress and <status> as versions 1 to 3

    Examples:
      | status           |
      | cancelled        |
      | on-hold          |
      | failed           |
      | entered-in-error |

  @req:KT2-TASK-VIEW-SUBTASK @role:portal @role:module
  Scenario: A view sub-task points to its main task with partOf
    When the portal adds a view sub-task that is part of the task
    Then the view sub-task is stored with code view and partOf the task
    And the module reads the view sub-task for the same patient and activity

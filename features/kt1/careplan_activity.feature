@kt1 @careplan
Feature: A care plan activity from assignment to completion
  The portal assigns an activity of the module to a patient in a CarePlan (CreateOrUpdateCarePlan).  The module
  performs it and reports progress with UpdateCarePlanActivityStatus messages about its CarePlanActivityStatus
  resource - every report after the first quotes the version the server minted for the previous one.  The portal
  sees the latest status; when several reports wait unclaimed, only the newest one is delivered (the older ones
  are replaced).  The practitioner may cancel the activity by updating the CarePlan, and the module may share
  the activity's result.

  Background:
    Given a new patient known to the portal
    And the portal has assigned the game activity to the patient

  @req:KT1-CP-ASSIGN @role:portal @role:module
  Scenario: The module receives the assigned activity as Available
    When the module claims its next new CreateOrUpdateCarePlan message for the patient
    Then the claim returns a care plan with the activity Available

  @req:KT1-CP-STATUS-FLOW @req:KT1-CP-STATUS-UPDATE @role:portal @role:module
  Scenario: The portal follows the activity from Available through InProgress to Completed
    Given the module has received the care plan
    When the module reports the activity as InProgress at 50 percent
    Then the portal receives the activity status InProgress
    When the module reports the activity as Completed at 100 percent
    Then the portal receives the activity status Completed

  @req:KT1-CP-STATUS-FLOW @req:KT1-CP-STATUS-UPDATE @req:KT1-MSG-REPLACED @role:portal @role:module
  Scenario Outline: The patient starts the activity and it ends as <status>; the portal sees the final status
    Given the module has received the care plan
    When the module reports the activity as InProgress
    And the module reports the activity as <status>
    Then the portal receives the activity status <status>

    Examples:
      | status        |
      | SkippedByUser |
      | Expired       |
      | Completed     |

  @req:KT1-CP-CANCEL @role:portal @role:module
  Scenario: The practitioner cancels the activity and the module learns of it
    Given the module has received the care plan
    When the portal cancels the activity in the care plan
    Then the module receives the care plan with the activity Cancelled

  @req:KT1-CP-RESULT @req:KT1-CP-STATUS-FLOW @role:portal @role:module
  Scenario: The module shares the result of the completed activity
    Given the module has received the care plan
    When the module reports the activity as Completed at 100 percent
    And the module shares the activity's result
    Then the portal receives the activity status Completed
    And the portal receives the activity result

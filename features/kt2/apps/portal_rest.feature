Feature: Portal under test: the resources it writes
  What the portal writes to the voorziening (kt2-protocol.md §3, §4): KT2 profiles in meta.profile, business
  identifiers, no resource-origin of its own (the voorziening sets it), If-Match with the version it read on
  every update, and Tasks that instantiate the module's ActivityDefinition through the KT2 instantiates
  extension.  The bench plays the module: it published the activity the portal assigns.

  @req:KT2-APP-PORTAL-META-PROFILE @req:KT2-APP-PORTAL-NO-RESOURCE-ORIGIN @role:portal
  Scenario: A patient the portal sends names its profile and identifier and no resource-origin
    When the portal sends a new patient
    Then the portal created the patient with meta.profile KT2Patient and its business identifier
    And the patient the portal created carries no resource-origin of its own

  @req:KT2-APP-PORTAL-IF-MATCH @role:portal
  Scenario: The portal updates a patient with If-Match of the version it read
    Given the portal has sent a new patient
    When the portal sends a change of that patient
    Then the portal's update of the patient carries If-Match with the version it read

  @req:KT2-APP-PORTAL-TASK-INSTANTIATES @req:KT2-APP-PORTAL-META-PROFILE @role:portal
  Scenario: A Task the portal assigns instantiates the module's ActivityDefinition
    Given the bench's module has published an activity
    And the portal has sent a new patient
    When the portal assigns the activity to the patient
    Then the portal created a Task that instantiates the module's ActivityDefinition for the patient
    And the Task names meta.profile KT2Task and a business identifier

  @req:KT2-APP-PORTAL-SUBSCRIPTION @role:portal
  Scenario: A Subscription of the portal follows the KT2 rules
    When the portal subscribes to "Task?status=completed"
    Then the portal created a Subscription that follows the KT2 rules

  @req:KT2-APP-PORTAL-IF-MATCH @role:portal
  Scenario: The portal updates a Task with If-Match of the version it read
    Given the bench's module has published an activity
    And the portal has sent a new patient
    And the portal has assigned the activity to the patient
    When the portal sets the task cancelled
    Then the portal's update of the task carries If-Match with the version it read

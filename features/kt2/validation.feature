Feature: Validation and referential integrity: the store keeps only valid resources with living references
  Every write is validated against the KT2 profiles (kt2-protocol.md §3; HAPI request validation): a
  resource that breaks its profile is refused with 422 (400 for basic FHIR errors such as a malformed
  date) and an OperationOutcome that names the problem, and nothing is stored.  A Task with code `view` is
  a sub-task and must name its main Task in partOf (§3.3).  References must point to existing resources of
  the domain on write, and a resource that is still referred to cannot be deleted (409, TOP-KT-003) -
  except that AuditEvents, which record what happened to a resource, never keep it alive (§6.2).

  # -- profiles -------------------------------------------------------------------------------------------------
  @req:KT2-VAL-PROFILE @role:portal @role:module @invalid-request
  Scenario Outline: A resource that breaks its KT2 profile is refused, the problem named, nothing stored
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    When the <writer> creates <defect>
    Then the store refuses the invalid resource with <status> naming <element>
    And no such resource was stored

    Examples:
      | writer | defect                                                  | status     | element                 |
      | portal | a Patient without identifier                            | 422        | Patient.identifier      |
      | portal | a Patient whose gender is "robot"                       | 422        | Patient.gender          |
      | portal | a Patient whose birthDate is "20-12-1970"               | 400 or 422 | Patient.birthDate       |
      | portal | a Task without owner                                    | 422        | Task.owner              |
      | portal | a Task whose status is "finished"                       | 422        | Task.status             |
      | module | an Endpoint whose connection type is hl7-fhir-rest      | 422        | Endpoint.connectionType |
      | module | an ActivityDefinition without status                    | 422        | ActivityDefinition.status |

  @req:KT2-VAL-PROFILE @role:portal @invalid-request
  Scenario: An update that breaks the profile is refused and the stored version stays
    Given the portal has registered a patient
    When the portal updates the patient without its identifiers
    Then the store refuses the invalid resource with 422 naming Patient.identifier
    And the patient still has its identifiers at its first version

  # -- sub-tasks ------------------------------------------------------------------------------------------------
  @req:KT2-VAL-SUBTASK @role:portal @role:module
  Scenario: A sub-task with code view and no partOf is refused with 422
    Given the portal has assigned the activity to the patient as a task
    When the module creates a sub-task with code view without partOf
    Then the store refuses the invalid resource with 422 naming Task.partOf
    And no such resource was stored

  @req:KT2-VAL-SUBTASK @role:portal @role:module
  Scenario: A sub-task with code view that is part of the main task is accepted
    Given the portal has assigned the activity to the patient as a task
    When the module creates a sub-task with code view as part of the task
    Then the sub-task is stored as part of the main task

  # -- referential integrity ------------------------------------------------------------------------------------
  @req:KT2-RI-WRITE @role:portal @role:module
  Scenario Outline: A write that refers to a resource that does not exist is refused and nothing is stored
    Given the portal has registered a patient
    And the module has published an activity with its launch endpoint
    When the <writer> creates <resource> that refers to <missing>
    Then the store refuses the dangling reference
    And no such resource was stored

    Examples:
      | writer | resource              | missing                                   |
      | portal | a Task                | a Patient that never existed              |
      | portal | a Task                | an ActivityDefinition that never existed  |
      | portal | a CareTeam            | a Patient that was deleted                |
      | module | an ActivityDefinition | an Endpoint that never existed            |

  @req:KT2-RI-WRITE @role:portal @role:module
  Scenario: An update that adds a dangling reference is refused and the stored version stays
    Given the portal has assigned the activity to the patient as a task
    When the portal updates the task with a requester that never existed
    Then the store refuses the dangling reference
    And the task is unchanged at its first version

  @req:KT2-RI-DELETE @role:portal @role:module
  Scenario Outline: A resource another resource refers to cannot be deleted
    Given the portal has assigned the activity to the patient as a task
    When the <deleter> deletes the <target> the task refers to
    Then the store refuses the delete with 409
    And the <target> can still be read

    Examples:
      | deleter | target             |
      | portal  | patient            |
      | module  | ActivityDefinition |

  @req:KT2-RI-AUDIT-EXEMPT @role:portal
  Scenario: An AuditEvent naming a resource does not keep it from being deleted
    Given the portal has registered a patient
    And the portal has recorded an AuditEvent naming the patient
    When the portal deletes the patient, whom only AuditEvents name
    Then the delete succeeds and the patient is gone

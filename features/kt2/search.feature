@role:portal
Feature: Search: KT search parameters, paging, sorting and _include
  Applications find resources by their business identifiers, by status, patient and origin, and Tasks by the
  ActivityDefinition they instantiate (TOP-KT-002 eis 11-13; the KT SearchParameters of the IG).  A searchset
  holds exactly the matches, says how many there are (total) and pages through them with absolute links under
  the FHIR base (RFC 5005); without _sort the newest come first (the reference's default -_lastUpdated).
  Every scenario searches only for what it made itself, under fresh identifiers, so other scenarios sharing
  the domain never show up.

  @req:KT2-SEARCH-PARAMS @role:module
  Scenario Outline: A search by <parameter> finds exactly the matching resources
    Given the portal has assigned the activity to the patient as a task
    And the module has assigned the patient a task of its own with status requested
    When the portal searches the store for <query>
    Then the searchset holds exactly <matches>

    Examples:
      | parameter             | query                                                 | matches                           |
      | identifier            | Patient?identifier={patient.identifier}               | the patient                       |
      | identifier            | Task?identifier={module task.identifier}              | the module task                   |
      | _id                   | Task?_id={task.id}                                    | the task                          |
      | patient               | Task?patient={patient}                                | the task and the module task      |
      | patient (bare id)     | Task?patient={patient.id}                             | the task and the module task      |
      | status                | Task?patient={patient}&status=requested               | the module task                   |
      | status (two values)   | Task?patient={patient}&status=ready,requested         | the task and the module task      |
      | resource-origin       | Task?patient={patient}&resource-origin={module device} | the module task                  |
      | resource-origin       | Task?patient={patient}&resource-origin={portal device} | the task                         |

  @req:KT2-SEARCH-PARAMS
  Scenario: A search by _lastUpdated compares the instants the store recorded
    Given the portal has registered two patients one after the other
    When the portal searches both patients by _id, last updated before and since the second one
    Then the search before finds only the first patient and the search since only the second

  @req:KT2-SEARCH-PAGING
  Scenario: Paging walks through every match exactly once by absolute links under the FHIR base
    Given the portal has registered 5 patients under one fresh identifier system
    When the portal searches those patients with _count 2 and follows every next link
    Then every page has total 5 and a self link
    And every next and previous link is absolute under the FHIR base
    And the pages hold every one of the 5 patients exactly once, at most 2 per page
    And the previous link of the last page leads back to the page before it

  @req:KT2-SEARCH-SORT
  Scenario Outline: Search results <sort> come <order>
    Given the portal has registered 3 patients under one fresh identifier system
    When the portal searches those patients <sort>
    Then the patients come <order> by lastUpdated

    Examples:
      | sort                      | order        |
      | without _sort             | newest first |
      | with _sort=-_lastUpdated  | newest first |
      | with _sort=_lastUpdated   | oldest first |

  @req:KT2-SEARCH-INSTANTIATES @role:module
  Scenario: Task?instantiates finds the Tasks of one ActivityDefinition only
    Given the portal has assigned the activity to the patient as a task
    And the portal has assigned another activity of the module to the patient as the other task
    When the portal searches the store for Task?instantiates={definition}
    Then the searchset holds exactly the task

  @req:KT2-SEARCH-INCLUDE @role:module
  Scenario: _include adds the referenced resources with search.mode include
    Given the portal has assigned the activity to the patient as a task
    When the portal searches the store for Task?_id={task.id}&_include=Task:patient
    Then the searchset holds exactly the task
    And the searchset includes the patient with search.mode include

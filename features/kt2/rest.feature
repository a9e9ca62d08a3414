@role:portal
Feature: FHIR REST: create, read, vread, update, delete and history of KT2 resources
  Every KT2 application reads and writes the domain's resources through the FHIR R4 REST API of the
  voorziening (TOP-KT-002, TOP-KT-003, TOP-KT-012a; kt2-protocol.md §4.1-4.3).  The server assigns ids and
  versions, answers writes with ETag, Last-Modified and an absolute versioned Location, keeps every version
  (the deletion included) and refuses what it cannot take with a 4xx and an OperationOutcome, never a 5xx.
  Where the sources allow several answers (§4.2, §8), each is accepted.

  @req:KT2-REST-CREATE
  Scenario: A create answers 201 with a versioned Location, ETag, Last-Modified and the stored resource
    When the portal POSTs a new practitioner
    Then the create answers 201 with an absolute Location of version 1 under the FHIR base
    And the create answers with ETag W/"1" and a Last-Modified date
    And the created practitioner has a server-assigned id, versionId 1 and what the portal sent

  @req:KT2-REST-PREFER
  Scenario Outline: A create honours Prefer return=<preference>
    When the portal POSTs a new practitioner with Prefer "return=<preference>"
    Then the create answers 201 with an absolute Location of version 1 under the FHIR base
    And the create's body is <body>

    Examples:
      | preference       | body                    |
      | minimal          | empty                   |
      | representation   | the stored practitioner |
      | OperationOutcome | an OperationOutcome     |

  @req:KT2-REST-READ
  Scenario: A read answers the current version with its ETag
    Given the portal has registered a patient
    And the portal has renamed the patient
    When the portal GETs the patient
    Then the read answers 200 with the patient's current version and its ETag

  @req:KT2-REST-READ
  Scenario: A read of an id that was never created answers 404 with an OperationOutcome
    When the portal GETs a Patient id that was never created
    Then the voorziening answers 404 with an OperationOutcome

  @req:KT2-REST-VREAD
  Scenario: Every version stays readable after later updates
    Given the portal has registered a patient
    And the portal has renamed the patient
    And the portal has renamed the patient
    When the portal GETs every version of the patient by its _history URL
    Then each version answers as it was written, with its own versionId

  @req:KT2-REST-UPDATE
  Scenario: An update with a fresh If-Match stores a new version
    Given the portal has registered a patient
    When the portal PUTs a new name for the patient with If-Match of its current version
    Then the update answers 200 with versionId 2 and ETag W/"2"
    And a read of the patient answers version 2 with the new name

  @req:KT2-REST-DELETE
  Scenario: A delete answers 200 or 204 and the resource is gone
    Given the portal has registered a practitioner
    When the portal DELETEs the practitioner
    Then the delete answers 200 with an OperationOutcome or 204 without a body
    And neither a read nor a search by _id finds the practitioner any more

  @req:KT2-REST-GONE
  Scenario: A read of a deleted resource answers 410 Gone, not 404
    Given the portal has registered a practitioner
    And the portal has deleted the practitioner
    When the portal GETs the practitioner
    Then the voorziening answers 410

  @req:KT2-REST-HISTORY
  Scenario: The history lists every version, the deletion included, newest first
    Given the portal has registered a practitioner
    And the portal has renamed the practitioner
    And the portal has deleted the practitioner
    When the portal GETs the practitioner's _history
    Then the history Bundle lists the DELETE, version 2 and version 1, newest first
    And the history's DELETE entry carries no resource and version 1 still has the first name

  @req:KT2-REST-SERVER-ID
  Scenario: An id in the body of a create is not kept
    When the portal POSTs a new practitioner with an id of its own in the body
    Then the create answers 201 with an id the server chose
    And no practitioner exists under the id the portal chose

  @req:KT2-REST-SERVER-ID
  Scenario: A PUT to an id that was never created is refused and stores nothing
    When the portal PUTs a practitioner to an id that was never created
    Then the voorziening refuses it with 400, 404, 405, 409, 412 or 422
    And no practitioner exists under the id the portal chose

  @req:KT2-REST-MEDIA
  Scenario Outline: A body labelled <content type> is refused and not stored
    When the portal POSTs a new practitioner as JSON labelled "<content type>"
    Then the voorziening refuses it with 415 or 400
    And no practitioner with the identifier the portal sent was stored

    Examples:
      | content type                      |
      | text/plain                        |
      | application/x-www-form-urlencoded |
      | application/octet-stream          |

  @req:KT2-REST-MEDIA
  Scenario Outline: A read accepting only <accept> is refused
    Given the portal has registered a patient
    When the portal GETs the patient accepting "<accept>"
    Then the voorziening refuses it with 406, 400 or 415

    Examples:
      | accept          |
      | application/pdf |
      | image/png       |

  @req:KT2-REST-JSON-SYNTAX @invalid-request
  Scenario Outline: A create whose JSON <defect> is refused with 400 and nothing is stored
    When the portal POSTs a new practitioner whose JSON <defect>
    Then the voorziening refuses it with 400 and an OperationOutcome
    And no practitioner with the identifier the portal sent was stored

    Examples:
      | defect                  |
      | lacks its closing brace |
      | has a trailing comma    |
      | has single-quoted names |
      | is not UTF-8            |

  @req:KT2-REST-JSON-SYNTAX @invalid-request
  Scenario: An update whose JSON is cut short is refused with 400 and the resource stays as it was
    Given the portal has registered a patient
    When the portal PUTs the patient with a new name as JSON that lacks its closing brace
    Then the voorziening refuses it with 400 and an OperationOutcome
    And the patient still reads as version 1, unchanged

  @req:KT2-REST-OUTCOME @invalid-request
  Scenario Outline: A refused interaction (<request>) answers a 4xx with an OperationOutcome
    Given the portal has registered a patient
    When the portal sends <request>
    Then the voorziening refuses it with a 4xx and an OperationOutcome that names the problem

    Examples:
      | request                                           |
      | a read of an unknown resource type                |
      | a read of a Patient id that was never created     |
      | a strict search with an unknown parameter         |
      | an update of the patient without If-Match         |
      | an update of the patient under another id         |
      | a Patient body to the Practitioner endpoint       |
      | a create of a Patient with an unknown gender code |

  @req:KT2-REST-CASCADE
  Scenario: A DELETE with _cascade=delete removes the resource and what refers to it
    Given the portal has registered a patient
    And the portal has registered a care team for the patient
    When the portal DELETEs the patient with _cascade=delete
    Then the patient and its care team are both gone

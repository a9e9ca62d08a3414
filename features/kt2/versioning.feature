@role:portal
Feature: Versioning: ETags, If-Match and concurrent updates
  KT2 uses optimistic locking (TOP-KT-002 eis 3-4, TOP-KT-012a; kt2-protocol.md §4.3): every answer with a
  resource carries ETag W/"<meta.versionId>", every PUT must carry If-Match with the version it changes, and
  a DELETE with If-Match is checked.  A missing or stale If-Match is refused with 409 or 412 (both allowed,
  §8.1) and stores nothing; of two applications updating the same version at once exactly one wins.

  @req:KT2-VER-IF-MATCH-REQUIRED
  Scenario: A PUT without If-Match is refused and nothing is stored
    Given the portal has registered a patient
    When the portal PUTs a new name for the patient without If-Match
    Then the voorziening refuses it with 409 or 412
    And the patient still reads as version 1, unchanged

  @req:KT2-VER-STALE
  Scenario: A PUT with a stale If-Match is refused and nothing is stored
    Given the portal has registered a patient
    And the portal has renamed the patient
    When the portal PUTs a new name for the patient with If-Match of version 1
    Then the voorziening refuses it with 409 or 412
    And the patient still reads as version 2, unchanged

  @req:KT2-VER-ETAG
  Scenario: Create, read and every update carry ETag W/"<versionId>", counting up
    Given the portal has registered a patient
    When the portal GETs the patient
    And the portal PUTs a new name for the patient with If-Match of its current version
    And the portal PUTs a new name for the patient with If-Match of its current version
    Then the create, the read and each update answered ETag W/"n" matching meta.versionId, from 1 to 3

  @req:KT2-VER-DELETE-IF-MATCH
  Scenario: A DELETE with a stale If-Match is refused and the resource stays
    Given the portal has registered a practitioner
    And the portal has renamed the practitioner
    When the portal DELETEs the practitioner with If-Match of version 1
    Then the voorziening refuses it with 409 or 412
    And the practitioner still reads as version 2, unchanged

  @req:KT2-VER-CONCURRENT @role:module
  Scenario: The portal and the module update the same version at once: exactly one wins
    Given the portal has assigned the activity to the patient as a task
    When the portal and the module update the same version of the task at the same moment, 3 times over
    Then each time exactly one update wins and the other is refused with 409 or 412
    And the task reads as the last winner's version, one version per round
    And the bench recorded every concurrent update with the status its application received

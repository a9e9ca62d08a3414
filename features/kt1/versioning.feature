@kt1 @versioning
Feature: Resource versions and 409 conflicts (KT1.3.5 optimistic locking)
  The server gives every resource a new version each time a message carries it.  A sender must quote the
  latest version of the focal resource it updates (in MessageHeader.data and the entry's self link); a stale
  or missing version is refused with 409 Conflict and an OperationOutcome whose text clients compare exactly.
  Non-focal resources may be sent without a version, but a stale one is refused too.  A refused message
  changes nothing and reaches nobody; the sender recovers by taking the latest version and sending again.

  Background:
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient

  @req:KT1-VER-NO-FOCAL-VERSION @req:KT1-VER-OUTCOME @req:KT1-VER-ATOMIC @role:portal
  Scenario: An update of the focal resource without its version is refused
    When the portal sends the care plan again without a version
    Then the server refuses the message because the care plan has no version
    And the OperationOutcome says "No version specified for the focal resource, message is rejected." about the care plan
    And the module does not receive the rejected message

  @req:KT1-VER-STALE-FOCAL @req:KT1-VER-OUTCOME @req:KT1-VER-ATOMIC @role:portal
  Scenario: An update quoting an outdated version of the focal resource is refused
    Given the portal has updated the care plan
    When the portal sends the care plan again quoting its first version
    Then the server refuses the message because the care plan version is stale
    And the OperationOutcome says "The specified resource version is not correct" about the care plan
    And the module does not receive the rejected message

  @req:KT1-VER-STALE-NON-FOCAL @req:KT1-VER-OUTCOME @role:portal
  Scenario: A non-focal resource quoting an outdated version is refused
    Given the portal has updated the patient
    When the portal sends the care plan quoting the patient's first version
    Then the server refuses the message because the patient version is stale
    And the OperationOutcome says "The specified resource version is not correct" about the patient

  @req:KT1-MSG-ACCEPT @req:KT1-VER-NON-FOCAL-UNVERSIONED @role:portal
  Scenario: A non-focal resource may be sent without a version
    When the portal sends the care plan with the patient but without the patient's version
    Then the server accepts the message

  @req:KT1-VER-INCREASING @role:portal
  Scenario: Every new version sorts after the previous one
    When the portal updates the care plan twice
    Then every version the server minted for the care plan sorts after the previous one

  @req:KT1-MSG-ACCEPT @req:KT1-VER-RECOVERY @req:KT1-VER-STALE-FOCAL @role:portal @role:module
  Scenario: A sender with an outdated version recovers by taking the latest version and sending again
    Given the module has received the care plan
    And the module has updated the care plan
    When the portal sends its change to the care plan
    Then the server refuses the message because the care plan version is stale
    When the portal takes the latest version of the care plan from its mailbox
    And the portal sends its change to the care plan
    Then the server accepts the message
    And the module receives the portal's change

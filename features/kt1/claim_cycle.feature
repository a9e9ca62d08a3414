@kt1 @claim
Feature: The claim cycle: claim, process, acknowledge
  An application takes its messages one at a time with the named query MessageHeader.GetNextNewAndClaim: the
  oldest New message is marked Claimed and handed out as one complete message bundle (never with a `next`
  link).  The application then acknowledges it on the header's self link: Success, Failed with an exception
  text, or New to put it back.  Only the processing status changes.  A claim that is never acknowledged
  expires and the message becomes New again; after the maximum number of expired claims (five, says the
  documentation, unless the target declares another limit) it is parked as MaximumRetriesExceeded.  A newer
  message about the same focal resource replaces an older unclaimed one.

  Background:
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient

  @req:KT1-CLAIM-NEXT @req:KT1-CLAIM-NO-NEXT @role:module
  Scenario: The module claims the care plan message: one complete message, now Claimed
    When the module claims its next new message for the patient
    Then the claim returns the care plan message complete
    And the claim answer has no next link
    And the module's mailbox shows the care plan message as Claimed

  @req:KT1-CLAIM-ONCE @req:KT1-CLAIM-EMPTY @role:module
  Scenario: A claimed message is not handed out twice
    Given the module has claimed the care plan message
    When the module claims its next new message for the patient
    Then the claim does not hand out the care plan message again
    And the claim returns no message

  @req:KT1-CLAIM-ORDER @role:module
  Scenario: Messages are claimed oldest first
    Given the portal has sent 2 more care plans for the patient
    When the module claims its next new message for the patient
    Then the claim returns the first care plan message

  @req:KT1-CLAIM-FILTER @role:module
  Scenario: A claim can be limited to one event
    Given the portal has sent a user message for the patient
    When the module claims its next new CreateOrUpdateUserMessage message for the patient
    Then the claim returns the user message

  @req:KT1-ACK-SUCCESS @role:module
  Scenario: The module acknowledges the message as Success
    Given the module has claimed the care plan message
    When the module acknowledges the message as Success
    Then the acknowledgement is accepted
    And the module's mailbox shows the care plan message as Success
    And the module's next claim for the patient returns no message

  @req:KT1-ACK-FAILED @role:module
  Scenario: The module reports a message it cannot process as Failed, with the reason
    Given the module has claimed the care plan message
    When the module acknowledges the message as Failed because "Broken resource: StartDate required but missing"
    Then the acknowledgement is accepted
    And the module's mailbox shows the care plan message as Failed with the exception "Broken resource: StartDate required but missing"

  @req:KT1-ACK-NEW @role:module
  Scenario: Acknowledging New puts the message back for a later claim
    Given the module has claimed the care plan message
    When the module acknowledges the message as New
    Then the acknowledgement is accepted
    And the module's mailbox shows the care plan message as New
    And the module's next claim for the patient returns the care plan message again

  @req:KT1-ACK-HISTORYLESS @role:module
  Scenario: An acknowledgement may use the history-less MessageHeader URL
    Given the module has claimed the care plan message
    When the module acknowledges the message as Success on its history-less URL
    Then the acknowledgement is accepted
    And the module's mailbox shows the care plan message as Success

  # @invalid-request: the ack deliberately carries a tampered header (identifier, source, no Patient extension)
  @req:KT1-ACK-ONLY-STATUS @role:module @invalid-request
  Scenario: An acknowledgement changes only the processing status
    Given the module has claimed the care plan message
    When the module acknowledges the message as Success with other header fields changed
    Then the acknowledgement is accepted
    And the module's copy of the care plan message still has its original header

  @req:KT1-CLAIM-EXPIRY @role:module @role:server @slow
  Scenario: A claim that is not acknowledged in time expires and the message is New again
    Given the target expires unacknowledged claims quickly
    And the module has claimed the care plan message
    When the claim timeout has passed
    Then the module's mailbox shows the care plan message as New
    And the module's next claim for the patient returns the care plan message again

  @req:KT1-CLAIM-EXPIRY @req:KT1-CLAIM-MAX-RETRIES @role:module @role:server @slow
  Scenario: After the last allowed expired claim the message is MaximumRetriesExceeded
    Given the target expires unacknowledged claims quickly
    When the module lets its claim on the care plan message expire as often as retries are allowed
    Then the module's mailbox shows the care plan message as MaximumRetriesExceeded
    And the module's next claim for the patient returns no message

  @req:KT1-MSG-REPLACED @role:portal @role:module @role:server
  Scenario: A newer message about the same care plan replaces the unclaimed older one
    When the portal updates the care plan
    Then the module's mailbox shows the first care plan message as ReplacedByNewVersion
    And the module's next claim for the patient returns the updated care plan message

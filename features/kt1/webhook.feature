@kt1 @webhook
Feature: Webhook notification of new messages
  Instead of polling, an application may register a webhook URL.  When a message is queued for it, the server
  POSTs an empty body to that URL with the event (`Category`), the message's correlation id
  (`KoppeltaalMessageIdentifier` = MessageHeader.identifier) and the application's shared secret
  (`X-Koppeltaal-Secret`); the application then claims the message as usual.

  These scenarios need a target on which the observer (subscribed to CreateOrUpdatePatient) has the bench's
  webhook receiver registered (`ktbench run` arranges this for the embedded reference server); other targets
  skip them.

  @req:KT1-HOOK-NOTIFY @req:KT1-HOOK-SECRET @req:KT1-MSG-ACCEPT @role:portal @role:observer @role:server
  Scenario: The observer's webhook announces a new patient, whom the observer then claims
    Given the target notifies the observer's webhook
    And a new patient known to the portal
    When the portal sends a CreateOrUpdatePatient message about the patient
    Then the server accepts the message
    And the observer's webhook is notified of the message with its event and the shared secret
    And the observer claims the announced message

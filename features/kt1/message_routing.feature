@kt1 @routing
Feature: Every message event reaches its subscribers intact, and nobody else
  Koppeltaal routes a message only within the sender's domain and only to the application instances that
  are subscribed to its event - the sender included.  The Mailbox answers with one MessageHeader that echoes
  the request and names the new version of every resource; the delivered copy carries the resources unchanged,
  with MessageHeader.data pointing at the focal resource's versioned self link.

  Preconditions on the target (as in the reference server's default data): the portal is subscribed to every
  event; the module to CreateOrUpdatePatient, -Practitioner, -RelatedPerson, -CarePlan, -UserMessage and
  UpdateCarePlanActivityStatus; the observer only to CreateOrUpdatePatient; the other domain's portal to every
  event and the other domain's module to CreateOrUpdateCarePlan.

  Background:
    Given a new patient known to the portal

  @req:KT1-MSG-ACCEPT @req:KT1-MSG-REPLY-ECHO @req:KT1-MSG-REPLY-DATA @req:KT1-ROUTE-SUBSCRIBED
  @req:KT1-ROUTE-CONTENT @req:KT1-ROUTE-DOMAIN @role:portal @role:module
  Scenario Outline: <event> sent by the <sender> reaches the <receiver> intact
    When the <sender> sends a <event> message about the patient
    Then the server accepts the message
    And the reply confirms the message and the version of every resource
    And the <receiver> receives the message with its content intact
    And the other domain's portal does not receive the message

    Examples:
      | event                                | sender | receiver |
      | CreateOrUpdatePatient                | portal | module   |
      | CreateOrUpdatePractitioner           | portal | module   |
      | CreateOrUpdateRelatedPerson          | portal | module   |
      | CreateOrUpdateCarePlan               | portal | module   |
      | CreateOrUpdateUserMessage            | portal | module   |
      | UpdateCarePlanActivityStatus         | module | portal   |
      | CreateOrUpdateCarePlanActivityResult | module | portal   |
      | CreateOrUpdateUserMessage            | module | portal   |
      | CreateOrUpdateActivityDefinition     | module | portal   |

  @req:KT1-MSG-ACCEPT @req:KT1-ROUTE-UNSUBSCRIBED @role:portal @role:module @role:observer
  Scenario Outline: <event> is not delivered to the observer, which is not subscribed to it
    When the <sender> sends a <event> message about the patient
    Then the server accepts the message
    And the observer does not receive the message

    Examples:
      | event                                | sender |
      | CreateOrUpdatePractitioner           | portal |
      | CreateOrUpdateRelatedPerson          | portal |
      | CreateOrUpdateCarePlan               | portal |
      | CreateOrUpdateUserMessage            | portal |
      | UpdateCarePlanActivityStatus         | module |
      | CreateOrUpdateCarePlanActivityResult | module |
      | CreateOrUpdateActivityDefinition     | module |

  @req:KT1-MSG-ACCEPT @req:KT1-ROUTE-SUBSCRIBED @role:portal @role:observer
  Scenario: The observer receives the one event it is subscribed to
    When the portal sends a CreateOrUpdatePatient message about the patient
    Then the server accepts the message
    And the observer receives the message with its content intact

  @req:KT1-MSG-ACCEPT @req:KT1-ROUTE-SENDER @role:portal
  Scenario: The sender receives its own copy of an event it is subscribed to
    When the portal sends a CreateOrUpdateCarePlan message about the patient
    Then the server accepts the message
    And the portal receives the message with its content intact

  @req:KT1-MSG-ACCEPT @req:KT1-ROUTE-DOMAIN @req:KT1-ROUTE-SUBSCRIBED @role:portal @role:module
  Scenario: Messages stay within their own domain, in both directions
    Given a new patient known to the other domain's portal
    When the other domain's portal sends a CreateOrUpdateCarePlan message about the patient
    Then the server accepts the message
    And the other domain's module receives the message with its content intact
    And the module does not receive the message
    And the portal does not receive the message

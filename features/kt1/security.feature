@kt1 @security
Feature: Authentication, domain isolation and bad input
  Every KT1 call is made by an application instance with its own Basic credentials, and the credentials decide
  the domain.  The server refuses wrong credentials with 401, refuses a bundle that names another domain than
  the credentials', and never lets an application read, claim or acknowledge messages of another application
  or domain.  Malformed or unsupported input is refused with a 4xx and an OperationOutcome, never a 500.
  Scenarios tagged @invalid-request send such input on purpose: the profile findings on what they send are
  reported, but do not make the scenario broken.

  @req:KT1-SEC-BASIC @role:portal @role:module
  Scenario Outline: A wrong password is refused when the <actor> <action>
    When the <actor> <action> with a wrong password
    Then the request is refused as unauthorized

    Examples:
      | actor  | action                        |
      | portal | sends a message               |
      | module | searches its mailbox          |
      | module | claims a message              |
      | module | lists the ActivityDefinitions |
      | portal | launches the module           |

  @req:KT1-SEC-BASIC @role:portal
  Scenario: An unknown application is refused
    When an unknown application searches its mailbox
    Then the request is refused as unauthorized

  @req:KT1-SEC-BASIC @role:portal
  Scenario: A message without credentials is refused
    When a client without credentials sends a message to the Mailbox
    Then the request is refused as unauthorized

  @req:KT1-SEC-WRONG-DOMAIN @role:portal @invalid-request
  Scenario: A bundle that names another domain than the credentials' is refused
    Given a new patient known to the portal
    When the portal sends a care plan for the patient labelled with the other domain
    Then the message is refused as forbidden
    And nobody in the patient's domain receives the refused message
    And the other domain's portal does not receive the message

  @req:KT1-SEC-CROSS-DOMAIN-READ @role:module
  Scenario: An application of another domain cannot read a message
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the other domain's module looks up the module's copy of the care plan message
    Then the lookup returns no message

  @req:KT1-SEC-CROSS-APP-READ @role:observer
  Scenario: Another application of the same domain cannot read the module's copy
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the observer looks up the module's copy of the care plan message
    Then the lookup returns no message

  @req:KT1-ROUTE-DOMAIN @req:KT1-SEC-CROSS-DOMAIN-CLAIM @role:module
  Scenario: An application of another domain cannot claim the patient's messages
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the other domain's module claims its next new message for the patient
    Then the claim returns no message of this domain

  @req:KT1-SEC-CROSS-DOMAIN-ACK @role:module
  Scenario: An application of another domain cannot acknowledge a message
    Given a new patient known to the portal
    And the portal has sent a care plan for the patient
    When the other domain's module acknowledges the module's copy of the care plan message as Success
    Then the acknowledgement is refused
    And the module's mailbox shows the care plan message as New

  @req:KT1-SEC-BAD-INPUT @role:portal @invalid-request
  Scenario: A message that is not valid JSON is refused with 400, not a server error
    When the portal sends a message that is not valid JSON
    Then the server refuses it with 400 and an OperationOutcome

  @req:KT1-MSG-UNSUPPORTED-TYPE @role:portal @invalid-request
  Scenario: A message carrying a resource type Koppeltaal does not support is refused
    Given a new patient known to the portal
    When the portal sends a message carrying a Condition resource
    Then the server refuses it saying "The resource type 'Condition' is not supported"

  @req:KT1-CORS @role:module
  Scenario: Browser-based modules may call the server cross-origin
    When a browser page asks whether it may post to the Mailbox from another origin
    Then the server allows the cross-origin call

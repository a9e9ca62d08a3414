@role:domain-admin @role:application-admin
Feature: Connection approval and instance statuses at the domain admin application
  An application joins a domain through the domain admin application (the Itzos beheerapplicatie, seed 001
  chapters 3-5): its application admin files a connection request with the instance's JWKS URI, the domain's
  admins are e-mailed, and a domain admin accepts it with one role (the voorziening then issues the client id
  and makes Device/<client id>) or rejects it with a reason.  Only an active ("Actief") instance gets tokens;
  "In onderhoud" can become active again, "Afgesloten" is final, and every change needs a reason.  Admins log
  in with username and password; too many wrong passwords block the account until it is unblocked.
  Each scenario makes its own instance, so the bench's shared portal and module are never changed.

  @req:KT2-ADMIN-LOGIN
  Scenario: An admin logs in with the right password only
    When the application admin logs in to the admin application with their own password
    And the application admin logs in to the admin application with a wrong password
    Then the admin application opened a session for the right password
    And the admin application refused the wrong password without a session

  @req:KT2-ADMIN-LOCKOUT
  Scenario: Repeated wrong passwords block the account, also for the right one, until the domain admin unblocks it
    Given the lock-out account is not blocked and logs in with its password
    When the lock-out account logs in with wrong passwords until it is blocked
    And the lock-out account logs in with its right password
    Then the admin application refuses the blocked account even its right password
    When the domain admin unblocks the lock-out account
    Then the lock-out account logs in with its right password again

  @req:KT2-ADMIN-REQUEST-PENDING
  Scenario: A filed connection request waits for the domain admin
    Given a new module instance that publishes its own JWKS and is not yet known to the domain
    When the application admin files a connection request for the new instance
    Then the connection request waits as pending without a client id
    And the domain has no instance that uses the new instance's JWKS
    And the new instance gets no token

  @req:KT2-ADMIN-REQUEST-NOTIFY
  Scenario: The domain's admins are e-mailed about a new connection request
    Given a new module instance that publishes its own JWKS and is not yet known to the domain
    When the application admin files a connection request for the new instance
    Then the domain admin receives the e-mail "Nieuwe connectieaanvraag voor domein <domain> op <environment>" about the connection request

  @req:KT2-ADMIN-ACCEPT @role:module
  Scenario: An accepted request registers an active instance whose tokens carry its role
    Given a new module instance that publishes its own JWKS and is not yet known to the domain
    And the application admin has filed a connection request for the new instance
    When the domain admin accepts the connection request with the eHealth module role
    Then the connection request is accepted with the eHealth module role and a client id
    And the domain lists the new instance as "Actief" with the eHealth module role
    And the application admin receives the e-mail "Connectieaanvraag geaccepteerd" naming the client id
    And the new instance gets a Bearer token whose scope is the eHealth module role's

  @req:KT2-ADMIN-DEVICE @role:portal
  Scenario: An accepted instance is Device/<client id> in the FHIR store
    Given a new module instance that publishes its own JWKS and is not yet known to the domain
    And the application admin has filed a connection request for the new instance
    When the domain admin accepts the connection request with the eHealth module role
    Then the FHIR store has the new instance's Device as an active KT2Device with its client id as identifier

  @req:KT2-ADMIN-REJECT @role:portal
  Scenario: A rejected request registers nothing and its reason is e-mailed
    Given a new module instance that publishes its own JWKS and is not yet known to the domain
    And the application admin has filed a connection request for the new instance
    When the domain admin rejects the connection request with a reason
    Then the connection request is rejected with the reason and without a client id
    And the domain has no instance that uses the new instance's JWKS
    And the FHIR store has no Device named after the new instance
    And the new instance gets no token
    And the application admin receives the e-mail "Connectieaanvraag geweigerd" quoting the reason

  @req:KT2-ADMIN-STATUS-MAINTENANCE @req:KT2-TOKEN-APPROVED @role:portal
  Scenario: An instance "In onderhoud" gets no token and its Device is inactive
    Given a freshly registered portal instance that has had a token
    When the domain admin puts that instance "In onderhoud" with a reason
    Then the status change is accepted and the instance is "In onderhoud"
    When that instance requests a token with a valid assertion
    Then the token endpoint refuses it as invalid_client
    And the FHIR store shows that instance's Device as "inactive"

  @req:KT2-ADMIN-STATUS-MAINTENANCE @role:portal
  Scenario Outline: A status change needs a reason
    Given a freshly registered portal instance that has had a token
    When the domain admin puts that instance "In onderhoud" <reason>
    Then the status change is refused and that instance stays "Actief"

    Examples:
      | reason              |
      | without a reason    |
      | with a blank reason |

  @req:KT2-ADMIN-STATUS-ACTIVE @role:portal
  Scenario: An instance back to "Actief" gets tokens again
    Given a freshly registered portal instance that has had a token
    And the domain admin has put that instance "In onderhoud" with a reason
    When the domain admin puts that instance "Actief" with a reason
    Then the status change is accepted and the instance is "Actief"
    When that instance requests a token with a valid assertion
    Then the token endpoint issues a Bearer token with expires_in and scope
    And the FHIR store shows that instance's Device as "active"

  @req:KT2-ADMIN-STATUS-CLOSED @req:KT2-TOKEN-APPROVED @role:portal
  Scenario: "Afgesloten" is final: no token, never active or in maintenance again
    Given a freshly registered portal instance that has had a token
    When the domain admin puts that instance "Afgesloten" with a reason
    Then the status change is accepted and the instance is "Afgesloten"
    When that instance requests a token with a valid assertion
    Then the token endpoint refuses it as invalid_client
    And the FHIR store shows that instance's Device as "inactive"
    When the domain admin tries to make that instance "Actief" and then "In onderhoud" again
    Then both changes are refused and that instance stays "Afgesloten"

  @req:KT2-ADMIN-STATUS-CLOSED @role:portal
  Scenario: An instance in maintenance can be closed for good
    Given a freshly registered portal instance that has had a token
    And the domain admin has put that instance "In onderhoud" with a reason
    When the domain admin puts that instance "Afgesloten" with a reason
    Then the status change is accepted and the instance is "Afgesloten"
    And the FHIR store shows that instance's Device as "inactive"
    When the domain admin tries to make that instance "Actief" and then "In onderhoud" again
    Then both changes are refused and that instance stays "Afgesloten"

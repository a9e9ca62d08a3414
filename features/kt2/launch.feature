Feature: Launch: the portal opens a module for a task with an HTI launch token, the module checks it
  The portal finds the module's launch URL through the store (Task -> ActivityDefinition -> Endpoint),
  signs an HTI launch token with its own key (kt2-protocol.md §2.2: iss = the portal, aud = the module's
  Device, sub = the user, resource = the Task, exp at most five minutes after iat, a fresh jti, kid) and
  form-POSTs `launch` and `iss` (the FHIR base) to that URL (§2.3).  The module then either introspects the
  token (path A, TOP-KT-021, no personal data) or runs the SMART app launch (path B): authorize with PKCE
  S256, the fixed scope `launch openid fhirUser`, a state and aud = iss; the user logs in at the domain's
  identity provider; the code, traded with the verifier, gives an id_token and the NOOP access token, and
  the module reads the Task with its own backend-services token.  Every defect must be refused; where a
  refusal may come as a 400 or as a redirect to the module with `error` (RFC 6749 §4.1.2.1), both count.

  Background:
    Given the module has published an activity with its launch endpoint

  @req:KT2-LAUNCH-ENDPOINT @role:portal @role:module
  Scenario: The portal's launch reaches the module at the Endpoint address of its ActivityDefinition
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    Then the module receives launch and iss at the launch URL of its Endpoint, iss being the FHIR base

  # -- path A: token introspection ---------------------------------------------------------------------------
  @req:KT2-INTRO-ACTIVE @role:portal @role:module
  Scenario: Introspecting a valid launch token addressed to the module shows it active with its claims
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module introspects the launch token
    Then the introspection answers active true with the claims the portal signed

  @req:KT2-INTRO-INACTIVE @req:KT2-LAUNCH-HTI-JTI @role:portal @role:module
  Scenario: A launch token introspected once is inactive the second time
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module introspects the launch token
    And the module introspects the launch token again
    Then the introspection answers active false

  @req:KT2-INTRO-INACTIVE @req:KT2-LAUNCH-HTI-EXP @role:portal @role:module
  Scenario Outline: An expired or too long-lived launch token is inactive
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that <defect>
    And the module introspects the launch token
    Then the introspection answers active false

    Examples:
      | defect                        |
      | expired a minute ago          |
      | lives longer than five minutes |

  @req:KT2-INTRO-INACTIVE @req:KT2-LAUNCH-HTI-AUD @role:portal @role:module @role:domain-admin
  Scenario: A launch token addressed to another module is inactive for this one
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that is addressed to another module
    And the module introspects the launch token
    Then the introspection answers active false

  @req:KT2-INTRO-INACTIVE @req:KT2-LAUNCH-HTI-SIGNATURE @role:portal @role:module
  Scenario: A launch token not signed with the portal's published key is inactive
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that is signed with a key the portal never published
    And the module introspects the launch token
    Then the introspection answers active false

  @req:KT2-INTRO-CALLER @role:portal @role:module
  Scenario Outline: Introspection without the caller's valid client assertion is refused
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module introspects the launch token <caller>
    Then the introspection answers 401

    Examples:
      | caller                                             |
      | without a client assertion                         |
      | with a client assertion signed by a key it never published |
      | with a client assertion that expired a minute ago  |

  # -- path B: the SMART app launch ----------------------------------------------------------------------------
  @req:KT2-LAUNCH-AUTHORIZE @req:KT2-LAUNCH-STATE @role:portal @role:module @role:idp-user
  Scenario: The SMART app launch brings the user back to the module with a code and the state it sent
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    Then authorize sent the user to the identity provider, not straight back to the module
    And the module's redirect URI receives a code and the state it sent

  @req:KT2-LAUNCH-TOKEN @role:portal @role:module @role:idp-user
  Scenario: The code exchange answers the id_token, the NOOP access token and the launch context
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    And the module exchanges the code with its code_verifier
    Then the code exchange answers an id_token for the module about the launching user, signed by the domain
    And the code exchange answers the access token NOOP, the launch scope and the launch context of the token
    And the module reads the launch's Task with its own backend-services token

  @req:KT2-AT-NOOP @role:portal @role:module @role:idp-user
  Scenario: The NOOP access token of the code exchange does not open the store
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    And the module exchanges the code with its code_verifier
    And the module reads the launch's Task with the access token of the code exchange
    Then the store answers 401 with WWW-Authenticate Bearer

  @req:KT2-LAUNCH-TOKEN @role:portal @role:module @role:idp-user
  Scenario: An authorization code works once
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    And the module exchanges the code with its code_verifier
    And the module exchanges the same code again
    Then the code exchange is refused

  @req:KT2-LAUNCH-SCOPE @role:portal @role:module
  Scenario Outline: authorize accepts only the scope launch openid fhirUser
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch and scope "<scope>"
    Then authorize refuses the launch

    Examples:
      | scope                                |
      | launch openid                        |
      | openid fhirUser                      |
      | launch openid fhirUser system/*.cruds |

  @req:KT2-LAUNCH-PKCE @role:portal @role:module @role:idp-user
  Scenario Outline: A launch without PKCE S256 is refused
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch and <pkce>
    Then the launch is refused at authorize or, at the latest, at the code exchange

    Examples:
      | pkce                           |
      | code_challenge_method plain    |
      | no code_challenge              |

  @req:KT2-LAUNCH-PKCE @role:portal @role:module @role:idp-user
  Scenario: The code exchange with another code_verifier is refused
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    And the module exchanges the code with another code_verifier
    Then the code exchange is refused

  @req:KT2-LAUNCH-REDIRECT @role:portal @role:module
  Scenario Outline: authorize refuses a redirect_uri the module did not register, without going there
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch and <redirect>
    Then authorize answers 400 without redirecting to that redirect_uri

    Examples:
      | redirect                                      |
      | a redirect_uri on another host                |
      | a redirect_uri on another path of its own host |

  @req:KT2-LAUNCH-IDENTITY @role:portal @role:module @role:idp-user
  Scenario: A user whose identity is no identifier of the HTI sub is refused after the identity provider
    Given the portal has registered a patient without the identity provider user's identifier
    And the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the IdP user logs in at the identity provider
    Then the launch ends with 403 access_denied and no code

  @req:KT2-LAUNCH-HTI-AUD @role:portal @role:module @role:domain-admin
  Scenario: authorize refuses a launch token addressed to another module
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that is addressed to another module
    And the module sends the user to authorize with the launch
    Then authorize refuses the launch

  @req:KT2-LAUNCH-HTI-EXP @role:portal @role:module
  Scenario Outline: authorize refuses an expired or too long-lived launch token
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that <defect>
    And the module sends the user to authorize with the launch
    Then authorize refuses the launch

    Examples:
      | defect                         |
      | expired a minute ago           |
      | lives longer than five minutes |

  @req:KT2-LAUNCH-HTI-JTI @role:portal @role:module
  Scenario: authorize refuses a launch token used before
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module for the task
    And the module sends the user to authorize with the launch
    And the module sends the user to authorize again with the same launch token
    Then authorize refuses the launch

  @req:KT2-LAUNCH-HTI-SIGNATURE @role:portal @role:module
  Scenario: authorize refuses a launch token not signed with the portal's published key
    Given the portal has assigned the activity to the patient as a task
    When the portal launches the module with a launch token that is signed with a key the portal never published
    And the module sends the user to authorize with the launch
    Then authorize refuses the launch

  @req:KT2-LAUNCH-IDP-HINT @role:portal @role:module @role:idp-user
  Scenario: The launch token's idp_hint chooses the identity provider
    Given the portal has assigned the activity to the patient as a task
    And the identity provider the domain sends the patient to is known
    When the portal launches the module with a launch token whose idp_hint names that identity provider
    And the module sends the user to authorize with the launch
    Then authorize sends the user to the identity provider the idp_hint names
    When the IdP user logs in at the identity provider
    Then the module's redirect URI receives a code

@kt1 @sso
Feature: Single sign-on: launching a module for a patient (SMART on FHIR, KT1 flavour)
  The portal asks the server to launch the module for a patient (Launch, with its Basic credentials); the
  server redirects the browser to the module's launch URL with the issuer and a launch id.  The module asks
  Authorize for a code (scope `patient/*.read launch:<id>`, its own state value), trades the code for tokens at
  Token, and then reads that patient's messages - and only that patient's - with the Bearer access token.
  Codes are single use and short lived; refreshing hands out a new token pair and retires the old one.  A mobile
  app gets a one-time activation code instead of a redirect.

  Background:
    Given a new patient known to the portal

  @req:KT1-SSO-LAUNCH @req:KT1-SSO-LAUNCH-IDS @role:portal
  Scenario: The portal launches the module for the patient
    When the portal launches the module for the patient
    Then the server redirects to the module's launch URL with the issuer and a launch id
    And the redirect also names the application and the launch the way the Python connector expects

  @req:KT1-SSO-AUTHORIZE @req:KT1-SSO-STATE @role:module
  Scenario: The launched module is authorized and gets its own state back
    Given the portal has launched the module for the patient
    When the module asks for authorization of the launch with a state value
    Then the server redirects to the module's redirect URI with a code and the same state

  @req:KT1-META-JSON-CONTENT-TYPE @req:KT1-SSO-TOKEN @req:KT1-SSO-TOKEN-CONTEXT @role:module
  Scenario Outline: The module trades its code for tokens that carry the launch context (<how>)
    Given the portal has launched the module for the patient
    And the module has an authorization code for the launch
    When the module exchanges the code for a token using <how>
    Then the token answer holds a Bearer access token, a refresh token, an integer lifetime and the scope
    And the token answer names the patient, the user, the activity and the domain of the launch

    Examples:
      | how                                   |
      | GET, as the Python connector does     |
      | a POST form, as the documentation has |

  @req:KT1-SSO-CODE-SINGLE-USE @role:module
  Scenario: An authorization code can be used only once
    Given the portal has launched the module for the patient
    And the module has exchanged its authorization code for a token
    When the module exchanges the same code again
    Then the token request is refused

  @req:KT1-SSO-LAUNCH-ONCE @role:module
  Scenario: A launch can be authorized only once
    Given the portal has launched the module for the patient
    And the module has an authorization code for the launch
    When the module asks for authorization of the launch with a state value
    Then the authorization request is refused

  @req:KT1-SSO-CODE-EXPIRY @role:module @role:server @slow
  Scenario: An authorization code expires
    Given the target declares a short authorization code lifetime
    And the portal has launched the module for the patient
    And the module has an authorization code for the launch
    When the authorization code lifetime has passed
    And the module exchanges the code for a token
    Then the token request is refused

  @req:KT1-SSO-REFRESH @req:KT1-SSO-BEARER-ACCESS @role:module
  Scenario: Refreshing rotates the token pair and retires the old one
    Given the portal has sent a care plan for the patient
    And the module has a token for the patient
    When the module refreshes its token
    Then the module gets a new access token and a new refresh token
    And the old access token is refused
    And the old refresh token is refused
    And the new access token reads the patient's messages

  @req:KT1-META-JSON-CONTENT-TYPE @req:KT1-SSO-MOBILE @role:portal @role:module
  Scenario: A mobile app is launched with a one-time activation code
    When the portal asks for a mobile activation code for the patient
    Then the server answers with an activation code and its lifetime in days
    When the module asks for authorization with the activation code
    Then the server answers with an authorization code in JSON
    And the module exchanges it for a token naming the patient

  @req:KT1-SSO-MOBILE-ONCE @role:portal @role:module
  Scenario: An activation code works only once
    Given the portal has asked for a mobile activation code for the patient
    And the module has used the activation code
    When the module asks for authorization with the activation code again
    Then the authorization request is refused

  @req:KT1-SSO-BEARER-ACCESS @req:KT1-SSO-BEARER-PATIENT @role:module
  Scenario: A Bearer token reaches only its own patient's messages
    Given the portal has sent a care plan for the patient
    And the portal has sent a care plan for another patient
    And the module has a token for the patient
    When the module searches its mailbox with the token
    Then the search lists the patient's messages only
    And looking up the other patient's message with the token returns nothing
    And claiming with the token for the other patient returns no message

  @req:KT1-SSO-TOKEN-EXPIRY @role:module @role:server @slow
  Scenario: An expired access token is refused
    Given the target declares a short access token lifetime
    And the module has a token for the patient
    When the access token lifetime has passed
    And the module searches its mailbox with the token
    Then the request is refused as unauthorized because the token has expired

@kt1-apps
Feature: KT1 eHealth module under test: single sign-on from a launch
  The portal (played by the bench) launches the module for a patient; the bench then plays the user's browser:
  it follows the server's redirect to the module's launch URL, the module's redirect to Authorize and the
  server's redirect back to the module, which must trade the code at Token with its own client secret.

  @req:KT1-APP-MODULE-SSO-AUTHORIZE @role:module
  Scenario: The launched module asks Authorize for the launch
    Given the portal has launched the module for a new patient
    When the user's browser follows the launch to the module
    Then the module sent the browser to Authorize for its own client and the launch

  @req:KT1-APP-MODULE-SSO-TOKEN @role:module
  Scenario: The module completes the SSO flow with its own secret
    Given the portal has launched the module for a new patient
    When the user's browser follows the launch through the module and Authorize back to the module
    Then the module traded the code at Token with its own client secret and signed the user in

  @req:KT1-APP-MODULE-SSO-REUSED-CODE @role:module
  Scenario: The module refuses a reused authorization code
    Given the portal has launched the module for a new patient
    And the user has signed in to the module through a launch
    When the browser brings the same authorization code back to the module
    Then the module refuses it

  @req:KT1-APP-MODULE-SSO-ISS @role:module
  Scenario: The module refuses a launch from a server it does not know
    When a browser arrives at the module's launch URL with another server as issuer
    Then the module refuses the launch without sending the browser on

Feature: Portal under test: launching a module
  The portal launches the module for a Task (kt2-protocol.md §2.2-2.3): it finds the launch URL through
  Task -> ActivityDefinition -> Endpoint, signs an HTI launch token (iss = itself, aud = the module's Device,
  sub = the user, resource = the Task, exp at most five minutes after iat, a fresh jti, kid) and form-POSTs
  launch and iss to that URL.  The bench plays the module: its launch URL records what arrives, and the bench
  verifies the token against the portal's JWKS and has the voorziening introspect it.

  Background:
    Given the bench's module has published an activity
    And the portal has sent a new patient
    And the portal has assigned the activity to the patient

  @req:KT2-APP-PORTAL-LAUNCH-FORM @role:portal
  Scenario: The launch arrives as a form POST at the Endpoint address
    When the portal launches the task
    Then the module receives a form POST with launch and iss at the launch URL of its Endpoint

  @req:KT2-APP-PORTAL-HTI-CLAIMS @role:portal
  Scenario: The launch token carries the claims of an HTI launch
    When the portal launches the task
    Then the launch token names the portal, the module's Device, the patient and the task, and lives at most 5 minutes

  @req:KT2-APP-PORTAL-HTI-CLAIMS @role:portal
  Scenario: Every launch token has a jti of its own
    When the portal launches the task twice
    Then no two launch tokens of the portal share a jti

  @req:KT2-APP-PORTAL-HTI-SIGNED @role:portal
  Scenario: The launch token is signed with a published key and is active at the voorziening
    When the portal launches the task
    Then the launch token is signed with a key of the portal's JWKS and the voorziening finds it active

Feature: eHealth module under test: path B, the SMART app launch
  A module that needs to know its user takes path B (kt2-protocol.md §2.5): it answers the portal's launch by
  sending the browser to the voorziening's authorize with the launch token, the fixed scope
  `launch openid fhirUser`, its registered redirect URI, a state, aud = iss and a PKCE S256 challenge.  The
  bench plays the browser and the user logging in at the voorziening's identity provider; back at the
  module's redirect URI the module trades the code with its code_verifier and client assertion for an id_token
  and the NOOP access token, which it must never use on the store.  These scenarios skip for a module whose
  target says launch_path = "A".

  Background:
    Given the module takes path B
    And the module has published its activity
    And the bench's portal has assigned the activity to a patient as a task

  @req:KT2-APP-MODULE-PATH-B @role:module
  Scenario: Path B: the module sends the browser to authorize with PKCE S256, the fixed scope and a state
    When the bench's portal launches the module for the task
    Then the module sent the browser to authorize with its client id, its redirect URI, the fixed scope, a state, aud and a PKCE S256 challenge

  @req:KT2-APP-MODULE-PATH-B @role:module
  Scenario: Path B: the module trades the code with the verifier of its challenge
    When the bench's portal launches the module for the task
    Then the module traded the code at the token endpoint with the code_verifier of its S256 challenge, its redirect URI and a client assertion

  @req:KT2-APP-MODULE-PATH-B @req:KT2-APP-MODULE-OWN-TOKEN @role:module
  Scenario: Path B: the module never uses the NOOP access token on the store
    When the bench's portal launches the module for the task
    Then every request of the module to the store carries its own access token

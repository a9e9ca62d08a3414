Feature: Backend-services tokens: an application trades a signed client assertion for a Bearer token
  SMART backend services with private_key_jwt (RFC 7523; kt2-protocol.md §1.3): the application signs an
  assertion with its own key (iss = sub = client id, aud = the token endpoint, exp at most five minutes
  ahead, a fresh jti, the kid of a key in its JWKS) and posts it to the token endpoint.  Every defect in
  the assertion must be refused; the token opens the FHIR store until it expires.

  @req:KT2-TOKEN-ISSUE @role:portal
  Scenario: A valid assertion gets a Bearer token
    When the portal requests a token with a valid assertion
    Then the token endpoint issues a Bearer token with expires_in and scope

  @req:KT2-TOKEN-ALG @role:portal @role:domain-admin
  Scenario Outline: Every asymmetric algorithm the voorziening declares is accepted
    Given a portal instance that signs with <alg> is registered
    When that instance requests a token with a valid assertion
    Then the token endpoint issues a Bearer token with expires_in and scope

    Examples:
      | alg   |
      | RS256 |
      | RS384 |
      | RS512 |
      | ES256 |
      | ES384 |
      | ES512 |

  @req:KT2-TOKEN-JTI-REPLAY @role:portal
  Scenario: A replayed assertion is refused
    When the portal requests a token with a valid assertion
    And the portal sends the same assertion again
    Then the token endpoint refuses it as invalid_client

  @req:KT2-TOKEN-AUD @role:portal
  Scenario Outline: An assertion for another audience is refused
    When the portal requests a token with an assertion whose aud is <aud>
    Then the token endpoint refuses it as invalid_client

    Examples:
      | aud                       |
      | the FHIR base             |
      | another server's endpoint |

  @req:KT2-TOKEN-EXP @role:portal
  Scenario Outline: An assertion without a usable expiry is refused
    When the portal requests a token with an assertion that <expiry>
    Then the token endpoint refuses it as invalid_client

    Examples:
      | expiry               |
      | expired a minute ago |
      | expires in an hour   |
      | has no exp           |

  @req:KT2-TOKEN-SIGNATURE @role:portal
  Scenario: An assertion signed with another key under the registered kid is refused
    When the portal requests a token with an assertion signed by a key it never published
    Then the token endpoint refuses it as invalid_client

  @req:KT2-TOKEN-KID @role:portal
  Scenario Outline: An assertion whose kid is unknown is refused
    When the portal requests a token with an assertion <kid>
    Then the token endpoint refuses it as invalid_client

    Examples:
      | kid                             |
      | naming a kid it never published |
      | without a kid                   |

  @req:KT2-TOKEN-ASYMMETRIC @role:portal
  Scenario Outline: Symmetric and unsigned assertions are refused
    When the portal requests a token with an assertion <signed>
    Then the token endpoint refuses it as invalid_client

    Examples:
      | signed                                           |
      | signed HS256 with its public key as the secret   |
      | with alg none and no signature                   |

  @req:KT2-TOKEN-CLIENT @role:portal
  Scenario: An assertion of a client the domain does not know is refused
    When an unregistered client requests a token with a valid assertion
    Then the token endpoint refuses it as invalid_client

  @req:KT2-TOKEN-CLIENT @role:portal @role:module
  Scenario: An assertion whose sub names another client is refused
    When the portal requests a token with an assertion whose sub is the module
    Then the token endpoint refuses it as invalid_client

  @req:KT2-TOKEN-ASSERTION-TYPE @role:portal
  Scenario: A token request with the wrong client_assertion_type is refused
    When the portal requests a token with client_assertion_type "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    Then the token endpoint refuses it as invalid_client

  @req:KT2-TOKEN-GRANT-TYPE @role:portal
  Scenario: A token request with an unknown grant type is refused
    When the portal requests a token with grant_type "password"
    Then the token endpoint answers 400 unsupported_grant_type

  @req:KT2-TOKEN-JWT @role:portal
  Scenario Outline: A token request without a usable assertion is refused without a server error
    When the portal requests a token with <assertion>
    Then the token endpoint refuses the request as invalid_request or invalid_client

    Examples:
      | assertion                      |
      | no client_assertion            |
      | a client_assertion that is not a JWT |

  @req:KT2-TOKEN-SCOPE-ROLE @role:portal @role:module
  Scenario: The role decides the scope, whatever the client asks for
    When the module requests a token asking for scope "system/*.cruds"
    Then the token's scope is the eHealth module role's, not what it asked for

  @req:KT2-TOKEN-KEY-ROTATION @role:portal @role:domain-admin
  Scenario: A rotated key is picked up from the JWKS without registering again
    Given a portal instance that signs with RS512 is registered
    And that instance has used its key for a token
    When that instance publishes a new key and signs with its new kid
    Then the token endpoint issues a Bearer token with expires_in and scope

  @req:KT2-AT-REQUIRED @role:portal
  Scenario: FHIR interactions need a token
    When an unregistered client searches Patient without a token
    Then the store answers 401 with WWW-Authenticate Bearer

  @req:KT2-AT-FORGED @role:portal
  Scenario: An altered access token is refused
    When the portal searches Patient with its access token altered
    Then the store answers 401 with WWW-Authenticate Bearer

  @req:KT2-AT-NOOP @role:portal
  Scenario: The launch's NOOP access token never opens the store
    When the portal searches Patient with the access token "NOOP"
    Then the store answers 401 with WWW-Authenticate Bearer

  @req:KT2-AT-EXPIRED @role:portal
  Scenario: An expired access token is refused
    Given the portal holds an access token that has expired
    When the portal searches Patient with that expired token
    Then the store answers 401 with WWW-Authenticate Bearer

  @req:KT2-AT-DOMAIN @role:portal @role:other-domain-portal
  Scenario: A token of another domain is refused
    When the other domain's portal searches Patient at this domain with its own token
    Then the store answers 401 with WWW-Authenticate Bearer

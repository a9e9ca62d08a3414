Feature: Resource-origin and permissions: the creator's Device and the role decide who may do what
  The voorziening stamps every new resource with the resource-origin extension naming the Device of the
  application that created it (client id = Device id); applications never set or change it themselves
  (kt2-protocol.md §5.3).  The role of an application grants interactions per resource type, either on all
  resources (ALL) or only on those whose resource-origin is the application's own Device (OWN).  What the
  role does not grant is refused with 403; a search under an OWN scope is narrowed silently to the
  caller's own resources.  Nothing of one domain is visible or writable from another domain (TOP-KT-018).

  # -- resource-origin ------------------------------------------------------------------------------------------
  @req:KT2-RO-INJECT @role:portal @role:module
  Scenario Outline: A created resource carries its creator's Device as resource-origin
    When the <creator> creates a <type> without a resource-origin, as KT2 applications do
    Then the stored <type> names the <creator>'s Device as its resource-origin

    Examples: the portal
      | creator | type         |
      | portal  | Patient      |
      | portal  | Task         |
      | portal  | Subscription |

    Examples: the module
      | creator | type               |
      | module  | Endpoint           |
      | module  | ActivityDefinition |

  @req:KT2-RO-CLIENT-SET @role:portal @role:module
  Scenario Outline: A create whose body sets the resource-origin itself is refused with 400
    When the portal creates a Patient that claims <device> as its resource-origin
    Then the store refuses the resource-origin claim with 400 and stores no such Patient

    Examples:
      | device              |
      | its own Device      |
      | the module's Device |

  @req:KT2-RO-CHANGE @role:portal @role:module
  Scenario: An update that changes the resource-origin is refused with 403 and nothing changes
    Given the portal has registered a patient
    When the portal updates the patient, renamed, with the module's Device as its resource-origin
    Then the store refuses the resource-origin change with 403
    And the patient is still the portal's, unrenamed and at its first version

  @req:KT2-RO-CHANGE @role:portal
  Scenario: An update that leaves out the resource-origin keeps the stored one
    Given the portal has registered a patient
    When the portal updates the patient, renamed, without a resource-origin
    Then the update is accepted and the renamed patient is still the portal's

  # -- what the role grants -----------------------------------------------------------------------------------
  @req:KT2-PERM-ROLE @role:portal @role:module
  Scenario Outline: An interaction the application's role does not grant is refused with 403
    Given the portal has registered a patient
    When the <actor> tries to <interaction> outside its role
    Then the store refuses the interaction with 403 and nothing changed

    Examples: the eHealth module reads persons but does not manage them
      | actor  | interaction                      |
      | module | create a Patient                 |
      | module | create a Practitioner            |
      | module | update the portal's patient      |
      | module | delete the portal's patient      |

    Examples: a practitioner portal reads but does not publish activities, and nobody writes Devices
      | actor  | interaction                      |
      | portal | create an ActivityDefinition     |
      | portal | create an Endpoint               |
      | portal | create a Device                  |

  @req:KT2-PERM-NARROWING @role:portal @role:module
  Scenario Outline: A search under an OWN scope silently returns only the caller's own Subscriptions
    Given the portal and the module each have a Subscription of their own
    When the <searcher> searches Subscriptions by the ids of both
    Then the search answers 200 with only the <searcher>'s own Subscription

    Examples:
      | searcher |
      | portal   |
      | module   |

  @req:KT2-PERM-NARROWING @role:portal @role:module
  Scenario: Asking for another application's Subscriptions by resource-origin gives an empty result, not a 403
    Given the portal and the module each have a Subscription of their own
    When the module searches Subscriptions whose resource-origin is the portal's Device
    Then the search answers 200 without any of the portal's Subscriptions

  @req:KT2-PERM-OWN-DIRECT @role:portal @role:module
  Scenario Outline: Direct access to a resource outside the caller's OWN scope is refused with 403
    Given the portal and the module each have a Subscription of their own
    When the module <interaction> the portal's Subscription by its id
    Then the store refuses the direct access with 403 and the portal's Subscription is unchanged

    Examples:
      | interaction          |
      | reads                |
      | reads version 1 of   |
      | reads the history of |
      | updates              |
      | deletes              |

  @req:KT2-PERM-OWN-DIRECT @role:portal @role:module
  Scenario: The module may not delete a Task another application created (Task delete is OWN)
    Given the portal has assigned the activity to the patient as a task
    When the module deletes the portal's task by its id
    Then the store refuses the direct access with 403 and the portal's task is unchanged

  # -- domains --------------------------------------------------------------------------------------------------
  @req:KT2-PERM-DOMAIN @role:portal @role:other-domain-portal
  Scenario Outline: A patient of this domain is invisible and unwritable from the other domain
    Given the portal has registered a patient
    When the other domain's portal <interaction>
    Then the other domain gets no access to this domain's patient
    And the patient is unchanged in this domain

    Examples: with its own token at this domain's FHIR base
      | interaction                                               |
      | reads the patient by id at this domain's base             |
      | searches the patient's id at this domain's base           |
      | updates the patient at this domain's base                 |
      | deletes the patient at this domain's base                 |

    Examples: at its own domain's FHIR base, with this domain's ids and references
      | interaction                                               |
      | reads the patient by id at its own base                   |
      | searches the patient's id at its own base                 |
      | updates the patient at its own base                       |
      | deletes the patient at its own base                       |
      | creates a CareTeam for the patient at its own base        |

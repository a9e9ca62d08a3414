@kt1 @activities
Feature: ActivityDefinitions: publish, update, archive and list
  An eHealth module publishes the activities it offers as ActivityDefinitions (in KT1 an `Other` resource
  with code ActivityDefinition); portals list them to assign activities to patients.  Every create and
  update is answered with a Content-Location naming the new version, and an update must quote the latest
  version.  Archived definitions are hidden unless a client asks for them.

  @req:KT1-AD-SEARCH @role:portal
  Scenario: The portal lists the ActivityDefinitions of its domain
    When the portal lists the ActivityDefinitions
    Then every listed ActivityDefinition has an identifier, a kind, a name and a versioned self link

  @req:KT1-AD-APPLICATION @req:KT1-AD-PUBLISH @req:KT1-META-JSON-CONTENT-TYPE @role:module @role:portal
  Scenario: The module publishes a new ActivityDefinition and portals can see it
    When the module publishes a new ActivityDefinition
    Then the server confirms it with a versioned Content-Location
    And the portal finds the new ActivityDefinition in the list
    And the listed definition names the module as its application

  @req:KT1-AD-UPDATE @req:KT1-META-JSON-CONTENT-TYPE @req:KT1-VER-INCREASING @role:module @role:portal
  Scenario: The module renames its ActivityDefinition
    Given the module has published a new ActivityDefinition
    When the module renames the ActivityDefinition using its versioned link
    Then the server confirms it with a Content-Location naming a later version
    And the portal finds the ActivityDefinition under its new name

  @req:KT1-AD-STALE-UPDATE @role:module
  Scenario: An update quoting an outdated version is refused
    Given the module has published a new ActivityDefinition
    And the module has renamed the ActivityDefinition
    When the module renames the ActivityDefinition again using the first version's link
    Then the server refuses the update with a 409 conflict

  @req:KT1-AD-ARCHIVE @role:module @role:portal
  Scenario: An archived ActivityDefinition is only listed on request
    Given the module has published a new ActivityDefinition
    When the module archives the ActivityDefinition
    Then the portal does not find the ActivityDefinition in the list
    But the portal finds the ActivityDefinition in the list including archived ones

  @req:KT1-AD-DOMAIN @role:portal
  Scenario: ActivityDefinitions of another domain are not listed
    Given the other domain's module has published a new ActivityDefinition
    When the portal lists the ActivityDefinitions including archived ones
    Then the other domain's ActivityDefinition is not in the list

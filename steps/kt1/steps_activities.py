"""Steps for ActivityDefinitions: list, publish, update, archive (features/kt1/activity_definitions.feature).

KT1 carries an ActivityDefinition as an `Other` resource; the server names
each one `Other/ActivityDefinition:<n>` and answers every create and update
with a Content-Location naming the new version - the only way the Python
connector learns the link it must PUT to next.
"""

from __future__ import annotations

import copy

from pytest_bdd import given, parsers, then, when

from ktbench.fhir.dstu1.links import strip_history, version_of
from simulators.kt1.actors import kt1_resources as res
from ktbench.fhir.dstu1.links import entry_self_link
from ktbench.core.requirements import precondition, require
from steps.kt1.world import ACTOR, Kt1World


def _publish(kt1: Kt1World, actor: str = "module") -> None:
    publisher = kt1.actor(actor)
    ident = f"ktbench-{kt1.people.unique_id()}"
    content = res.activity_definition(identifier=ident, name=kt1.people.activity_name(),
                                      application=publisher.app_id, description=kt1.people.sentence(),
                                      sub_activities=(("level-1", "Level 1"),))
    kt1.activity_definition = content
    kt1.answers = [publisher.publish_activity(content)]
    kt1.activity_links = []
    location = kt1.answers[-1].content_location
    if location:
        kt1.activity_links.append(location)


def _check_content_location(kt1: Kt1World, req: str) -> str:
    answer = kt1.answers[-1]
    require(answer.ok, req, f"the server should accept the ActivityDefinition, got {answer.brief()}")
    require(answer.is_json, "KT1-META-JSON-CONTENT-TYPE",
            f"JSON answers must be labelled application/json, got {answer.content_type!r}")
    location = answer.content_location
    require(location, req, "the answer must carry a Content-Location header with the new versioned link "
                           "(the Python connector fails without it)")
    require("/Other/ActivityDefinition:" in location and version_of(location), req,
            f"Content-Location should be <base>/FHIR/Koppeltaal/Other/ActivityDefinition:<n>/_history/<v>, "
            f"got {location!r}")
    return location


def _identifier(kt1: Kt1World) -> str:
    return res.ad_identifier(kt1.need(kt1.activity_definition, "a published ActivityDefinition")) or ""


def _listed(kt1: Kt1World, actor: str, include_archived: bool) -> list[dict]:
    answer, entries = kt1.actor(actor).activities(include_archived=include_archived)
    precondition(answer.status == 200 and answer.resource_type == "Bundle", "KT1-AD-SEARCH",
                 f"Other/_search?code=ActivityDefinition should answer 200 with a Bundle, got {answer.brief()}")
    kt1.listed = entries
    return entries


def _find(entries: list[dict], identifier: str) -> dict | None:
    for entry in entries:
        if res.ad_identifier(entry.get("content") or {}) == identifier:
            return entry
    return None


@given(parsers.re(rf"the {ACTOR} has published a new ActivityDefinition"))
def _(actor: str, kt1: Kt1World) -> None:
    _publish(kt1, actor)
    location = _check_content_location(kt1, "KT1-AD-PUBLISH")
    if actor.startswith("other domain"):
        kt1.other_activity_identifier = _identifier(kt1)
    else:
        kt1.activity_links = [location]


@when("the module publishes a new ActivityDefinition")
def _(kt1: Kt1World) -> None:
    _publish(kt1)


@then("the server confirms it with a versioned Content-Location")
def _(kt1: Kt1World) -> None:
    _check_content_location(kt1, "KT1-AD-PUBLISH")


def _update(kt1: Kt1World, link: str, change) -> None:
    content = copy.deepcopy(kt1.need(kt1.activity_definition, "a published ActivityDefinition"))
    change(content)
    kt1.activity_definition = content
    kt1.answers.append(kt1.module.update_activity(link, content))
    location = kt1.answers[-1].content_location
    if kt1.answers[-1].ok and location:
        kt1.activity_links.append(location)


@given("the module has renamed the ActivityDefinition")
@when("the module renames the ActivityDefinition using its versioned link")
def _(kt1: Kt1World) -> None:
    link = kt1.need(kt1.activity_links[-1] if kt1.activity_links else None, "the definition's versioned link")
    name = kt1.people.activity_name()
    kt1.new_name = name
    _update(kt1, link, lambda c: res.set_ad_flag(c, "ActivityName", name, "valueString"))


@when("the module renames the ActivityDefinition again using the first version's link")
def _(kt1: Kt1World) -> None:
    name = kt1.people.activity_name()
    _update(kt1, kt1.activity_links[0], lambda c: res.set_ad_flag(c, "ActivityName", name, "valueString"))


@then("the server confirms it with a Content-Location naming a later version")
def _(kt1: Kt1World) -> None:
    location = _check_content_location(kt1, "KT1-AD-UPDATE")
    first = kt1.activity_links[0]
    require(strip_history(location).rsplit("/", 1)[-1] == strip_history(first).rsplit("/", 1)[-1], "KT1-AD-UPDATE",
            f"the update should keep the definition's identity {strip_history(first)}, got {location}")
    require(version_of(location) > version_of(first), "KT1-VER-INCREASING",
            f"the updated version {version_of(location)!r} should sort after {version_of(first)!r}")


@then("the server refuses the update with a 409 conflict")
def _(kt1: Kt1World) -> None:
    answer = kt1.answers[-1]
    require(answer.status == 409, "KT1-AD-STALE-UPDATE",
            f"an update quoting an outdated version must be refused with 409, got {answer.brief()}")


@when("the module archives the ActivityDefinition")
def _(kt1: Kt1World) -> None:
    _update(kt1, kt1.activity_links[-1], lambda c: res.set_ad_flag(c, "IsArchived", True, "valueBoolean"))
    require(kt1.answers[-1].ok, "KT1-AD-UPDATE", f"archiving was refused: {kt1.answers[-1].brief()}")


@when(parsers.re(r"the (?P<actor>portal) lists the ActivityDefinitions(?P<archived> including archived ones)?"))
def _(actor: str, archived: str | None, kt1: Kt1World) -> None:
    _listed(kt1, actor, bool(archived))


@then("every listed ActivityDefinition has an identifier, a kind, a name and a versioned self link")
def _(kt1: Kt1World) -> None:
    require(kt1.listed, "KT1-AD-SEARCH", "the domain has ActivityDefinitions, but none were listed")
    for entry in kt1.listed:
        content = entry.get("content") or {}
        link = entry_self_link(entry)
        require(content.get("resourceType") == "Other", "KT1-AD-SEARCH",
                f"ActivityDefinitions are Other resources, got {content.get('resourceType')!r}")
        require(res.ad_identifier(content), "KT1-AD-SEARCH", f"entry {entry.get('id')} has no identifier")
        kind = (res.ad_extension(content, "ActivityKind") or {}).get("valueCoding") or {}
        require(kind.get("code"), "KT1-AD-SEARCH", f"entry {entry.get('id')} has no ActivityKind")
        require((res.ad_extension(content, "ActivityName") or {}).get("valueString"), "KT1-AD-SEARCH",
                f"entry {entry.get('id')} has no ActivityName")
        require(link and version_of(link) and "/Other/ActivityDefinition:" in link, "KT1-AD-SEARCH",
                f"entry {entry.get('id')} needs a versioned self link Other/ActivityDefinition:<n>/_history/<v>, "
                f"got {link!r}")


@then(parsers.re(r"the (?P<actor>portal) finds the (?P<new>new )?ActivityDefinition in the list"
                 r"(?P<archived> including archived ones)?"))
def _(actor: str, new: str | None, archived: str | None, kt1: Kt1World) -> None:
    entries = _listed(kt1, actor, bool(archived))
    req = "KT1-AD-ARCHIVE" if archived else ("KT1-AD-PUBLISH" if new else "KT1-AD-UPDATE")
    require(_find(entries, _identifier(kt1)) is not None, req,
            f"ActivityDefinition {_identifier(kt1)} should be listed for the {actor}"
            + (" with includearchived=yes" if archived else ""))


@then(parsers.re(r"the (?P<actor>portal) does not find the ActivityDefinition in the list"))
def _(actor: str, kt1: Kt1World) -> None:
    entries = _listed(kt1, actor, False)
    require(_find(entries, _identifier(kt1)) is None, "KT1-AD-ARCHIVE",
            f"the archived ActivityDefinition {_identifier(kt1)} must not be listed without includearchived=yes")


@then("the listed definition names the module as its application")
def _(kt1: Kt1World) -> None:
    entry = _find(kt1.listed, _identifier(kt1))
    require(entry is not None, "KT1-AD-PUBLISH", "the new ActivityDefinition is not listed")
    app = ((res.ad_extension(entry["content"], "Application") or {}).get("valueResource") or {}).get("display")
    require(app == kt1.module.app_id, "KT1-AD-APPLICATION",
            f"ActivityDefinition#Application should name the publishing application {kt1.module.app_id!r} "
            f"(it is the launch client_id), got {app!r}")


@then("the portal finds the ActivityDefinition under its new name")
def _(kt1: Kt1World) -> None:
    entries = _listed(kt1, "portal", False)
    entry = _find(entries, _identifier(kt1))
    require(entry is not None, "KT1-AD-UPDATE", f"ActivityDefinition {_identifier(kt1)} is no longer listed")
    name = (res.ad_extension(entry["content"], "ActivityName") or {}).get("valueString")
    require(name == kt1.new_name, "KT1-AD-UPDATE", f"the listed name should be {kt1.new_name!r}, got {name!r}")
    link = entry_self_link(entry)
    require(link is not None and version_of(link) == version_of(kt1.activity_links[-1]), "KT1-AD-UPDATE",
            f"the listed self link should carry the latest version {version_of(kt1.activity_links[-1])!r}, "
            f"got {link!r}")


@then("the other domain's ActivityDefinition is not in the list")
def _(kt1: Kt1World) -> None:
    ident = kt1.need(kt1.other_activity_identifier, "an ActivityDefinition of the other domain")
    require(_find(kt1.listed, ident) is None, "KT1-AD-DOMAIN",
            f"the other domain's ActivityDefinition {ident} is listed in this domain")

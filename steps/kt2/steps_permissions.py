"""Steps of permissions, resource-origin, validation and referential integrity (features/kt2/permissions.feature,
validation.feature).

Every refused write is followed by a look at the store: a refusal that still stored something (a create
that answered 4xx and kept the resource, an update that bumped the version) is as wrong as an acceptance.
The When steps leave what to look for in `kt2.notes`: `absent` (searches that must find nothing: who
searches, the type, the parameters that find the resource by its fresh identifier or marker) and
`unchanged` (labels of kept resources whose current version must still be the one the scenario kept).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from simulators.kt2.actors import Kt2Application, resources
from steps.kt2.checks import describe, expect_status, json_object, outcome_text
from steps.kt2.world import Kt2World

ORIGIN_URL = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
CLIENT_ID_SYSTEM = "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
NEVER_NOTIFIED = "https://notifications.ktbench.invalid/never"   # criteria below never match: nothing is sent
RO_INJECT, RO_CLIENT_SET, RO_CHANGE = "KT2-RO-INJECT", "KT2-RO-CLIENT-SET", "KT2-RO-CHANGE"
PERM_ROLE, NARROWING, OWN_DIRECT, DOMAIN = ("KT2-PERM-ROLE", "KT2-PERM-NARROWING", "KT2-PERM-OWN-DIRECT",
                                            "KT2-PERM-DOMAIN")
VAL_PROFILE, VAL_SUBTASK = "KT2-VAL-PROFILE", "KT2-VAL-SUBTASK"
RI_WRITE, RI_DELETE, RI_AUDIT = "KT2-RI-WRITE", "KT2-RI-DELETE", "KT2-RI-AUDIT-EXEMPT"
STORED_CHECKS = (RO_CLIENT_SET, RO_CHANGE, PERM_ROLE, OWN_DIRECT, DOMAIN, VAL_PROFILE, VAL_SUBTASK, RI_WRITE,
                 RI_DELETE)
DANGLING_STATUSES = (400, 404, 409, 422)   # HAPI answers 400/404, the reference 422 (kt2-protocol.md §4.2)


# -- small helpers ------------------------------------------------------------------------------------------------
def _origins(resource: Any) -> list[str]:
    """The references of every resource-origin extension of `resource` (a list, so duplicates show)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("extension"), list):
        return []
    found = []
    for ext in resource["extension"]:
        if isinstance(ext, dict) and ext.get("url") == ORIGIN_URL:
            value = ext.get("valueReference")
            found.append(str(value.get("reference")) if isinstance(value, dict) else repr(value))
    return found


def _names_device(reference: str, device: str) -> bool:
    """`Device/<id>`, or the absolute form of it under some FHIR base."""
    return reference == device or reference.endswith("/" + device)


def _with_origin(resource: dict[str, Any], device: str | None) -> dict[str, Any]:
    """A copy of `resource` with its resource-origin replaced by `device` (None: left out)."""
    body = resources.changed(resource)
    kept = [e for e in body.get("extension", []) if not (isinstance(e, dict) and e.get("url") == ORIGIN_URL)]
    if device is not None:
        kept.append({"url": ORIGIN_URL, "valueReference": {"reference": device, "type": "Device"}})
    if kept:
        body["extension"] = kept
    else:
        body.pop("extension", None)
    return body


def _renamed(resource: dict[str, Any], family: str) -> dict[str, Any]:
    return resources.changed(resource, name=[{"use": "official", "text": f"Renamed {family}", "family": family,
                                              "given": ["Renamed"]}])


def _family(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    if isinstance(names, list) and names and isinstance(names[0], dict):
        return names[0].get("family")
    return None


def _marker(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def _by_identifier(body: dict[str, Any]) -> dict[str, str]:
    first = body["identifier"][0]
    return {"identifier": f"{first['system']}|{first['value']}"}


def _never_matching_criteria() -> str:
    return f"Patient?identifier=http://ktbench.test/never|{uuid.uuid4()}"


def _entries(kt2: Kt2World, answer: httpx.Response, req: str, what: str) -> list[dict[str, Any]]:
    body = json_object(answer, req, what)
    require(body.get("resourceType") == "Bundle", req, f"{what}: expected a searchset Bundle, got "
                                                       f"{body.get('resourceType')!r}")
    entries = body.get("entry") or []
    require(isinstance(entries, list), req, f"{what}: Bundle.entry is not a list")
    return [e.get("resource") for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and (e.get("search") or {}).get("mode", "match") == "match"]


def _expect_absent(kt2: Kt2World, app_name: str, rtype: str, params: dict[str, str], req: str) -> None:
    app = kt2.app(app_name)
    answer = app.search(rtype, params)
    what = f"the {app_name}'s search {rtype}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
    precondition(answer.status_code == 200, "KT2-SEARCH-PARAMS", f"{what}: {describe(answer)} "
                                                                 f"({outcome_text(answer)})")
    found = _entries(kt2, answer, req, what)
    total = answer.json().get("total")
    require(not found and total in (0, None), req,
            f"the refused write was stored anyway: {what} finds {total if total is not None else len(found)} "
            f"(ids {[r.get('id') for r in found][:5]})")


def _expect_unchanged(kt2: Kt2World, label: str, reader: str, req: str) -> dict[str, Any]:
    answer = kt2.app(reader).read(kt2.ref(label))
    expect_status(answer, 200, req, f"reading {kt2.ref(label)} back after the refusal")
    now = json_object(answer, req, f"{kt2.ref(label)} read back")
    version = str((now.get("meta") or {}).get("versionId", ""))
    require(version == kt2.version(label), req,
            f"{kt2.ref(label)} was changed by a refused interaction: its version is {version!r}, "
            f"it was {kt2.version(label)!r}")
    return now


def _nothing_changed(kt2: Kt2World, req: str) -> None:
    for app_name, rtype, params in kt2.notes.get("absent", []):
        _expect_absent(kt2, app_name, rtype, params, req)
    for label, reader in kt2.notes.get("unchanged", []):
        _expect_unchanged(kt2, label, reader, req)


def _absent(kt2: Kt2World, app_name: str, rtype: str, params: dict[str, str]) -> None:
    kt2.notes.setdefault("absent", []).append((app_name, rtype, params))


def _unchanged(kt2: Kt2World, label: str, reader: str = "portal") -> None:
    kt2.notes.setdefault("unchanged", []).append((label, reader))


def _attempt(kt2: Kt2World, answer: httpx.Response) -> httpx.Response:
    return kt2.remember("attempt", answer)


def _subscription(kt2: Kt2World, app: Kt2Application, label: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if label not in kt2.resources:
        kt2.create(app, label, resources.subscription(_never_matching_criteria(), NEVER_NOTIFIED,
                                                      reason=f"ktbench {label}"))
        _remove_afterwards(kt2, app, label, request)
    return kt2.resources[label]


def _remove_afterwards(kt2: Kt2World, app: Kt2Application, label: str, request: pytest.FixtureRequest) -> None:
    """Delete a scenario's Subscription when it ends: every active Subscription of the shared domain is matched
    against every later write, so leftovers slow the rest of the run down (a failed clean-up is no verdict)."""
    ref = kt2.ref(label)

    def remove() -> None:
        try:
            app.delete(ref)
        except Exception:  # noqa: BLE001 - the scenario's verdict is in; an unreachable target is reported elsewhere
            pass

    request.addfinalizer(remove)


def _issue_texts(outcome: dict[str, Any]) -> list[str]:
    texts = []
    for item in outcome.get("issue") or []:
        if not isinstance(item, dict):
            continue
        parts = [str(item.get("diagnostics") or ""), str((item.get("details") or {}).get("text") or "")]
        parts += [str(x) for x in (item.get("expression") or []) + (item.get("location") or [])]
        texts.append(" ".join(parts))
    return texts


# -- resource-origin ----------------------------------------------------------------------------------------------
def _new_resource(kt2: Kt2World, rtype: str) -> dict[str, Any]:
    person = kt2.faker
    if rtype == "Patient":
        return resources.patient(family=person.last_name(), given=person.first_name())
    if rtype == "Task":
        return resources.task(kt2.patient()["id"], kt2.activity()["id"])
    if rtype == "Subscription":
        return resources.subscription(_never_matching_criteria(), NEVER_NOTIFIED)
    if rtype == "Endpoint":
        return resources.endpoint(kt2.module.launch_url, name=_marker("ktbench-endpoint-"))
    if rtype == "ActivityDefinition":
        endpoint = kt2.create(kt2.module, "its endpoint", resources.endpoint(kt2.module.launch_url))
        return resources.activity_definition(endpoint["id"], title=person.catch_phrase()[:40])
    raise BenchError(f"no builder for {rtype}")


@when(parsers.re(r"the (?P<creator>portal|module) creates an? (?P<rtype>[A-Za-z]+) without a resource-origin, as "
                 r"KT2 applications do"))
def ro_create(kt2: Kt2World, request: pytest.FixtureRequest, creator: str, rtype: str) -> None:
    body = _new_resource(kt2, rtype)
    kt2.create(kt2.app(creator), "created", body)
    if rtype == "Subscription":
        _remove_afterwards(kt2, kt2.app(creator), "created", request)


@then(parsers.re(r"the stored (?P<rtype>[A-Za-z]+) names the (?P<creator>portal|module)'s Device as its "
                 r"resource-origin"))
def ro_injected(kt2: Kt2World, creator: str, rtype: str) -> None:
    app = kt2.app(creator)
    created = kt2.resource("created")
    origins = _origins(created)
    require(len(origins) == 1 and _names_device(origins[0], app.device), RO_INJECT,
            f"the created {rtype}/{created['id']} should carry one resource-origin {app.device}, it carries "
            f"{origins or 'none'}")
    answer = app.read(kt2.ref("created"))
    expect_status(answer, 200, RO_INJECT, f"the {creator} reading its new {rtype} back")
    stored = _origins(json_object(answer, RO_INJECT, f"{rtype} read back"))
    require(len(stored) == 1 and _names_device(stored[0], app.device), RO_INJECT,
            f"the stored {rtype}/{created['id']} should carry one resource-origin {app.device}, it carries "
            f"{stored or 'none'}")


@when(parsers.re(r"the portal creates a Patient that claims (?P<device>its own Device|the module's Device) as its "
                 r"resource-origin"))
def ro_client_set(kt2: Kt2World, device: str) -> None:
    claimed = kt2.portal.device if device == "its own Device" else kt2.module.device
    body = _with_origin(_new_resource(kt2, "Patient"), claimed)
    _absent(kt2, "portal", "Patient", _by_identifier(body))
    _attempt(kt2, kt2.portal.create(body))


@then("the store refuses the resource-origin claim with 400 and stores no such Patient")
def ro_client_set_refused(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], 400, RO_CLIENT_SET, "a create whose body sets resource-origin")
    _nothing_changed(kt2, RO_CLIENT_SET)


@when(parsers.re(r"the portal updates the patient, renamed, (?P<how>with the module's Device as its resource-origin|"
                 r"without a resource-origin)"))
def ro_update(kt2: Kt2World, how: str) -> None:
    patient = kt2.resource("patient")
    family = _marker("Renamed")
    kt2.notes["family"] = family
    device = kt2.module.device if how.startswith("with the") else None
    _attempt(kt2, kt2.portal.update(_with_origin(_renamed(patient, family), device), kt2.version("patient")))


@then("the store refuses the resource-origin change with 403")
def ro_change_refused(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], 403, RO_CHANGE, "an update that names another Device as resource-origin")


@then("the patient is still the portal's, unrenamed and at its first version")
def ro_change_nothing_stored(kt2: Kt2World) -> None:
    now = _expect_unchanged(kt2, "patient", "portal", RO_CHANGE)
    origins = _origins(now)
    require(len(origins) == 1 and _names_device(origins[0], kt2.portal.device), RO_CHANGE,
            f"after the refused change the patient's resource-origin is {origins or 'none'}, not "
            f"{kt2.portal.device}")
    require(_family(now) == _family(kt2.resource("patient")), RO_CHANGE,
            f"the refused update renamed the patient to {_family(now)!r}")


@then("the update is accepted and the renamed patient is still the portal's")
def ro_kept(kt2: Kt2World) -> None:
    answer = kt2.answers["attempt"]
    expect_status(answer, 200, RO_CHANGE, "an update that leaves out resource-origin")
    answer = kt2.portal.read(kt2.ref("patient"))
    expect_status(answer, 200, RO_CHANGE, "reading the updated patient back")
    now = json_object(answer, RO_CHANGE, "the updated patient")
    require(_family(now) == kt2.notes["family"], RO_CHANGE,
            f"the accepted update was not stored: the family name is {_family(now)!r}")
    origins = _origins(now)
    require(len(origins) == 1 and _names_device(origins[0], kt2.portal.device), RO_CHANGE,
            f"an update without resource-origin must keep the stored one ({kt2.portal.device}); the patient now "
            f"carries {origins or 'none'}")


# -- what the role grants ---------------------------------------------------------------------------------------
def _device_body() -> dict[str, Any]:
    return {"resourceType": "Device", "meta": {"profile": [resources.KT + "KT2Device"]},
            "identifier": [{"system": CLIENT_ID_SYSTEM, "value": str(uuid.uuid4())}], "status": "active",
            "deviceName": [{"name": "ktbench device of its own making", "type": "user-friendly-name"}]}


@when(parsers.re(r"the (?P<actor>portal|module) tries to (?P<interaction>create a Patient|create a Practitioner|"
                 r"update the portal's patient|delete the portal's patient|create an ActivityDefinition|"
                 r"create an Endpoint|create a Device) outside its role"))
def role_attempt(kt2: Kt2World, actor: str, interaction: str) -> None:
    app = kt2.app(actor)
    patient = kt2.resource("patient")
    if interaction == "update the portal's patient":
        _unchanged(kt2, "patient")
        _attempt(kt2, app.update(_renamed(patient, _marker("Module")), kt2.version("patient")))
        return
    if interaction == "delete the portal's patient":
        _unchanged(kt2, "patient")
        _attempt(kt2, app.delete(kt2.ref("patient")))
        return
    if interaction == "create a Patient":
        body = _new_resource(kt2, "Patient")
    elif interaction == "create a Practitioner":
        body = resources.practitioner(family=kt2.faker.last_name(), given=kt2.faker.first_name())
    elif interaction == "create an ActivityDefinition":
        kt2.activity()
        body = resources.activity_definition(kt2.resource("definition endpoint")["id"])
    elif interaction == "create an Endpoint":
        body = resources.endpoint(kt2.module.launch_url, name=_marker("ktbench-endpoint-"))
    else:
        body = _device_body()
    params = {"name": body["name"]} if body["resourceType"] == "Endpoint" else _by_identifier(body)
    _absent(kt2, "portal", body["resourceType"], params)
    _attempt(kt2, app.create(body))


@then("the store refuses the interaction with 403 and nothing changed")
def role_refused(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], 403, PERM_ROLE, "an interaction the role does not grant")
    _nothing_changed(kt2, PERM_ROLE)


# -- OWN scopes: narrowing and direct access --------------------------------------------------------------------
@given("the portal and the module each have a Subscription of their own")
def own_subscriptions(kt2: Kt2World, request: pytest.FixtureRequest) -> None:
    _subscription(kt2, kt2.portal, "portal's subscription", request)
    _subscription(kt2, kt2.module, "module's subscription", request)


@when(parsers.re(r"the (?P<searcher>portal|module) searches Subscriptions by the ids of both"))
def search_both(kt2: Kt2World, searcher: str) -> None:
    ids = ",".join(kt2.resource(f"{who}'s subscription")["id"] for who in ("portal", "module"))
    kt2.remember("search", kt2.app(searcher).search("Subscription", {"_id": ids}))


@then(parsers.re(r"the search answers 200 with only the (?P<searcher>portal|module)'s own Subscription"))
def only_own(kt2: Kt2World, searcher: str) -> None:
    answer = kt2.answers["search"]
    expect_status(answer, 200, NARROWING, f"the {searcher}'s search of Subscriptions (narrowing is silent)")
    found = _entries(kt2, answer, NARROWING, "the Subscription search")
    own = kt2.resource(f"{searcher}'s subscription")["id"]
    ids = sorted(r.get("id") for r in found)
    require(ids == [own], NARROWING, f"a search under an OWN scope must return only the {searcher}'s own "
                                     f"Subscription {own}; it returned {ids}")
    total = answer.json().get("total")
    require(total in (1, None), NARROWING, f"the narrowed search counts total {total}, but the {searcher} may see "
                                           "only one of the two")


@when("the module searches Subscriptions whose resource-origin is the portal's Device")
def search_foreign_origin(kt2: Kt2World) -> None:
    kt2.remember("search", kt2.module.search("Subscription", {"resource-origin": kt2.portal.device}))


@then("the search answers 200 without any of the portal's Subscriptions")
def no_foreign(kt2: Kt2World) -> None:
    answer = kt2.answers["search"]
    expect_status(answer, 200, NARROWING, "the module's search of the portal's Subscriptions (narrowing is silent)")
    found = _entries(kt2, answer, NARROWING, "the Subscription search")
    foreign = [r.get("id") for r in found if any(_names_device(o, kt2.portal.device) for o in _origins(r))
               or r.get("id") == kt2.resource("portal's subscription")["id"]]
    require(not foreign, NARROWING, f"the module's search returned the portal's Subscriptions {foreign[:5]}; its "
                                    "scope is Subscription OWN")
    total = answer.json().get("total")
    require(total in (0, None) and not found, NARROWING,
            f"the module may see none of these Subscriptions, but the search counts {total} and returns "
            f"{len(found)}")


@when(parsers.re(r"the module (?P<interaction>reads|reads version 1 of|reads the history of|updates|deletes) the "
                 r"portal's Subscription by its id"))
def module_direct(kt2: Kt2World, interaction: str) -> None:
    label = "portal's subscription"
    ref, module = kt2.ref(label), kt2.module
    _unchanged(kt2, label)
    if interaction == "reads":
        answer = module.read(ref)
    elif interaction == "reads version 1 of":
        answer = module.read(f"{ref}/_history/1")
    elif interaction == "reads the history of":
        answer = module.read(f"{ref}/_history")
    elif interaction == "updates":
        answer = module.update(resources.changed(kt2.resource(label), reason="changed by the module"),
                               kt2.version(label))
    else:
        answer = module.delete(ref)
    _attempt(kt2, answer)


@when("the module deletes the portal's task by its id")
def module_deletes_task(kt2: Kt2World) -> None:
    _unchanged(kt2, "task")
    _attempt(kt2, kt2.module.delete(kt2.ref("task")))


@then(parsers.re(r"the store refuses the direct access with 403 and the portal's (?P<what>Subscription|task) is "
                 r"unchanged"))
def direct_refused(kt2: Kt2World, what: str) -> None:
    answer = kt2.answers["attempt"]
    expect_status(answer, 403, OWN_DIRECT, f"the module's direct access to the portal's {what}")
    _nothing_changed(kt2, OWN_DIRECT)


# -- domains ----------------------------------------------------------------------------------------------------
@when(parsers.re(r"the other domain's portal (?P<interaction>reads the patient by id|searches the patient's id|"
                 r"updates the patient|deletes the patient|creates a CareTeam for the patient) at "
                 r"(?P<base>this domain's base|its own base)"))
def other_domain(kt2: Kt2World, interaction: str, base: str) -> None:
    other = kt2.app("other domain's portal")
    here = base == "this domain's base"
    root = kt2.bench.fhir_base.rstrip("/") if here else other.fhir_base.rstrip("/")
    patient = kt2.resource("patient")
    ref = kt2.ref("patient")
    _unchanged(kt2, "patient")
    kt2.notes["search"] = interaction.startswith("searches")
    if interaction.startswith("reads"):
        answer = other.fhir("GET", f"{root}/{ref}")
    elif interaction.startswith("searches"):
        answer = other.fhir("GET", f"{root}/Patient", params={"_id": patient["id"]})
    elif interaction.startswith("updates"):
        answer = other.fhir("PUT", f"{root}/{ref}", body=_renamed(patient, _marker("Other")),
                            headers={"If-Match": f'W/"{kt2.version("patient")}"'})
    elif interaction.startswith("deletes"):
        answer = other.fhir("DELETE", f"{root}/{ref}")
    else:
        body = resources.care_team(patient["id"])
        answer = other.fhir("POST", f"{root}/CareTeam", body=body)
        _absent(kt2, "portal" if here else "other domain's portal", "CareTeam", _by_identifier(body))
    _attempt(kt2, answer)


@then("the other domain gets no access to this domain's patient")
def other_domain_refused(kt2: Kt2World) -> None:
    answer = kt2.answers["attempt"]
    patient_id = kt2.resource("patient")["id"]
    if kt2.notes.get("search") and answer.status_code == 200:
        found = _entries(kt2, answer, DOMAIN, "the other domain's search")
        require(not any(r.get("id") == patient_id for r in found), DOMAIN,
                f"the other domain's search found this domain's Patient/{patient_id}")
        total = answer.json().get("total")
        require(total in (0, None) and not found, DOMAIN,
                f"the other domain's search by this domain's id counts {total} and returns {len(found)} entries")
        return
    require(400 <= answer.status_code < 500, DOMAIN,
            f"the other domain's portal must be refused (4xx), but {describe(answer)}"
            + (f" ({outcome_text(answer)})" if answer.status_code >= 500 else ""))


@then("the patient is unchanged in this domain")
def other_domain_nothing_changed(kt2: Kt2World) -> None:
    _nothing_changed(kt2, DOMAIN)


# -- validation ---------------------------------------------------------------------------------------------------
DEFECTS = (r"a Patient without identifier|a Patient whose gender is \"robot\"|a Patient whose birthDate is "
           r"\"20-12-1970\"|a Task without owner|a Task whose status is \"finished\"|an Endpoint whose connection "
           r"type is hl7-fhir-rest|an ActivityDefinition without status")


def _defective(kt2: Kt2World, defect: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The body with the defect and the search parameters that would find it if it were stored."""
    if defect == "a Patient without identifier":
        family = _marker("Zonderid")
        body = resources.patient(family=family, given=kt2.faker.first_name())
        body.pop("identifier")
        return body, {"family": family}
    if defect.startswith("a Patient whose gender"):
        body = resources.changed(_new_resource(kt2, "Patient"), gender="robot")
    elif defect.startswith("a Patient whose birthDate"):
        body = resources.changed(_new_resource(kt2, "Patient"), birthDate="20-12-1970")
    elif defect == "a Task without owner":
        body = resources.changed(_new_resource(kt2, "Task"), owner=None)
    elif defect.startswith("a Task whose status"):
        body = resources.changed(_new_resource(kt2, "Task"), status="finished")
    elif defect.startswith("an Endpoint"):
        name = _marker("ktbench-endpoint-")
        body = resources.changed(resources.endpoint(kt2.module.launch_url, name=name), connectionType={
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"})
        return body, {"name": name}
    else:
        body = resources.changed(resources.activity_definition(kt2.ref("definition endpoint").split("/", 1)[1]),
                                 status=None)
    return body, _by_identifier(body)


@when(parsers.re(rf"the (?P<writer>portal|module) creates (?P<defect>{DEFECTS})"))
def create_defective(kt2: Kt2World, writer: str, defect: str) -> None:
    body, params = _defective(kt2, defect)
    _absent(kt2, writer, body["resourceType"], params)
    _attempt(kt2, kt2.app(writer).create(body))


@when("the portal updates the patient without its identifiers")
def update_defective(kt2: Kt2World) -> None:
    _attempt(kt2, kt2.portal.update(resources.changed(kt2.resource("patient"), identifier=None),
                                    kt2.version("patient")))


@then(parsers.re(r"the store refuses the invalid resource with (?P<statuses>\d{3}(?: or \d{3})*) naming "
                 r"(?P<element>[A-Za-z]+\.[A-Za-z.]+)"))
def invalid_refused(kt2: Kt2World, kt_requirements: ScenarioRequirements, statuses: str, element: str) -> None:
    req = kt_requirements.pick(VAL_PROFILE, VAL_SUBTASK)
    answer = kt2.answers["attempt"]
    allowed = tuple(int(s) for s in statuses.split(" or "))
    expect_status(answer, allowed, req, f"a write whose {element} breaks the KT2 rules")
    outcome = json_object(answer, req, "the refusal")
    require(outcome.get("resourceType") == "OperationOutcome", req,
            f"the refusal must be an OperationOutcome, not {outcome.get('resourceType')!r}")
    severities = [i.get("severity") for i in outcome.get("issue") or [] if isinstance(i, dict)]
    require(any(s in ("error", "fatal") for s in severities), req,
            f"the refusal's OperationOutcome has no error issue (severities {severities})")
    leaf = element.rsplit(".", 1)[-1].lower()
    texts = _issue_texts(outcome)
    require(any(leaf in text.lower() for text in texts), req,
            f"the OperationOutcome should name the problem ({element}); its issues say {texts[:3]}")


@then("no such resource was stored")
def perm_nothing_stored(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    _nothing_changed(kt2, kt_requirements.pick(*STORED_CHECKS))


@then("the patient still has its identifiers at its first version")
def update_nothing_stored(kt2: Kt2World) -> None:
    now = _expect_unchanged(kt2, "patient", "portal", VAL_PROFILE)
    require(now.get("identifier") == kt2.resource("patient").get("identifier"), VAL_PROFILE,
            f"the refused update changed the patient's identifiers to {now.get('identifier')!r}")


# -- sub-tasks --------------------------------------------------------------------------------------------------
@when(parsers.re(r"the module creates a sub-task with code view (?P<how>without partOf|as part of the task)"))
def create_subtask(kt2: Kt2World, how: str) -> None:
    task = kt2.resource("task")
    part_of = task["id"] if how.startswith("as part") else None
    body = resources.task(kt2.resource("patient")["id"], kt2.resource("definition")["id"], code="view",
                          part_of=part_of)
    if part_of is None:
        _absent(kt2, "module", "Task", _by_identifier(body))
    _attempt(kt2, kt2.module.create(body))


@then("the sub-task is stored as part of the main task")
def subtask_stored(kt2: Kt2World) -> None:
    answer = kt2.answers["attempt"]
    expect_status(answer, (200, 201), VAL_SUBTASK, "a view sub-task with partOf")
    body = json_object(answer, VAL_SUBTASK, "the created sub-task")
    main = kt2.ref("task")
    refs = [p.get("reference", "") for p in body.get("partOf") or [] if isinstance(p, dict)]
    require(any(r == main or r.endswith("/" + main) for r in refs), VAL_SUBTASK,
            f"the stored sub-task's partOf is {refs}, not {main}")
    read = kt2.module.read(f"Task/{body.get('id')}")
    expect_status(read, 200, VAL_SUBTASK, "reading the new sub-task back")


# -- referential integrity --------------------------------------------------------------------------------------
@when(parsers.re(r"the (?P<writer>portal|module) creates (?P<resource>a Task|a CareTeam|an ActivityDefinition) that "
                 r"refers to (?P<missing>a Patient that never existed|an ActivityDefinition that never existed|"
                 r"a Patient that was deleted|an Endpoint that never existed)"))
def create_dangling(kt2: Kt2World, writer: str, resource: str, missing: str) -> None:
    nowhere = str(uuid.uuid4())
    if missing == "a Patient that was deleted":
        gone = kt2.create(kt2.portal, "deleted patient", _new_resource(kt2, "Patient"))
        answer = kt2.portal.delete(f"Patient/{gone['id']}")
        precondition(answer.status_code in (200, 204), "KT2-REST-DELETE",
                     f"deleting an unreferenced patient: {describe(answer)} ({outcome_text(answer)})")
        target = gone["id"]
    else:
        target = nowhere
    if resource == "a Task":
        patient, definition = kt2.resource("patient")["id"], kt2.resource("definition")["id"]
        if "Patient" in missing:
            patient = target
        else:
            definition = target
        body = resources.task(patient, definition)
    elif resource == "a CareTeam":
        body = resources.care_team(target)
    else:
        body = resources.activity_definition(target)
    _absent(kt2, writer, body["resourceType"], _by_identifier(body))
    _attempt(kt2, kt2.app(writer).create(body))


@when("the portal updates the task with a requester that never existed")
def update_dangling(kt2: Kt2World) -> None:
    _unchanged(kt2, "task")
    body = resources.changed(kt2.resource("task"), requester=resources.reference(f"Practitioner/{uuid.uuid4()}"))
    _attempt(kt2, kt2.portal.update(body, kt2.version("task")))


@then("the store refuses the dangling reference")
def dangling_refused(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], DANGLING_STATUSES, RI_WRITE, "a write referring to a missing resource")


@then("the task is unchanged at its first version")
def task_unchanged(kt2: Kt2World) -> None:
    now = _expect_unchanged(kt2, "task", "portal", RI_WRITE)
    require("requester" not in now, RI_WRITE, f"the refused update stored the requester {now.get('requester')!r}")


_TARGETS = {"patient": ("patient", "portal"), "ActivityDefinition": ("definition", "module")}


@when(parsers.re(r"the (?P<deleter>portal|module) deletes the (?P<target>patient|ActivityDefinition) the task "
                 r"refers to"))
def delete_referenced(kt2: Kt2World, deleter: str, target: str) -> None:
    label, _ = _TARGETS[target]
    _attempt(kt2, kt2.app(deleter).delete(kt2.ref(label)))


@then("the store refuses the delete with 409")
def delete_refused(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], 409, RI_DELETE, "deleting a resource the task refers to")


@then(parsers.re(r"the (?P<target>patient|ActivityDefinition) can still be read"))
def still_there(kt2: Kt2World, target: str) -> None:
    label, reader = _TARGETS[target]
    _expect_unchanged(kt2, label, reader, RI_DELETE)


@given("the portal has recorded an AuditEvent naming the patient")
def audit_names_patient(kt2: Kt2World) -> None:
    portal = kt2.portal
    site = urlsplit(portal.fhir_base).hostname or "ktbench"
    kt2.create(portal, "audit event", resources.application_audit_event(portal.device, site, kt2.ref("patient")))


@when("the portal deletes the patient, whom only AuditEvents name")
def delete_audited(kt2: Kt2World) -> None:
    _attempt(kt2, kt2.portal.delete(kt2.ref("patient")))


@then("the delete succeeds and the patient is gone")
def audited_deleted(kt2: Kt2World) -> None:
    expect_status(kt2.answers["attempt"], (200, 204), RI_AUDIT,
                  "deleting a patient that only AuditEvents refer to")
    answer = kt2.portal.read(kt2.ref("patient"))
    expect_status(answer, (404, 410), RI_AUDIT, "reading the deleted patient")

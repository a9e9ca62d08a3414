"""resource-origin and permissions per role: injection, 400/403 rules, OWN vs ALL, silent narrowing, GRANTED,
includes, cross-domain isolation (KT2-RO-*, KT2-PERM-*)."""

from __future__ import annotations

from kt2_support import (  # noqa: F401
    ALPHA,
    ORIGIN,
    activity_definition,
    endpoint,
    jwks_host,
    kt2,
    no_unhandled_errors,
    patient,
    subscription,
    task,
    updated,
)

from simulators.kt2.data import Permission, Role
from simulators.kt2.scopes import ScopeSet, scope_for_role


def _origin(resource: dict) -> list[str]:
    return [e["valueReference"]["reference"] for e in resource.get("extension", []) if e["url"] == ORIGIN]


def _minted(kt2, scope: str, client_id: str = "alpha-portal") -> dict[str, str]:
    token, _ = kt2.services.tokens.mint_access(ALPHA, kt2.url, client_id, scope)
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}


def test_create_injects_the_callers_device_as_resource_origin(kt2):
    created = kt2.create("alpha-epd", patient())
    assert _origin(created) == ["Device/alpha-epd"]
    ext = next(e for e in created["extension"] if e["url"] == ORIGIN)
    assert ext["valueReference"]["type"] == "Device"


def test_client_set_origin_on_create_is_400(kt2):
    body = patient()
    body["extension"] = [{"url": ORIGIN, "valueReference": {"reference": "Device/alpha-epd"}}]
    answer = kt2.post("alpha-epd", "Patient", body)
    assert answer.status_code == 400
    assert "resource-origin" in answer.json()["issue"][0]["diagnostics"]


def test_update_copies_omitted_origin_and_refuses_a_change(kt2):
    created = kt2.create("alpha-epd", patient())
    without = updated(created, extension=[])
    answer = kt2.put("alpha-portal", f"Patient/{created['id']}", without, version="1")
    assert answer.status_code == 200, answer.text
    assert _origin(answer.json()) == ["Device/alpha-epd"]
    changed = updated(answer.json(), extension=[{"url": ORIGIN, "valueReference": {"reference": "Device/alpha-portal"}}])
    refused = kt2.put("alpha-portal", f"Patient/{created['id']}", changed, version="2")
    assert refused.status_code == 403
    twice = updated(answer.json(), extension=answer.json()["extension"] * 2)
    assert kt2.put("alpha-portal", f"Patient/{created['id']}", twice, version="2").status_code == 400


def test_own_scope_allows_own_and_refuses_others_resources(kt2):
    world = kt2.world()
    task_path = f"Task/{world['task']['id']}"
    read = kt2.get("alpha-module", task_path)
    assert read.status_code == 200                                   # Task R:ALL
    body = updated(read.json(), status="in-progress")
    assert kt2.put("alpha-module", task_path, body, version="1").status_code == 200    # Task U:ALL
    assert kt2.delete("alpha-module", task_path).status_code == 403  # Task D:OWN, the portal created it
    own = kt2.create("alpha-module", task(world["patient"]["id"], world["definition"]["id"]))
    assert kt2.delete("alpha-module", f"Task/{own['id']}").status_code == 200


def test_another_module_cannot_change_an_activity_definition(kt2):
    world = kt2.world()
    path = f"ActivityDefinition/{world['definition']['id']}"
    assert kt2.get("alpha-module-2", path).status_code == 200
    answer = kt2.put("alpha-module-2", path, updated(world["definition"], title="Gekaapt"), version="1")
    assert answer.status_code == 403
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert kt2.put("alpha-module", path, updated(world["definition"], title="Nieuw"), version="1").status_code == 200


def test_roles_without_create_get_403(kt2):
    person = kt2.create("alpha-portal", patient())
    definition = kt2.create("alpha-module", activity_definition(kt2.create("alpha-module", endpoint())["id"]))
    assert kt2.post("alpha-epd", "Task", task(person["id"], definition["id"])).status_code == 403
    assert kt2.post("alpha-client-portal", "Patient", patient()).status_code == 403
    assert kt2.post("alpha-portal", "ActivityDefinition", activity_definition("x")).status_code == 403


def test_search_is_narrowed_silently_to_own_subscriptions(kt2):
    portal_sub = kt2.create("alpha-portal", subscription("Task?status=completed", "https://portal.ktbench.test/h"))
    module_sub = kt2.create("alpha-module", subscription("Task?status=ready", "https://module.ktbench.test/h"))
    found = kt2.search("alpha-module", "Subscription?_count=200")
    ids = {e["resource"]["id"] for e in found.get("entry", [])}
    assert module_sub["id"] in ids and portal_sub["id"] not in ids
    assert all(_origin(e["resource"]) == ["Device/alpha-module"] for e in found["entry"])
    assert kt2.get("alpha-module", f"Subscription/{portal_sub['id']}").status_code == 403
    assert kt2.get("alpha-module", f"Subscription/{portal_sub['id']}/_history").status_code == 403
    assert kt2.get("alpha-module", f"Subscription/{portal_sub['id']}/_history/1").status_code == 403


def test_audit_events_are_narrowed_to_own_origin(kt2):
    kt2.create("alpha-module", endpoint())
    kt2.create("alpha-portal", patient())
    found = kt2.search("alpha-module", "AuditEvent?_count=100")
    assert found["entry"], found
    assert all(_origin(e["resource"]) == ["Device/alpha-module"] for e in found["entry"])
    everything = kt2.search("alpha-beheer", "AuditEvent?_count=100")
    assert {o for e in everything["entry"] for o in _origin(e["resource"])} > {"Device/alpha-module"}


def test_no_grant_at_all_is_403_for_search_and_read(kt2):
    headers = _minted(kt2, "system/Patient.rs")
    assert kt2.http.get(f"{kt2.base()}/Task", headers=headers).status_code == 403
    assert kt2.http.get(f"{kt2.base()}/Task/x", headers=headers).status_code == 403
    assert kt2.http.get(f"{kt2.base()}/Task/_history", headers=headers).status_code == 403
    assert kt2.http.get(f"{kt2.base()}/Patient", headers=headers).status_code == 200


def test_granted_scope_narrows_to_the_named_devices(kt2):
    world = kt2.world()
    own = kt2.create("alpha-module", task(world["patient"]["id"], world["definition"]["id"]))
    headers = _minted(kt2, "system/Task.rs?resource-origin=Device/alpha-module,Device/alpha-module-2")
    found = kt2.http.get(f"{kt2.base()}/Task", params={"_id": f"{own['id']},{world['task']['id']}"},
                         headers=headers).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [own["id"]]
    assert kt2.http.get(f"{kt2.base()}/Task/{world['task']['id']}", headers=headers).status_code == 403


def test_includes_are_shown_only_when_readable(kt2):
    world = kt2.world()
    query = f"{kt2.base()}/Task?_id={world['task']['id']}&_include=Task:patient"
    full = kt2.http.get(query, headers=_minted(kt2, "system/Task.rs system/Patient.rs")).json()
    assert [e["search"]["mode"] for e in full["entry"]] == ["match", "include"]
    narrowed = kt2.http.get(query, headers=_minted(
        kt2, "system/Task.rs system/Patient.rs?resource-origin=Device/nobody")).json()
    assert [e["search"]["mode"] for e in narrowed["entry"]] == ["match"]


def test_domains_are_isolated(kt2):
    created = kt2.create("alpha-portal", patient())
    assert kt2.get("beta-portal", f"Patient/{created['id']}").status_code == 404
    found = kt2.search("beta-portal", f"Patient?_id={created['id']}")
    assert found["total"] == 0
    beta = kt2.create("beta-portal", patient())
    assert kt2.get("alpha-portal", f"Patient/{beta['id']}", domain=ALPHA).status_code == 404


def test_scope_for_role_grammar():
    role = Role(name="r", permissions={"Task": ["RU:ALL", "CD:OWN"], "Endpoint": "R:GRANTED(mod)"})
    assert Permission.parse("R:GRANTED(mod)").granted == ("mod",)
    scope = scope_for_role(role, "Device/me", lambda app: ["Device/b", "Device/a"] if app == "mod" else [])
    assert scope.split() == ["system/Endpoint.rs?resource-origin=Device/a,Device/b", "system/Task.rus",
                             "system/Task.cd?resource-origin=Device/me"]
    parsed = ScopeSet(scope)
    assert parsed.allows("Task", "d", "Device/me") and not parsed.allows("Task", "d", "Device/other")
    assert parsed.narrowing("Endpoint") == frozenset({"Device/a", "Device/b"})
    assert parsed.narrowing("Task") is None and parsed.narrowing("Patient") == frozenset()
    nothing = scope_for_role(Role(name="g", permissions={"Task": "R:GRANTED(x)"}), "Device/me",
                             lambda app: [])
    assert nothing == ""

"""Write-time validation: profile errors 422 with located issues, nothing half-stored, the view sub-task
rule, referential integrity on write and delete, Subscription rules (KT2-VAL-*, KT2-RI-*, KT2-SUB-REST-HOOK,
KT2-SUB-HTTPS, KT2-SUB-NO-PAYLOAD)."""

from __future__ import annotations

import pytest
from kt2_support import (  # noqa: F401
    ALPHA,
    expressions,
    issues,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    practitioner,
    subscription,
    task,
    updated,
)

from ktbench.validation import validate_resource


def _count(kt2, query: str) -> int:
    return kt2.search("alpha-portal", query)["total"]


def test_profile_errors_are_422_with_one_issue_per_finding(kt2):
    body = patient()
    body.pop("identifier")
    body["gender"] = "F"
    answer = kt2.post("alpha-portal", "Patient", body)
    assert answer.status_code == 422
    assert {"Patient.identifier", "Patient.gender"} <= set(expressions(answer))
    assert all(i["severity"] == "error" for i in issues(answer))


def test_nothing_is_stored_after_a_refusal(kt2):
    marker = "refused-family"
    body = patient(family=marker)
    body["birthDate"] = "1970-13-45"
    assert kt2.post("alpha-portal", "Patient", body).status_code == 422
    assert _count(kt2, f"Patient?family={marker}") == 0


def test_wrong_json_types_are_422(kt2):
    for change in ({"active": "yes"}, {"name": "Jan"}, {"identifier": {"value": "x"}}, {"birthDate": 1970}):
        answer = kt2.post("alpha-portal", "Patient", {**patient(), **change})
        assert answer.status_code == 422, (change, answer.text)
        assert expressions(answer)


def test_update_is_validated_too(kt2):
    created = kt2.create("alpha-portal", patient())
    broken = updated(created, gender="unknown-gender")
    answer = kt2.put("alpha-portal", f"Patient/{created['id']}", broken, version="1")
    assert answer.status_code == 422
    assert kt2.get("alpha-portal", f"Patient/{created['id']}").json()["meta"]["versionId"] == "1"


def test_view_subtask_needs_part_of(kt2):
    world = kt2.world()
    ids = world["patient"]["id"], world["definition"]["id"]
    refused = kt2.post("alpha-portal", "Task", task(*ids, view=True))
    assert refused.status_code == 422 and "Task.partOf" in expressions(refused)
    accepted = kt2.post("alpha-portal", "Task", task(*ids, view=True, part_of=world["task"]["id"]))
    assert accepted.status_code == 201, accepted.text


def test_dangling_reference_is_422_naming_the_element(kt2):
    world = kt2.world()
    body = task("no-such-patient", world["definition"]["id"])
    answer = kt2.post("alpha-portal", "Task", body)
    assert answer.status_code == 422
    assert "Task.for" in expressions(answer) and "Task.owner" in expressions(answer)
    assert any(i["code"] == "not-found" for i in issues(answer))


def test_reference_to_a_deleted_resource_is_refused(kt2):
    world = kt2.world()
    gone = kt2.create("alpha-portal", patient())
    kt2.delete("alpha-portal", f"Patient/{gone['id']}")
    answer = kt2.post("alpha-portal", "Task", task(gone["id"], world["definition"]["id"]))
    assert answer.status_code == 422


def test_external_absolute_references_are_not_checked(kt2):
    body = patient()
    body["managingOrganization"] = {"reference": "https://elsewhere.example.org/fhir/Organization/1"}
    assert kt2.post("alpha-portal", "Patient", body).status_code == 201


def test_audit_events_may_name_what_is_gone(kt2):
    from kt2_support import client_audit_event
    event = client_audit_event()
    event["entity"] = [{"what": {"reference": "Task/deleted-long-ago/_history/3"}}]
    assert kt2.post("alpha-module", "AuditEvent", event).status_code == 201
    event["agent"][0]["who"] = {"reference": "Device/no-such-device"}
    assert kt2.post("alpha-module", "AuditEvent", event).status_code == 422   # only entity.what is exempt


def test_references_from_audit_events_do_not_block_delete(kt2):
    created = kt2.create("alpha-portal", patient())
    kt2.get("alpha-portal", f"Patient/{created['id']}")
    kt2.services.audit.flush()
    assert kt2.audit_events(entity=f"Patient/{created['id']}")
    assert kt2.delete("alpha-portal", f"Patient/{created['id']}").status_code == 200


def test_delete_of_a_practitioner_referenced_by_a_task_is_409(kt2):
    world = kt2.world()
    requester = kt2.create("alpha-portal", practitioner())
    body = task(world["patient"]["id"], world["definition"]["id"])
    body["requester"] = {"reference": f"Practitioner/{requester['id']}", "type": "Practitioner"}
    kt2.create("alpha-portal", body)
    answer = kt2.delete("alpha-portal", f"Practitioner/{requester['id']}")
    assert answer.status_code == 409 and "Task/" in issues(answer)[0]["diagnostics"]


@pytest.mark.parametrize("change, expression", [
    (lambda s: s["channel"].update(type="websocket"), "Subscription.channel.type"),
    (lambda s: s["channel"].update(endpoint="http://example.org/hook"), "Subscription.channel.endpoint"),
    (lambda s: s["channel"].update(endpoint="ftp://example.org/hook"), "Subscription.channel.endpoint"),
    (lambda s: s["channel"].update(payload="application/fhir+json"), "Subscription.channel.payload"),
    (lambda s: s.update(criteria="Observation?code=x"), "Subscription.criteria"),
    (lambda s: s.update(criteria="Task?nonsense=1"), "Subscription.criteria"),
    (lambda s: s.update(criteria="Task?_count=5"), "Subscription.criteria"),
    (lambda s: s["channel"].update(header=["no colon here"]), "Subscription.channel.header[0]"),
    (lambda s: s["channel"].update(header=["X-Request-Id: mine"]), "Subscription.channel.header[0]"),
], ids=["websocket", "http", "ftp", "payload", "foreign-type", "unknown-param", "result-param", "bad-header",
        "reserved-header"])
def test_subscription_rules_are_422(kt2, change, expression):
    body = subscription("Task?status=completed", "https://portal.ktbench.test/hook")
    change(body)
    answer = kt2.post("alpha-portal", "Subscription", body)
    assert answer.status_code == 422, answer.text
    assert expression in expressions(answer)


def test_subscription_gets_status_active_from_the_server(kt2):
    created = kt2.create("alpha-portal", subscription("Task?status=completed", "https://portal.ktbench.test/hook",
                                                      ("X-KTSubscription: TaskCompleted",)))
    assert created["status"] == "active"
    assert validate_resource(created, kt=2).ok


def test_loopback_http_subscriptions_only_with_the_switch(make_kt2, kt2):
    body = subscription("Task", "http://127.0.0.1:9/hook")
    assert kt2.post("alpha-portal", "Subscription", body).status_code == 201    # test data switches it on
    with make_kt2(settings={"allow_loopback_http_subscriptions": False}) as strict:
        answer = strict.post("alpha-portal", "Subscription", body)
        assert answer.status_code == 422 and "Subscription.channel.endpoint" in expressions(answer)


def test_stored_resources_validate(kt2):
    world = kt2.world()
    for resource in world.values():
        read = kt2.get("alpha-portal", f"{resource['resourceType']}/{resource['id']}").json()
        result = validate_resource(read, kt=2)
        assert result.ok, result.to_text()
    device = kt2.get("alpha-portal", f"Device/ktbench-voorziening-{ALPHA}").json()
    assert validate_resource(device, kt=2).ok
    assert validate_resource(kt2.get("alpha-portal", "Device/alpha-module").json(), kt=2).ok


def test_malformed_meta_and_extension_are_named_not_dropped(kt2):
    for change, expression in (({"meta": "KT2Patient"}, "Patient.meta"), ({"extension": "x"}, "Patient.extension")):
        answer = kt2.post("alpha-portal", "Patient", {**patient(), **change})
        assert answer.status_code == 422, answer.text
        assert any(e.startswith(expression) for e in expressions(answer)), expressions(answer)

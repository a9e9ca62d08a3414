"""KT2 domain admin: what each role sees and may do (seed 001 ch. 4-5).

A domain admin sees and manages only their domains' instances and connection requests; an application admin
sees only their applications, their instances and their connection requests, and files new ones.  Instances
and requests outside someone's view are 404 (as unknown ones, so ids cannot be probed); what someone sees but
may not do, and domains or applications that are not theirs, are 403.
"""

from __future__ import annotations

import pytest
from kt2_admin_support import (  # noqa: F401
    PRE_REGISTERED,
    AdminHarness,
    admin,
    error_of,
    no_unhandled_errors,
)


def ids(items: list[dict], key: str = "client_id") -> set[str]:
    return {i[key] for i in items}


def test_domain_admin_lists_only_their_domains(admin: AdminHarness) -> None:
    body = admin.api("GET", "/domains", "alpha-admin").json()
    assert [d["name"] for d in body["domains"]] == ["ktbench-alpha"]
    alpha = body["domains"][0]
    assert alpha["title"] == "ktbench GGZ Alpha" and alpha["environment"] == "ktbench"
    assert alpha["fhir_base"] == f"{admin.url}/api/v1/ktbench-alpha/fhir/r4"
    assert alpha["instances"] == 2 and alpha["pending_requests"] == 0
    assert [d["name"] for d in admin.api("GET", "/domains", "beta-admin").json()["domains"]] == ["ktbench-beta"]


def test_application_admin_sees_every_domain_to_file_into(admin: AdminHarness) -> None:
    body = admin.api("GET", "/domains", "module-admin").json()
    assert [d["name"] for d in body["domains"]] == ["ktbench-alpha", "ktbench-beta"]
    assert all("instances" not in d for d in body["domains"])  # no counts of other people's domains


def test_domain_instances_per_role(admin: AdminHarness) -> None:
    alpha = {c for c, (d, *_rest) in PRE_REGISTERED.items() if d == "ktbench-alpha"}
    assert ids(admin.api("GET", "/domains/ktbench-alpha/instances", "alpha-admin").json()["instances"]) == alpha
    assert ids(admin.api("GET", "/domains/ktbench-alpha/instances", "alpha-admin-2").json()["instances"]) == alpha
    # the module admin sees only the module's instances, here: none in alpha, one in beta
    assert admin.api("GET", "/domains/ktbench-alpha/instances", "module-admin").json()["instances"] == []
    assert ids(admin.api("GET", "/domains/ktbench-beta/instances", "module-admin").json()["instances"]) == \
        {"beta-module"}
    assert ids(admin.api("GET", "/instances", "vendor-admin").json()["instances"]) == set(PRE_REGISTERED)
    assert ids(admin.api("GET", "/instances", "beta-admin").json()["instances"]) == {"beta-module"}


def test_domain_admin_of_another_domain_is_403(admin: AdminHarness) -> None:
    for path in ("/domains/ktbench-alpha", "/domains/ktbench-alpha/instances",
                 "/domains/ktbench-alpha/connection-requests"):
        assert error_of(admin.api("GET", path, "beta-admin"), 403)["error"] == "forbidden"


def test_unknown_domain_is_404(admin: AdminHarness) -> None:
    for who in ("alpha-admin", "vendor-admin"):
        error_of(admin.api("GET", "/domains/no-such-domain/instances", who), 404)
        error_of(admin.api("GET", "/domains/no-such-domain", who), 404)


@pytest.mark.parametrize("who, client_id, status", [
    ("alpha-admin", "alpha-portal", 200), ("alpha-admin", "beta-module", 404),
    ("beta-admin", "beta-module", 200), ("beta-admin", "alpha-portal", 404),
    ("vendor-admin", "alpha-portal", 200), ("module-admin", "beta-module", 200),
    ("module-admin", "alpha-portal", 404), ("alpha-admin", "no-such-instance", 404),
])
def test_instance_detail_visibility(admin: AdminHarness, who: str, client_id: str, status: int) -> None:
    response = admin.api("GET", f"/instances/{client_id}", who)
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["client_id"] == client_id
    else:
        assert error_of(response, 404)["error"] == "not_found"


def test_hidden_and_unknown_instances_answer_alike(admin: AdminHarness) -> None:
    hidden = admin.api("GET", "/instances/beta-module", "alpha-admin").json()
    unknown = admin.api("GET", "/instances/beta-modulf", "alpha-admin").json()
    assert hidden["error"] == unknown["error"] and hidden["detail"].replace("beta-module", "X") == \
        unknown["detail"].replace("beta-modulf", "X")


def test_status_change_rights(admin: AdminHarness) -> None:
    # the application admin sees the instance but may not change it; another domain's admin does not see it
    assert error_of(admin.set_status("alpha-portal", "maintenance", who="vendor-admin"), 403)["error"] == "forbidden"
    error_of(admin.set_status("alpha-portal", "maintenance", who="beta-admin"), 404)
    error_of(admin.set_status("alpha-portal", "maintenance", who="module-admin"), 404)
    assert admin.registry_status("alpha-portal") == "active"
    assert admin.set_status("alpha-portal", "maintenance", who="alpha-admin-2").status_code == 200


def test_applications_per_role(admin: AdminHarness) -> None:
    mine = admin.api("GET", "/applications", "module-admin").json()["applications"]
    assert [a["id"] for a in mine] == ["ktbench-module"] and mine[0]["administered"] is True
    vendor = admin.api("GET", "/applications", "vendor-admin").json()["applications"]
    assert len(vendor) == 4
    catalogue = admin.api("GET", "/applications", "alpha-admin").json()["applications"]
    assert len(catalogue) == 4 and not any(a["administered"] for a in catalogue)
    error_of(admin.api("GET", "/applications/ktbench-portal", "module-admin"), 403)
    error_of(admin.api("GET", "/applications/no-such-app", "module-admin"), 404)


def test_application_detail_shows_only_what_the_caller_sees(admin: AdminHarness) -> None:
    vendor = admin.api("GET", "/applications/ktbench-module", "vendor-admin").json()
    assert ids(vendor["instances"]) == {"beta-module"}
    # a domain admin reads the catalogue entry, with only their domains' instances
    alpha = admin.api("GET", "/applications/ktbench-module", "alpha-admin").json()
    assert alpha["instances"] == []
    beta = admin.api("GET", "/applications/ktbench-module", "beta-admin").json()
    assert ids(beta["instances"]) == {"beta-module"}


def test_connection_request_visibility(admin: AdminHarness) -> None:
    module_alpha = admin.filed("module-admin")                                       # module in alpha
    portal_beta = admin.filed("vendor-admin", application="ktbench-portal", domain="ktbench-beta")

    def listed(who: str) -> set[str]:
        return ids(admin.api("GET", "/connection-requests", who).json()["connection_requests"], "id")

    assert listed("alpha-admin") == listed("alpha-admin-2") == {module_alpha["id"]}
    assert listed("beta-admin") == {portal_beta["id"]}
    assert listed("vendor-admin") == {module_alpha["id"], portal_beta["id"]}
    assert listed("module-admin") == {module_alpha["id"]}
    assert admin.api("GET", f"/connection-requests/{portal_beta['id']}", "beta-admin").status_code == 200
    error_of(admin.api("GET", f"/connection-requests/{portal_beta['id']}", "alpha-admin"), 404)
    error_of(admin.api("GET", f"/connection-requests/{portal_beta['id']}", "module-admin"), 404)
    domain_tab = admin.api("GET", "/domains/ktbench-alpha/connection-requests", "alpha-admin").json()
    assert ids(domain_tab["connection_requests"], "id") == {module_alpha["id"]}


def test_deciding_rights(admin: AdminHarness) -> None:
    filed = admin.filed()
    rid = filed["id"]
    # the filer sees the request but does not decide it; another domain's admin does not see it
    error_of(admin.accept(rid, who="vendor-admin"), 403)
    error_of(admin.api("POST", f"/connection-requests/{rid}/reject", "vendor-admin", json={"reason": "x"}), 403)
    error_of(admin.accept(rid, who="beta-admin"), 404)
    error_of(admin.api("POST", f"/connection-requests/{rid}/reject", "beta-admin", json={"reason": "x"}), 404)
    error_of(admin.accept("no-such-request"), 404)
    assert admin.api("GET", f"/connection-requests/{rid}", "alpha-admin").json()["status"] == "pending"
    assert admin.accept(rid, who="alpha-admin-2").status_code == 200


def test_filing_rights(admin: AdminHarness) -> None:
    assert error_of(admin.file("alpha-admin"), 403)["error"] == "forbidden"
    assert error_of(admin.file("module-admin", application="ktbench-portal"), 403)["error"] == "forbidden"
    assert admin.api("GET", "/connection-requests", "alpha-admin").json()["connection_requests"] == []


def test_outbox_shows_only_the_callers_mail(admin: AdminHarness) -> None:
    admin.filed(domain="ktbench-beta")
    assert [m["subject"] for m in admin.mails_to("beta-admin")] == \
        ["Nieuwe connectieaanvraag voor domein ktbench-beta op ktbench"]
    assert admin.mails_to("alpha-admin") == []
    assert admin.mails_to("vendor-admin") == []


@pytest.mark.parametrize("method, path", [
    ("GET", "/domains"), ("GET", "/domains/ktbench-alpha/instances"), ("GET", "/instances/alpha-portal"),
    ("POST", "/instances/alpha-portal/status"), ("GET", "/connection-requests"), ("POST", "/connection-requests"),
    ("POST", "/connection-requests/x/accept"), ("POST", "/connection-requests/x/reject"), ("GET", "/outbox"),
    ("GET", "/roles"), ("GET", "/applications"), ("GET", "/me"),
])
def test_everything_but_login_needs_a_session(admin: AdminHarness, method: str, path: str) -> None:
    error_of(admin.api(method, path, json={}), 401)

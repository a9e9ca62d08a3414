"""KT2 domain admin faults: each catalogued admin defect really changes what the admin does (a probe per fault
shows the defect with the fault on and the right behaviour without), and each names KT2-ADMIN requirements."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kt2_admin_support import (  # noqa: F401
    API,
    PASSWORDS,
    AdminHarness,
    admin,
    no_unhandled_errors,
    test_data,
)

from simulators.kt2.faults import FAULTS


def locks_out(admin: AdminHarness) -> bool:
    admin.use(test_data(login_attempts=2), faults=admin.faults)
    for _ in range(3):
        admin.http.post(f"{API}/login", json={"username": "beta-admin", "password": "wrong-pw"})
    return admin.http.post(f"{API}/login", json={"username": "beta-admin",
                                                 "password": PASSWORDS["beta-admin"]}).status_code == 423


def refuses_wrong_password(admin: AdminHarness) -> bool:
    return admin.http.post(f"{API}/login", json={"username": "beta-admin", "password": "wrong-pw"}).status_code == 401


def stays_pending(admin: AdminHarness) -> bool:
    return admin.filed()["status"] == "pending" and len(admin.admin.instances("ktbench-alpha")) == 2


def mails_domain_admins(admin: AdminHarness) -> bool:
    admin.filed()
    return len(admin.mails_to("alpha-admin")) == 1


def mails_acceptance(admin: AdminHarness) -> bool:
    admin.accepted()
    return "Connectieaanvraag geaccepteerd" in [m["subject"] for m in admin.mails_to("vendor-admin")]


def creates_device(admin: AdminHarness) -> bool:
    return admin.fhir.device("ktbench-alpha", admin.accepted()["client_id"]) is not None


def rejection_creates_nothing(admin: AdminHarness) -> bool:
    filed = admin.filed()
    admin.api("POST", f"/connection-requests/{filed['id']}/reject", "alpha-admin", json={"reason": "nee"})
    return len(admin.admin.instances("ktbench-alpha")) == 2


def needs_a_reason(admin: AdminHarness) -> bool:
    return admin.set_status("alpha-portal", "maintenance", reason="").status_code == 422


def reactivates(admin: AdminHarness) -> bool:
    return admin.set_status("alpha-epd-maint", "active").status_code == 200


def closed_is_final(admin: AdminHarness) -> bool:
    admin.set_status("alpha-portal", "closed")
    return admin.set_status("alpha-portal", "active").status_code == 409


def device_follows(admin: AdminHarness) -> bool:
    admin.set_status("alpha-portal", "maintenance")
    return admin.fhir.device("ktbench-alpha", "alpha-portal")["status"] == "inactive"


PROBES: dict[str, Callable[[AdminHarness], bool]] = {
    "login-any-password": refuses_wrong_password, "no-lockout": locks_out, "request-auto-accepted": stays_pending,
    "no-request-email": mails_domain_admins, "no-acceptance-email": mails_acceptance,
    "accept-without-device": creates_device, "reject-creates-instance": rejection_creates_nothing,
    "status-reason-optional": needs_a_reason, "maintenance-not-reactivatable": reactivates,
    "closed-instance-reopenable": closed_is_final, "device-status-stale": device_follows,
}


def test_every_admin_fault_is_catalogued_with_admin_requirements() -> None:
    for name in PROBES:
        assert name in FAULTS, name
        assert all(r.startswith("KT2-ADMIN-") for r in FAULTS[name].breaks), FAULTS[name]


@pytest.mark.parametrize("fault", sorted(PROBES))
def test_the_fault_shows(admin: AdminHarness, fault: str) -> None:
    probe = PROBES[fault]
    admin.faults = ()
    admin.use()
    assert probe(admin), f"without {fault} the probe must see the right behaviour"
    admin.faults = (fault,)
    admin.use(faults=(fault,))
    assert not probe(admin), f"with {fault} the probe must see the defect"

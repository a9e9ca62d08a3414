"""KT2 domain admin: log-in, wrong passwords, blocking after `login_attempts`, unblocking, sessions and their
expiry, log-out (seed 001 §3.2; KT2-ADMIN-LOGIN, KT2-ADMIN-LOCKOUT)."""

from __future__ import annotations

import pytest
from kt2_admin_support import (  # noqa: F401
    API,
    EMAILS,
    PASSWORDS,
    AdminHarness,
    admin,
    error_of,
    file_db,
    no_unhandled_errors,
    test_data,
)


def login(admin: AdminHarness, username: str, password: str):
    return admin.http.post(f"{API}/login", json={"username": username, "password": password})


def test_login_answers_session_expiry_and_account(admin: AdminHarness) -> None:
    response = login(admin, "alpha-admin", PASSWORDS["alpha-admin"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["session"], str) and len(body["session"]) >= 32
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == admin.ctx.settings.admin_session_seconds
    assert body["account"] == {"username": "alpha-admin", "kind": "domain-admin", "kind_label": "Domeinbeheerder",
                               "name": "Beheerder Alpha", "email": EMAILS["alpha-admin"],
                               "domains": ["ktbench-alpha"], "applications": []}
    assert PASSWORDS["alpha-admin"] not in response.text
    me = admin.api("GET", "/me", token=body["session"])
    assert me.status_code == 200 and me.json()["username"] == "alpha-admin"


def test_every_login_opens_a_new_session(admin: AdminHarness) -> None:
    first, second = admin.login("vendor-admin"), admin.login("vendor-admin")
    assert first != second
    for token in (first, second):
        assert admin.api("GET", "/me", token=token).status_code == 200


def test_application_admin_logs_in_with_their_applications(admin: AdminHarness) -> None:
    body = login(admin, "module-admin", PASSWORDS["module-admin"]).json()
    assert body["account"]["kind"] == "application-admin"
    assert body["account"]["kind_label"] == "Applicatiebeheerder"
    assert body["account"]["applications"] == ["ktbench-module"]


@pytest.mark.parametrize("username, password", [
    ("alpha-admin", "nope-Xq81"),
    ("alpha-admin", PASSWORDS["alpha-admin"] + "x"),
    ("alpha-admin", PASSWORDS["alpha-admin"][:-1]),
    ("alpha-admin", PASSWORDS["alpha-admin"].upper()),
    ("Alpha-Admin", PASSWORDS["alpha-admin"]),
    ("nobody", "whatever-Zr4"),
    ("alpha-admin", PASSWORDS["beta-admin"]),
])
def test_wrong_credentials_are_401_without_echo(admin: AdminHarness, username: str, password: str) -> None:
    response = login(admin, username, password)
    body = error_of(response, 401)
    assert body["error"] == "unauthorized"
    assert password not in response.text
    assert "session" not in response.json()


def test_unknown_and_known_usernames_get_the_same_refusal(admin: AdminHarness) -> None:
    unknown = login(admin, "nobody", "x").json()
    known = login(admin, "beta-admin", "x").json()
    assert unknown == known


def test_account_blocks_after_login_attempts_wrong_passwords(admin: AdminHarness) -> None:
    admin.use(test_data(login_attempts=3))
    for _ in range(2):
        assert login(admin, "beta-admin", "wrong").status_code == 401
    third = login(admin, "beta-admin", "wrong")
    body = error_of(third, 423)
    assert body["error"] == "account_blocked"
    # blocked: the right password is refused too, and nothing about the password leaks
    right = login(admin, "beta-admin", PASSWORDS["beta-admin"])
    assert error_of(right, 423)["error"] == "account_blocked"
    assert PASSWORDS["beta-admin"] not in right.text
    # other accounts are not affected
    assert login(admin, "alpha-admin", PASSWORDS["alpha-admin"]).status_code == 200


def test_default_limit_is_five_attempts(admin: AdminHarness) -> None:
    assert admin.ctx.settings.login_attempts == 5
    statuses = [login(admin, "alpha-admin", f"wrong-{i}").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 401, 423]


def test_a_right_password_resets_the_count(admin: AdminHarness) -> None:
    admin.use(test_data(login_attempts=3))
    for _ in range(2):
        assert login(admin, "beta-admin", "wrong").status_code == 401
    assert login(admin, "beta-admin", PASSWORDS["beta-admin"]).status_code == 200
    for _ in range(2):
        assert login(admin, "beta-admin", "wrong").status_code == 401
    assert login(admin, "beta-admin", PASSWORDS["beta-admin"]).status_code == 200


def test_a_domain_admin_unblocks_an_account(admin: AdminHarness) -> None:
    admin.use(test_data(login_attempts=2))
    for _ in range(2):
        login(admin, "vendor-admin", "wrong")
    assert login(admin, "vendor-admin", PASSWORDS["vendor-admin"]).status_code == 423
    state = admin.api("POST", "/accounts/vendor-admin/unblock", "alpha-admin")
    assert state.status_code == 200, state.text
    assert state.json() == {"username": "vendor-admin", "failed_attempts": 0, "blocked": False, "blocked_at": None}
    assert login(admin, "vendor-admin", PASSWORDS["vendor-admin"]).status_code == 200


def test_unblocking_needs_a_domain_admin(admin: AdminHarness) -> None:
    assert error_of(admin.api("POST", "/accounts/alpha-admin/unblock", "vendor-admin"), 403)["error"] == "forbidden"
    assert error_of(admin.api("POST", "/accounts/nobody/unblock", "alpha-admin"), 404)["error"] == "not_found"
    error_of(admin.api("POST", "/accounts/alpha-admin/unblock"), 401)


def test_blocking_survives_a_restart(admin: AdminHarness, tmp_path) -> None:
    db = file_db(tmp_path)
    admin.use(test_data(login_attempts=2), db=db)
    for _ in range(2):
        login(admin, "beta-admin", "wrong")
    admin.use(test_data(login_attempts=2), db=db)
    assert login(admin, "beta-admin", PASSWORDS["beta-admin"]).status_code == 423


def test_sessions_expire(admin: AdminHarness) -> None:
    admin.use(test_data(admin_session_seconds=60))
    token = admin.login("alpha-admin")
    assert admin.api("GET", "/me", token=token).status_code == 200
    admin.ctx.clock.offset += 59
    assert admin.api("GET", "/me", token=token).status_code == 200
    admin.ctx.clock.offset += 2
    body = error_of(admin.api("GET", "/me", token=token), 401)
    assert "expired" in body["detail"]
    # gone for good, also when the clock goes back
    admin.ctx.clock.offset = 0
    error_of(admin.api("GET", "/me", token=token), 401)


def test_logout_ends_the_session(admin: AdminHarness) -> None:
    token = admin.login("alpha-admin")
    other = admin.login("alpha-admin")
    response = admin.api("POST", "/logout", token=token)
    assert response.status_code == 204
    error_of(admin.api("GET", "/me", token=token), 401)
    error_of(admin.api("POST", "/logout", token=token), 401)
    assert admin.api("GET", "/me", token=other).status_code == 200


def test_sessions_survive_a_restart_of_a_file_database(admin: AdminHarness, tmp_path) -> None:
    db = file_db(tmp_path)
    admin.use(db=db)
    token = admin.login("alpha-admin")
    admin.use(db=db)
    assert admin.api("GET", "/me", token=token).status_code == 200


def test_session_tokens_are_not_stored_in_the_clear(admin: AdminHarness) -> None:
    token = admin.login("alpha-admin")
    rows = admin.ctx.store.all("SELECT * FROM admin_sessions")
    assert rows and all(token not in [str(v) for v in tuple(r)] for r in rows)
    everything = " ".join(str(v) for t in admin.snapshot().values() for row in t for v in row)
    assert PASSWORDS["alpha-admin"] not in everything


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Basic YWxwaGE6cGFzcw==", "Bearer not-a-session-token-at-all",
    "Bearer " + "A" * 43, "bearer" + " x" * 50, "Token abc", "Bearer " + "\u00e9" * 16,
    "Bearer " + "x" * 5000,
])
def test_garbage_authorization_is_401(admin: AdminHarness, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.encode("utf-8")}
    response = admin.http.get(f"{API}/me", headers=headers)
    body = error_of(response, 401)
    assert body["error"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_web_cookie_does_not_open_the_api(admin: AdminHarness) -> None:
    token = admin.login("alpha-admin")
    response = admin.http.get(f"{API}/me", headers={"Cookie": f"kt2mgmt_session={token}"})
    error_of(response, 401)


def test_fault_no_lockout_never_blocks(admin: AdminHarness) -> None:
    admin.use(test_data(login_attempts=2), faults=("no-lockout",))
    for _ in range(4):
        assert login(admin, "beta-admin", "wrong").status_code == 401
    assert login(admin, "beta-admin", PASSWORDS["beta-admin"]).status_code == 200


def test_fault_login_any_password(admin: AdminHarness) -> None:
    admin.use(faults=("login-any-password",))
    assert login(admin, "beta-admin", "wrong").status_code == 200
    assert login(admin, "nobody", "wrong").status_code == 401

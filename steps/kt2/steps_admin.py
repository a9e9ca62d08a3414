"""Steps of connection approval and instance statuses (features/kt2/connection_approval.feature).

The bench plays the people at the domain admin application (seed 001 chapters 3-5) through its JSON API
(`AdminClient`): the application admin files a connection request for a new instance (its own JWKS on the
bench's actor host), the domain admin accepts it with a role or rejects it with a reason and changes instance
statuses.  What they see is judged there (the request, the instance, the outbox), what the applications see
at the voorziening (tokens, the Device in the FHIR store).

Nothing here touches the bench's shared portal and module: every scenario makes its own instance.  The
lock-out checks block only the throw-away account of the target's `lockout-account` role, and always unblock
it again (also when the scenario fails), so a persistent voorziening stays usable.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from ktbench.core.errors import BenchError
from ktbench.core.requirements import ScenarioRequirements, precondition, require
from ktbench.http.client import json_dict
from ktbench.validation.engine import validate_resource
from simulators.kt2.actors import (
    AdminClient,
    KeyRing,
    Kt2Application,
    Kt2Module,
    Kt2Portal,
)
from steps.kt2.checks import (
    describe,
    expect_status,
    json_object,
    oauth_error,
    outcome_text,
)
from steps.kt2.world import Kt2World

CLIENT_ID_SYSTEM = "http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id"
STATUSES = {"Actief": "active", "In onderhoud": "maintenance", "Afgesloten": "closed"}   # seed 001 §4.5
LOCKOUT_ROLE = "lockout-account"
MAX_WRONG_PASSWORDS = 10          # "te vaak een verkeerd wachtwoord" (seed 001 §3.2): the reference blocks at 5
MAIL_WAIT_SECONDS = 5.0           # the outbox of a real voorziening may lag a little behind the decision
REFUSED_CHANGE = (400, 409, 422)  # a status change the domain admin may not make (bad input or not allowed)
FAST_ALGORITHMS = ("ES256", "ES384")   # EC keys are made in microseconds, RSA keys in a tenth of a second or more

NOT_PENDING = ("KT2-ADMIN-REQUEST-PENDING", "KT2-ADMIN-REJECT")
STATUS_REQUIREMENTS = ("KT2-ADMIN-STATUS-MAINTENANCE", "KT2-ADMIN-STATUS-ACTIVE", "KT2-ADMIN-STATUS-CLOSED")
MAIL_REQUIREMENTS = ("KT2-ADMIN-REQUEST-NOTIFY", "KT2-ADMIN-ACCEPT", "KT2-ADMIN-REJECT")


@dataclass
class NewInstance:
    """An application instance the application admin asks to join the domain (no secrets in its repr)."""

    hosted: str
    name: str
    keys: KeyRing
    jwks_uri: str
    redirect_uri: str
    launch_url: str
    request_id: str | None = None
    client_id: str | None = None
    reason: str | None = None
    decided: bool = False

    def __repr__(self) -> str:
        return f"<NewInstance {self.name!r} request={self.request_id!r} client_id={self.client_id!r}>"


def _refusal(answer: httpx.Response) -> str:
    data = json_dict(answer)
    text = " ".join(str(data.get(k, "")) for k in ("error", "detail")).strip()
    return text or outcome_text(answer)


def _admin(kt2: Kt2World, role: str) -> AdminClient:
    """A real voorziening's targets file may leave the admin accounts out: its admin scenarios then skip (the
    run says incomplete and names the key), they are not the target's failure."""
    if role not in kt2.bench.admins:
        name = kt2.bench.target.name
        pytest.skip(f"the target gives no {role} account: add [targets.{name}.roles.{role}] (type \"account\", "
                    "username, password) to run the connection-approval scenarios")
    return kt2.bench.admin(role)


def _domain_admin(kt2: Kt2World) -> AdminClient:
    return _admin(kt2, "domain-admin")


def _application_admin(kt2: Kt2World) -> AdminClient:
    return _admin(kt2, "application-admin")


def _new(kt2: Kt2World) -> NewInstance:
    try:
        return kt2.notes["new instance"]
    except KeyError:
        raise BenchError("no earlier step made a new instance") from None


def _instance(kt2: Kt2World) -> Kt2Application:
    try:
        return kt2.notes["instance"]
    except KeyError:
        raise BenchError("no earlier step registered an instance") from None


def _algorithm(kt2: Kt2World) -> str:
    """A quick key to make: EC when the voorziening declares it, else the bench's usual RS512."""
    declared = kt2.bench.configuration().get("token_endpoint_auth_signing_alg_values_supported") or []
    return next((alg for alg in FAST_ALGORITHMS if alg in declared), "RS512")


def _module_role(kt2: Kt2World) -> str:
    return kt2.bench.setting("module_role")


def _as_application(kt2: Kt2World, new: NewInstance, client_id: str) -> Kt2Application:
    return Kt2Module("module", kt2.bench.http, kt2.bench.fhir_base, client_id, new.keys, jwks_url=new.jwks_uri,
                     launch_url=new.launch_url, redirect_uri=new.redirect_uri)


def _mails(admin: AdminClient, req: str, predicate: Any) -> list[dict[str, Any]]:
    """The admin's mails that `predicate` accepts, waiting a little for a voorziening that sends them later."""
    deadline = time.monotonic() + MAIL_WAIT_SECONDS
    while True:
        answer = admin.outbox(limit=100)
        expect_status(answer, 200, req, f"the {admin.name}'s outbox")
        mails = json_object(answer, req, f"the {admin.name}'s outbox").get("mails")
        require(isinstance(mails, list), req, f"the {admin.name}'s outbox has no list of mails")
        found = [m for m in mails if isinstance(m, dict) and predicate(m)]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def _listed(kt2: Kt2World, new: NewInstance, req: str) -> list[dict[str, Any]]:
    """The domain's instances (the domain admin's tab "Applicatieinstanties") that use the new instance's JWKS."""
    answer = _domain_admin(kt2).domain_instances(kt2.bench.domain)
    expect_status(answer, 200, req, "the domain's list of application instances")
    instances = json_object(answer, req, "the domain's list of application instances").get("instances")
    require(isinstance(instances, list), req, "the domain's list of application instances has no list")
    return [i for i in instances if isinstance(i, dict) and i.get("jwks_uri") == new.jwks_uri]


def _tidy(kt2: Kt2World, new: NewInstance) -> None:
    """Reject a request the scenario left pending, so a persistent voorziening does not collect them."""
    if new.request_id is None or new.decided:
        return
    try:
        _domain_admin(kt2).reject(new.request_id, "ktbench: opgeruimd na de test")
    except Exception:  # best effort: the scenario's verdict is already made
        pass


# -- logging in (seed 001 §3.2) ----------------------------------------------------------------------------------
def _lockout_account(kt2: Kt2World) -> AdminClient:
    kt2.need_admin()
    admin = kt2.bench.admins.get(LOCKOUT_ROLE)
    if admin is None:
        name = kt2.bench.target.name
        pytest.skip(f"the lock-out check blocks an account: give [targets.{name}.roles.{LOCKOUT_ROLE}] a throw-away "
                    "admin account (never one the bench registers its applications with)")
    return admin


def _unblock_quietly(domain_admin: AdminClient, username: str) -> None:
    try:
        domain_admin.unblock(username)
    except Exception:  # best effort after the verdict; the next run's first step unblocks it as well
        pass


def _opened_session(answer: httpx.Response) -> bool:
    return answer.status_code == 200 and isinstance(json_dict(answer).get("session"), str)


@when("the application admin logs in to the admin application with their own password")
def admin_right_login(kt2: Kt2World) -> None:
    kt2.need_admin()
    kt2.remember("right log-in", _application_admin(kt2).login())


@when("the application admin logs in to the admin application with a wrong password")
def admin_wrong_login(kt2: Kt2World) -> None:
    kt2.need_admin()
    admin = _application_admin(kt2)
    kt2.remember("wrong log-in", admin.login(f"wrong-{uuid.uuid4().hex}"))
    # at once the right password again: one wrong try must never count towards blocking the bench's account
    kt2.remember("reset log-in", admin.login())


@then("the admin application opened a session for the right password")
def admin_session_opened(kt2: Kt2World) -> None:
    answer = kt2.answers["right log-in"]
    expect_status(answer, 200, "KT2-ADMIN-LOGIN", "logging in with the right password")
    require(_opened_session(answer), "KT2-ADMIN-LOGIN", "logging in with the right password opened no session")


@then("the admin application refused the wrong password without a session")
def admin_session_refused(kt2: Kt2World) -> None:
    answer = kt2.answers["wrong log-in"]
    require(answer.status_code in (400, 401, 403), "KT2-ADMIN-LOGIN",
            f"logging in with a wrong password: expected a refusal (401), but {describe(answer)}")
    require("session" not in json_dict(answer), "KT2-ADMIN-LOGIN", "a wrong password was answered with a session")


@given("the lock-out account is not blocked and logs in with its password")
def lockout_ready(kt2: Kt2World, request: pytest.FixtureRequest) -> None:
    account = _lockout_account(kt2)
    domain_admin = _domain_admin(kt2)
    request.addfinalizer(lambda: _unblock_quietly(domain_admin, account.username))   # whatever happens next
    answer = domain_admin.unblock(account.username)
    precondition(answer.status_code == 200, "KT2-ADMIN-LOCKOUT",
                 f"the domain admin unblocking {account.username!r} beforehand: {describe(answer)} ({_refusal(answer)})")
    answer = account.login()
    precondition(_opened_session(answer), "KT2-ADMIN-LOGIN",
                 f"the lock-out account logging in with its password: {describe(answer)} ({_refusal(answer)})")


@when("the lock-out account logs in with wrong passwords until it is blocked")
def lockout_wrong_passwords(kt2: Kt2World) -> None:
    account = _lockout_account(kt2)
    tries = 0
    for tries in range(1, MAX_WRONG_PASSWORDS + 1):
        answer = kt2.remember("wrong log-in", account.login(f"wrong-{uuid.uuid4().hex}"))
        precondition(not _opened_session(answer), "KT2-ADMIN-LOGIN",
                     f"wrong password {tries} of the lock-out account opened a session")
        if answer.status_code != 401:     # 423 Locked (the reference), or another way of saying "blocked"
            break
    kt2.notes["wrong passwords"] = tries


@when("the lock-out account logs in with its right password")
def lockout_right_password(kt2: Kt2World) -> None:
    kt2.remember("right log-in", _lockout_account(kt2).login())


@then("the admin application refuses the blocked account even its right password")
def lockout_refused(kt2: Kt2World) -> None:
    answer = kt2.answers["right log-in"]
    tries = kt2.notes.get("wrong passwords")
    require(not _opened_session(answer) and answer.status_code in (401, 403, 423), "KT2-ADMIN-LOCKOUT",
            f"after {tries} wrong passwords in a row the account is not blocked: its right password "
            f"{describe(answer)}" + (" with a session" if _opened_session(answer) else ""))


@when("the domain admin unblocks the lock-out account")
def lockout_unblocked(kt2: Kt2World) -> None:
    account = _lockout_account(kt2)
    kt2.remember("unblock", _domain_admin(kt2).unblock(account.username))
    kt2.remember("right log-in", account.login())


@then("the lock-out account logs in with its right password again")
def lockout_login_again(kt2: Kt2World) -> None:
    expect_status(kt2.answers["unblock"], 200, "KT2-ADMIN-LOCKOUT", "the domain admin unblocking the account")
    answer = kt2.answers["right log-in"]
    require(_opened_session(answer), "KT2-ADMIN-LOCKOUT",
            f"after the domain admin unblocked it, the account's right password {describe(answer)} without a "
            f"session ({_refusal(answer)})")


# -- connection requests (seed 001 §4.6, §5.3-5.6) -----------------------------------------------------------------
@given("a new module instance that publishes its own JWKS and is not yet known to the domain")
def new_instance(kt2: Kt2World) -> None:
    kt2.need_admin()
    hosted = f"admin-{uuid.uuid4().hex[:12]}"
    keys = KeyRing.generated(_algorithm(kt2))
    host = kt2.bench.host
    host.add(hosted, keys)
    kt2.notes["new instance"] = NewInstance(hosted, f"ktbench {hosted}", keys, host.jwks_url(hosted),
                                            host.redirect_uri(hosted), host.launch_url(hosted))


@given("the application admin has filed a connection request for the new instance")
@when("the application admin files a connection request for the new instance")
def file_request(kt2: Kt2World, request: pytest.FixtureRequest) -> None:
    new = _new(kt2)
    answer = kt2.remember("filed", _application_admin(kt2).file_request(
        kt2.bench.setting("module_application"), kt2.bench.domain, new.jwks_uri, name=new.name,
        redirect_uris=[new.redirect_uri], launch_url=new.launch_url))
    body = json_dict(answer)
    precondition(answer.status_code in (200, 201) and isinstance(body.get("id"), str) and body["id"],
                 "KT2-ADMIN-REQUEST-PENDING", f"filing a connection request: {describe(answer)} ({_refusal(answer)})")
    new.request_id = body["id"]
    if isinstance(body.get("client_id"), str) and body["client_id"]:
        new.client_id = body["client_id"]          # a voorziening that decided by itself (judged later)
    kt2.notes["filed at"] = time.time()
    request.addfinalizer(lambda: _tidy(kt2, new))


@then("the connection request waits as pending without a client id")
def request_pending(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-REQUEST-PENDING"
    new = _new(kt2)
    filed = json_dict(kt2.answers["filed"])
    for what, data in (("the filing answer", filed),
                       ("the request as the domain admin sees it", None)):
        if data is None:
            answer = _domain_admin(kt2).connection_request(new.request_id)
            expect_status(answer, 200, req, "the domain admin reading the connection request")
            data = json_object(answer, req, "the connection request")
        require(data.get("status") == "pending", req,
                f"{what}: a request nobody decided on has status {data.get('status')!r} "
                f"({data.get('status_label')!r}), not pending (In behandeling)")
        require(not data.get("client_id"), req, f"{what}: a pending request already has client id "
                                                f"{data.get('client_id')!r}")


@then("the domain has no instance that uses the new instance's JWKS")
def no_instance_listed(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*NOT_PENDING)
    new = _new(kt2)
    found = _listed(kt2, new, req)
    kt2.notes["listed"] = found
    require(not found, req, f"the domain already has an instance for the undecided/refused request: "
                            f"{[(i.get('client_id'), i.get('status')) for i in found]}")


@then("the new instance gets no token")
def new_instance_no_token(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*NOT_PENDING)
    new = _new(kt2)
    candidates = [new.request_id, new.client_id] + [i.get("client_id") for i in kt2.notes.get("listed", [])]
    for client_id in dict.fromkeys(c for c in candidates if isinstance(c, str) and c):
        answer = kt2.remember("token", _as_application(kt2, new, client_id).request_token())
        oauth_error(answer, req, (400, 401), ("invalid_client",),
                    f"a token request signed with the new instance's key as client {client_id!r}")


@when("the domain admin accepts the connection request with the eHealth module role")
def accept_request(kt2: Kt2World) -> None:
    new = _new(kt2)
    answer = kt2.remember("decision", _domain_admin(kt2).accept(new.request_id, _module_role(kt2)))
    new.decided = True
    client_id = json_dict(answer).get("client_id")
    if answer.status_code == 200 and isinstance(client_id, str) and client_id:
        new.client_id = client_id


@when("the domain admin rejects the connection request with a reason")
def reject_request(kt2: Kt2World) -> None:
    new = _new(kt2)
    new.reason = f"ktbench: de JWKS van {new.hosted} is niet goedgekeurd ({uuid.uuid4().hex[:8]})"
    kt2.remember("decision", _domain_admin(kt2).reject(new.request_id, new.reason))
    new.decided = True


@then("the connection request is accepted with the eHealth module role and a client id")
def request_accepted(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-ACCEPT"
    new = _new(kt2)
    answer = kt2.answers["decision"]
    expect_status(answer, 200, req, "the domain admin accepting the request")
    data = json_object(answer, req, "the accepted request")
    require(data.get("status") == "accepted", req, f"the accepted request has status {data.get('status')!r}")
    require(data.get("role") == _module_role(kt2), req,
            f"the request was accepted with role {_module_role(kt2)!r}, but it names role {data.get('role')!r}")
    require(isinstance(new.client_id, str) and new.client_id, req, "the accepted request names no client id")
    reread = _application_admin(kt2).connection_request(new.request_id)
    expect_status(reread, 200, req, "the application admin reading the accepted request")
    again = json_object(reread, req, "the accepted request")
    require(again.get("status") == "accepted" and again.get("client_id") == new.client_id, req,
            f"the application admin sees the request as {again.get('status')!r} with client id "
            f"{again.get('client_id')!r}, not accepted with {new.client_id!r}")


@then('the domain lists the new instance as "Actief" with the eHealth module role')
def instance_listed_active(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-ACCEPT"
    new = _new(kt2)
    answer = _domain_admin(kt2).instance(new.client_id)
    expect_status(answer, 200, req, f"the domain admin reading instance {new.client_id}")
    data = json_object(answer, req, "the instance")
    require(data.get("status") == "active", req, f"the accepted instance has status {data.get('status')!r} "
                                                 f"({data.get('status_label')!r}), not Actief")
    require(data.get("role") == _module_role(kt2), req, f"the accepted instance has role {data.get('role')!r}, "
                                                        f"not {_module_role(kt2)!r}")
    require(data.get("jwks_uri") == new.jwks_uri, req, "the accepted instance does not keep the JWKS URI it was "
                                                       f"filed with: {data.get('jwks_uri')!r}")


def _grants(scope: str, rtype: str, letter: str) -> list[str]:
    found = []
    for entry in scope.split():
        if entry.startswith("system/"):
            resource, _, rest = entry[len("system/"):].partition(".")
            if resource in (rtype, "*") and letter in rest.split("?", 1)[0]:
                found.append(entry)
    return found


@then("the new instance gets a Bearer token whose scope is the eHealth module role's")
def accepted_token(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-ACCEPT"
    new = _new(kt2)
    answer = kt2.remember("token", _as_application(kt2, new, new.client_id).request_token())
    expect_status(answer, 200, req, "the accepted instance's token request")
    body = json_object(answer, req, "the token answer")
    require(isinstance(body.get("access_token"), str) and body["access_token"], req, "no access_token")
    require(str(body.get("token_type", "")).lower() == "bearer", req,
            f"token_type is {body.get('token_type')!r}, not Bearer")
    scope = str(body.get("scope", ""))
    require(_grants(scope, "Task", "u"), req, f"the eHealth module role updates Tasks, but the new instance's "
                                              f"scope {scope!r} does not say so")
    wrong = _grants(scope, "Patient", "c")
    require(not wrong, req, f"the eHealth module role creates no Patients, but the new instance's scope grants it: "
                            f"{wrong}")


@then("the FHIR store has the new instance's Device as an active KT2Device with its client id as identifier")
def device_made(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-DEVICE"
    new = _new(kt2)
    precondition(isinstance(new.client_id, str) and new.client_id, "KT2-ADMIN-ACCEPT",
                 f"accepting the request gave no client id: {describe(kt2.answers['decision'])}")
    answer = kt2.portal.read(f"Device/{new.client_id}")
    expect_status(answer, 200, req, f"reading Device/{new.client_id} (the client id is the Device id)")
    device = json_object(answer, req, "the Device")
    require(device.get("resourceType") == "Device" and device.get("id") == new.client_id, req,
            f"Device/{new.client_id} is answered with {device.get('resourceType')}/{device.get('id')}")
    identifiers = [i for i in device.get("identifier") or [] if isinstance(i, dict)]
    require(any(i.get("system") == CLIENT_ID_SYSTEM and i.get("value") == new.client_id for i in identifiers), req,
            f"the Device has no identifier {CLIENT_ID_SYSTEM}|{new.client_id}: {identifiers}")
    require(device.get("status") == "active", req, f"the accepted instance's Device has status "
                                                   f"{device.get('status')!r}, not active")
    result = validate_resource(device, kt=2)
    require(result.ok, req, "the Device is no valid KT2Device: " +
            "; ".join(f"{f.location}: {f.message}" for f in result.errors[:3]))


@then("the connection request is rejected with the reason and without a client id")
def request_rejected(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-REJECT"
    new = _new(kt2)
    answer = kt2.answers["decision"]
    expect_status(answer, 200, req, "the domain admin rejecting the request")
    data = json_object(answer, req, "the rejected request")
    reread = _application_admin(kt2).connection_request(new.request_id)
    expect_status(reread, 200, req, "the application admin reading the rejected request")
    for what, seen in (("the rejection answer", data), ("the request as the application admin sees it",
                                                        json_object(reread, req, "the rejected request"))):
        require(seen.get("status") == "rejected", req, f"{what}: status {seen.get('status')!r}, not rejected")
        require(not seen.get("client_id"), req, f"{what}: a rejected request has client id {seen.get('client_id')!r}")
        if "reason" in seen:
            require(seen.get("reason") == new.reason, req, f"{what}: the reason is {seen.get('reason')!r}, not the "
                                                           "domain admin's")


@then("the FHIR store has no Device named after the new instance")
def no_device(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-REJECT"
    new = _new(kt2)
    answer = kt2.portal.search("Device", {"device-name": new.name})
    expect_status(answer, 200, req, "searching Devices by the new instance's name")
    bundle = json_object(answer, req, "the Device search")
    named = [(e.get("resource") or {}).get("id") for e in bundle.get("entry") or [] if isinstance(e, dict)
             and any(n.get("name") == new.name for n in (e.get("resource") or {}).get("deviceName") or []
                     if isinstance(n, dict))]
    require(not named, req, f"a rejected request still got Devices {named}")


@then(parsers.re(r'the (?P<who>domain admin|application admin) receives the e-mail "(?P<subject>[^"]+)" '
                 r'(?P<about>about the connection request|naming the client id|quoting the reason)'))
def mail_received(kt2: Kt2World, kt_requirements: ScenarioRequirements, who: str, subject: str, about: str) -> None:
    req = kt_requirements.pick(*MAIL_REQUIREMENTS)
    new = _new(kt2)
    admin = _domain_admin(kt2) if who == "domain admin" else _application_admin(kt2)
    if "<domain>" in subject:
        subject = _expected_subject(kt2, subject, req)
    if about == "about the connection request":
        marks = [m for m in (new.request_id, new.name, new.jwks_uri) if m]

        def names_it(mail: dict[str, Any]) -> bool:
            return any(m in str(mail.get("body", "")) or m in str(mail.get("subject", "")) for m in marks)
    elif about == "naming the client id":
        precondition(bool(new.client_id), "KT2-ADMIN-ACCEPT", "the request was accepted without a client id")
        marks = [new.client_id]

        def names_it(mail: dict[str, Any]) -> bool:
            return new.client_id in str(mail.get("body", ""))
    else:
        marks = [new.reason]

        def names_it(mail: dict[str, Any]) -> bool:
            return new.reason in str(mail.get("body", ""))
    ours = _mails(admin, req, names_it)
    subjects = sorted({str(m.get("subject")) for m in ours})
    require(ours, req, f"the {who} received no e-mail that names {marks[0]!r} (expected subject {subject!r})")
    if isinstance(subject, re.Pattern):
        require(any(subject.fullmatch(s) for s in subjects), req,
                f"the e-mail to the {who} has subject {subjects}, not {subject.pattern!r}")
    else:
        require(subject in subjects, req, f"the e-mail to the {who} has subject {subjects}, not {subject!r}")


def _expected_subject(kt2: Kt2World, template: str, req: str) -> str | re.Pattern[str]:
    """The subject with the domain's name and environment ("... op acc21"); the environment from the domain's
    detail screen, or any when it does not show one."""
    domain = kt2.bench.domain
    answer = _domain_admin(kt2).domain(domain)
    environment = json_dict(answer).get("environment") if answer.status_code == 200 else None
    text = template.replace("<domain>", domain)
    if isinstance(environment, str) and environment:
        return text.replace("<environment>", environment)
    head, _, tail = text.partition("<environment>")
    return re.compile(re.escape(head) + r"\S+" + re.escape(tail))


# -- instance statuses (seed 001 §4.5) -------------------------------------------------------------------------------
def _status(label: str) -> str:
    try:
        return STATUSES[label]
    except KeyError:
        raise BenchError(f"unknown instance status {label!r} (one of {', '.join(STATUSES)})") from None


def _label_requirement(label: str) -> str:
    return {"In onderhoud": "KT2-ADMIN-STATUS-MAINTENANCE", "Actief": "KT2-ADMIN-STATUS-ACTIVE",
            "Afgesloten": "KT2-ADMIN-STATUS-CLOSED"}[label]


def _reason(label: str) -> str:
    return f"ktbench: naar {label} ({uuid.uuid4().hex[:8]})"


@given("a freshly registered portal instance that has had a token")
def fresh_instance(kt2: Kt2World) -> None:
    kt2.need_admin()
    instance = kt2.bench.registered(Kt2Portal, "portal", role_name=kt2.bench.setting("portal_role"),
                                    algorithm=_algorithm(kt2), hosted=f"admin-status-{uuid.uuid4().hex[:12]}")
    kt2.notes["instance"] = instance
    answer = instance.request_token()
    precondition(answer.status_code == 200, "KT2-ADMIN-ACCEPT",
                 f"the freshly registered instance's first token: {describe(answer)} ({outcome_text(answer)})")


@given(parsers.parse('the domain admin has put that instance "{label}" with a reason'))
def instance_status_given(kt2: Kt2World, label: str) -> None:
    instance = _instance(kt2)
    answer = kt2.remember("status change", _domain_admin(kt2).set_status(instance.client_id, _status(label),
                                                                         _reason(label)))
    precondition(answer.status_code == 200, _label_requirement(label),
                 f"the domain admin putting the instance {label!r}: {describe(answer)} ({_refusal(answer)})")


@when(parsers.re(r'the domain admin puts that instance "(?P<label>[^"]+)" '
                 r'(?P<how>with a reason|without a reason|with a blank reason)'))
def instance_status(kt2: Kt2World, label: str, how: str) -> None:
    instance = _instance(kt2)
    admin = _domain_admin(kt2)
    status = _status(label)
    if how == "with a reason":
        answer = admin.set_status(instance.client_id, status, _reason(label))
    elif how == "with a blank reason":                 # the web form's reason field left empty
        answer = admin.set_status(instance.client_id, status, "  ")
    else:
        answer = admin.call("POST", f"instances/{instance.client_id}/status", {"status": status})
    kt2.remember("status change", answer)


@when('the domain admin tries to make that instance "Actief" and then "In onderhoud" again')
def reopen_closed(kt2: Kt2World) -> None:
    instance = _instance(kt2)
    admin = _domain_admin(kt2)
    kt2.notes["reopen"] = [(label, admin.set_status(instance.client_id, _status(label), _reason(label)))
                           for label in ("Actief", "In onderhoud")]


def _shown_status(kt2: Kt2World, req: str) -> dict[str, Any]:
    instance = _instance(kt2)
    answer = _domain_admin(kt2).instance(instance.client_id)
    expect_status(answer, 200, req, f"the domain admin reading instance {instance.client_id}")
    return json_object(answer, req, "the instance")


@then(parsers.parse('the status change is accepted and the instance is "{label}"'))
def status_changed(kt2: Kt2World, kt_requirements: ScenarioRequirements, label: str) -> None:
    req = kt_requirements.pick(*STATUS_REQUIREMENTS)
    answer = kt2.answers["status change"]
    expect_status(answer, 200, req, f"the domain admin putting the instance {label!r} with a reason")
    data = _shown_status(kt2, req)
    require(data.get("status") == _status(label), req, f"after the change to {label!r} the instance has status "
                                                       f"{data.get('status')!r} ({data.get('status_label')!r})")
    history = data.get("history")
    if isinstance(history, list) and history:       # the "Statusgeschiedenis" keeps why (seed 001 §4.5)
        last = history[-1] if isinstance(history[-1], dict) else {}
        require(last.get("to") == _status(label) and str(last.get("reason", "")).startswith("ktbench: naar"), req,
                f"the status history does not record the change to {label!r} with its reason: {last}")


@then(parsers.parse('the status change is refused and that instance stays "{label}"'))
def status_refused(kt2: Kt2World, kt_requirements: ScenarioRequirements, label: str) -> None:
    req = kt_requirements.pick("KT2-ADMIN-STATUS-MAINTENANCE", "KT2-ADMIN-STATUS-CLOSED")
    answer = kt2.answers["status change"]
    require(answer.status_code in REFUSED_CHANGE, req,
            f"a status change without a reason must be refused (400, 409 or 422), but {describe(answer)}")
    data = _shown_status(kt2, req)
    require(data.get("status") == _status(label), req, f"after the refused change the instance has status "
                                                       f"{data.get('status')!r}, not {label!r}")


@then('both changes are refused and that instance stays "Afgesloten"')
def reopen_refused(kt2: Kt2World) -> None:
    req = "KT2-ADMIN-STATUS-CLOSED"
    for label, answer in kt2.notes["reopen"]:
        require(answer.status_code in REFUSED_CHANGE, req,
                f"a closed instance made {label!r} again: expected a refusal (409), but {describe(answer)}")
    data = _shown_status(kt2, req)
    require(data.get("status") == "closed", req, f"the closed instance now has status {data.get('status')!r}")
    answer = _instance(kt2).request_token()
    oauth_error(answer, req, (400, 401), ("invalid_client",), "the closed instance's token request")


@then(parsers.parse('the FHIR store shows that instance\'s Device as "{status}"'))
def device_status(kt2: Kt2World, kt_requirements: ScenarioRequirements, status: str) -> None:
    req = kt_requirements.pick(*STATUS_REQUIREMENTS)
    instance = _instance(kt2)
    answer = kt2.portal.read(instance.device)
    expect_status(answer, 200, req, f"reading {instance.device}")
    device = json_object(answer, req, "the Device")
    require(device.get("status") == status, req, f"{instance.device} has status {device.get('status')!r}, not "
                                                 f"{status!r} (the Device follows the instance's status)")

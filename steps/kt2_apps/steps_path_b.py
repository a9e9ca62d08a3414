"""Steps of the module's path B (the SMART app launch, kt2-protocol.md §2.5) and of the AuditEvents the module
writes (§2.6, §4.5).

Path B is judged from what the module itself chose: the authorize URL it sent the browser to (its redirect
answer to the launch; response_type, client_id, redirect_uri, the fixed scope, state, aud, launch, PKCE S256),
the code exchange it sent to the token endpoint (the verifier of that challenge, the same redirect URI) and
its requests to the store (its own backend-services token, never the NOOP access token).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import pytest
from pytest_bdd import given, then

from ktbench.core.requirements import require
from simulators.kt2.actors.resources import KT
from steps.kt2_apps import jwt_checks
from steps.kt2_apps.world import AppWorld, form_of, is_fhir, json_of

M = "KT2-APP-MODULE-"
LAUNCH_SCOPE = ("launch", "openid", "fhirUser")
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@given("the module takes path B")
def takes_path_b(kt2app: AppWorld) -> None:
    if kt2app.settings.launch_path != "B":
        pytest.skip(f"the module takes path A (set [targets.{kt2app.bench.target.name}] launch_path = \"B\" and "
                    "redirect_uri for a module that takes the SMART app launch)")


def _trip(world: AppWorld) -> Any:
    trip = world.notes.get("browser")
    answer = world.notes["launch_answers"][-1]
    require(trip is not None, M + "PATH-B", f"the module answered the launch with HTTP {answer.status_code}, not a "
                                            "redirect to the voorziening's authorize (path B)")
    return trip


@then("the module sent the browser to authorize with its client id, its redirect URI, the fixed scope, a state, "
      "aud and a PKCE S256 challenge")
def authorize_request(kt2app: AppWorld) -> None:
    rid = M + "PATH-B"
    query = _trip(kt2app).authorize
    settings = kt2app.settings
    require(query.get("response_type") == "code", rid, f"response_type is {query.get('response_type')!r}, not code")
    require(query.get("client_id") == settings.client_id, rid,
            f"client_id is {query.get('client_id')!r}, not the module's {settings.client_id}")
    if settings.redirect_uri:
        require(query.get("redirect_uri") == settings.redirect_uri, rid,
                f"redirect_uri is {query.get('redirect_uri')!r}, not the registered {settings.redirect_uri}")
    else:
        require(bool(query.get("redirect_uri")), rid, "authorize carries no redirect_uri")
    scope = query.get("scope", "")
    require(scope.split(" ") == list(LAUNCH_SCOPE) or sorted(scope.split()) == sorted(LAUNCH_SCOPE), rid,
            f"scope is {scope!r}, not the fixed 'launch openid fhirUser'")
    require(bool(query.get("state")), rid, "authorize carries no state")
    require(query.get("aud") == kt2app.bench.fhir_base, rid, f"aud is {query.get('aud')!r}, not the FHIR base (iss)")
    require(query.get("launch") == kt2app.notes["token"], rid, "authorize does not carry the launch token received")
    method = query.get("code_challenge_method")
    require(method == "S256", rid, f"code_challenge_method is {method!r}, not S256 (plain is forbidden)")
    challenge = query.get("code_challenge", "")
    require(len(challenge) == 43, rid, "code_challenge is no base64url SHA-256 (43 characters)")


def _exchange(world: AppWorld) -> Any:
    def is_exchange(item) -> bool:
        return item.method == "POST" and item.path.endswith("/oauth2/token") \
            and form_of(item).get("grant_type") == "authorization_code"
    trip = _trip(world)
    require(trip.callback is not None, M + "PATH-B", "the browser never came back to the module's redirect URI: "
                                                     + (trip.problem or "the voorziening refused the authorize"))
    return world.wait(is_exchange, "trade the code at the token endpoint (grant_type authorization_code)")


@then("the module traded the code at the token endpoint with the code_verifier of its S256 challenge, its redirect "
      "URI and a client assertion")
def code_exchange(kt2app: AppWorld) -> None:
    rid = M + "PATH-B"
    trip = _trip(kt2app)
    item = _exchange(kt2app)
    form = form_of(item)
    require(form.get("code") == (trip.callback or {}).get("code"), rid,
            "the code exchange does not carry the code the browser brought back")
    require(trip.callback.get("state") == trip.authorize.get("state"), rid,
            "the state that came back is not the one the module sent (the callback was not the module's own)")
    verifier = form.get("code_verifier", "")
    require(verifier, rid, "the code exchange carries no code_verifier")
    require(s256(verifier) == trip.authorize.get("code_challenge"), rid,
            "BASE64URL(SHA256(code_verifier)) is not the code_challenge the module sent to authorize")
    require(form.get("redirect_uri") == trip.authorize.get("redirect_uri"), rid,
            "the code exchange's redirect_uri is not the one sent to authorize")
    require(bool(form.get("client_assertion")), rid, "the code exchange carries no client assertion")
    require(item.status == 200, rid, f"the voorziening refused the code exchange with HTTP {item.status}")
    final = trip.final
    require(200 <= final.status_code < 300, rid, f"after the code exchange the module showed the user HTTP "
                                                 f"{final.status_code}, not its page")


def _await(world: AppWorld, predicate: Any, *, log: str = "server") -> Any:
    """The first exchange of the application matching `predicate` within the traffic timeout, else None (for
    traffic that MUST follow traffic already seen: its absence is the application's failure, not silence)."""
    deadline = time.monotonic() + world.settings.traffic_timeout_seconds
    while True:
        found = world.app_requests(predicate, log=log)
        if found or time.monotonic() >= deadline:
            world.flush()
            return found[0] if found else None
        time.sleep(0.05)


# -- the launch AuditEvent ----------------------------------------------------------------------------------------
def _codes(value: Any) -> set[tuple[str, str]]:
    items = value if isinstance(value, list) else [value]
    found = set()
    for item in items:
        if isinstance(item, dict):
            found.add((str(item.get("system")), str(item.get("code"))))
            found |= _codes(item.get("coding") or [])
    return found


@then("the module wrote an Application Start AuditEvent for the task whose trace-id is the launch token's jti")
def launch_audit(kt2app: AppWorld) -> None:
    rid = M + "LAUNCH-AUDIT"
    task = kt2app.notes["task"]["id"]
    # the launch was carried out once the module read its Task; the AuditEvent may follow a little later
    kt2app.wait(lambda i: is_fhir(i, "GET", f"Task/{task}"), f"read the launched Task/{task}")
    item = _await(kt2app, lambda i: is_fhir(i, "POST", "AuditEvent"))
    require(item is not None, rid, f"the module accepted the launch and read Task/{task}, but wrote no AuditEvent "
                                   f"within {kt2app.settings.traffic_timeout_seconds:g} s")
    body = json_of(item.request_body)
    require((DCM, "110100") in _codes(body.get("type")), rid, "the AuditEvent's type is not DCM#110100 "
                                                              "Application Activity")
    require((DCM, "110120") in _codes(body.get("subtype")), rid, "the AuditEvent's subtype is not DCM#110120 "
                                                                 "Application Start")
    jti = jwt_checks.decode(kt2app.notes["token"]).claims.get("jti")
    traces = [e.get("valueId") for e in body.get("extension") or []
              if isinstance(e, dict) and e.get("url") == KT + "trace-id"]
    require(traces == [jti], rid, f"the AuditEvent's trace-id extension is {traces!r}, not the launch token's jti")
    whats = [str((e.get("what") or {}).get("reference", "")) for e in body.get("entity") or [] if isinstance(e, dict)]
    require(any(w == f"Task/{task}" or w.startswith(f"Task/{task}/_history/") for w in whats), rid,
            f"the AuditEvent's entity names {whats!r}, not the launched Task/{task}")
    device = f"Device/{kt2app.settings.client_id}"
    agents = [str((a.get("who") or {}).get("reference", "")) for a in body.get("agent") or [] if isinstance(a, dict)]
    require(device in agents, rid, f"the AuditEvent's agent is {agents!r}, not the module's {device}")
    require(item.status == 201, rid, f"the voorziening refused the AuditEvent with HTTP {item.status}")

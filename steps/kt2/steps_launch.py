"""Steps of HTI launch, SMART app launch and introspection (features/kt2/launch.feature).

The portal does what a real portal does: it reads the Task, its ActivityDefinition (whose resource-origin
is the module's Device, the HTI `aud`) and the Endpoint the definition names (whose address is the launch
URL), signs the HTI token and form-POSTs it there; the module takes `launch` and `iss` from what its launch
URL received.  A defective launch token travels the same way, so every refusal is of a token the module
really got.  The browser is played by the module (authorize, following redirects) and the IdP user (the
identity provider's page); a callback the module's redirect URI receives lands in the actor host's inbox.

Nothing secret appears in a step argument or a message: tokens, codes and verifiers stay in `kt2.notes`
and in `SmartLaunch` (whose repr hides them).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pytest_bdd import given, parsers, then, when

from ktbench.core.requirements import ScenarioRequirements, precondition, require
from simulators.kt2.actors import (
    LAUNCH_SCOPE,
    IdpLoginFailed,
    Kt2Module,
    SmartLaunch,
    pkce_pair,
    resources,
)
from simulators.kt2.actors.keys import SigningKey, generate_key
from steps.kt2.checks import describe, expect_status, json_object, outcome_text
from steps.kt2.world import Kt2World

ENDPOINT = "KT2-LAUNCH-ENDPOINT"
AUTHORIZE = "KT2-LAUNCH-AUTHORIZE"
STATE = "KT2-LAUNCH-STATE"
TOKEN = "KT2-LAUNCH-TOKEN"
PKCE = "KT2-LAUNCH-PKCE"
REDIRECT = "KT2-LAUNCH-REDIRECT"
IDENTITY = "KT2-LAUNCH-IDENTITY"
IDP_HINT = "KT2-LAUNCH-IDP-HINT"
INTRO_ACTIVE = "KT2-INTRO-ACTIVE"
INTRO_INACTIVE = "KT2-INTRO-INACTIVE"
INTRO_CALLER = "KT2-INTRO-CALLER"
HTI_REQUIREMENTS = ("KT2-LAUNCH-HTI-JTI", "KT2-LAUNCH-HTI-EXP", "KT2-LAUNCH-HTI-AUD", "KT2-LAUNCH-HTI-SIGNATURE")
AUTHORIZE_REFUSALS = ("KT2-LAUNCH-SCOPE", PKCE, *HTI_REQUIREMENTS)

ORIGIN = resources.KT + "resource-origin"
ENDPOINT_EXTENSION = resources.KT + "KT2EndpointExtension"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 6                        # redirects a browser follows between the IdP and the module
INBOX_SECONDS = 5.0                 # the actor host records synchronously; this is only a safety margin
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
ELSEWHERE = "https://elsewhere.ktbench.test/callback"
HTI_CLAIMS = ("iss", "aud", "sub", "resource", "definition", "jti", "iat", "exp")

_other_modules: dict[int, tuple[Any, Kt2Module]] = {}
_other_lock = threading.Lock()


# -- small helpers ------------------------------------------------------------------------------------------
def _reference(resource: dict[str, Any], url: str) -> str | None:
    for extension in resource.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url:
            value = (extension.get("valueReference") or {}).get("reference")
            return value if isinstance(value, str) else None
    return None


def _location(answer: httpx.Response) -> str | None:
    location = answer.headers.get("location")
    return urljoin(str(answer.request.url), location) if location else None


def _at(url: str, redirect_uri: str) -> bool:
    """Whether `url` is the redirect URI (with whatever query the server added)."""
    return url.split("?", 1)[0].split("#", 1)[0] == redirect_uri


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _outcome(answer: httpx.Response, redirect_uri: str) -> tuple[str, str]:
    """How authorize (or the IdP callback) answered: ("refused" | "idp" | "code" | "other", detail)."""
    location = _location(answer)
    if answer.status_code in REDIRECTS and location:
        if _at(location, redirect_uri):
            query = _query(location)
            if query.get("error"):
                return "refused", f"a redirect to the module with error={query['error'][:40]}"
            if query.get("code"):
                return "code", "a redirect to the module with a code"
            return "other", "a redirect to the module with neither code nor error"
        return "idp", location
    if 400 <= answer.status_code < 500:
        return "refused", f"{describe(answer)} ({outcome_text(answer)})"
    return "other", f"{describe(answer)} ({outcome_text(answer)})"


def _skew(kt2: Kt2World) -> float:
    return float(kt2.bench.setting("clock_skew_seconds", 60))


def _other_module(kt2: Kt2World) -> Kt2Module:
    """A second module instance in the domain (registered once per session): the Device a foreign HTI names."""
    kt2.need_admin()
    with _other_lock:
        key = id(kt2.bench)
        if key not in _other_modules:
            module = kt2.bench.registered(Kt2Module, "other module", role_name=kt2.bench.setting("module_role"))
            _other_modules[key] = (kt2.bench, module)  # type: ignore[assignment]
        return _other_modules[key][1]


# -- the portal launches --------------------------------------------------------------------------------------
def _scene(kt2: Kt2World) -> dict[str, str]:
    """What the portal reads before a launch: the module's Device (aud) and launch URL, the user and the Task."""
    if "launch scene" in kt2.notes:
        return kt2.notes["launch scene"]
    portal, module = kt2.portal, kt2.module
    task = kt2.task()
    definition = _reference(task, resources.INSTANTIATES)
    precondition(definition and definition.startswith("ActivityDefinition/"), ENDPOINT,
                 f"the Task the portal made names no ActivityDefinition in its instantiates extension: {definition!r}")
    read = portal.read(definition)
    precondition(read.status_code == 200, ENDPOINT,
                 f"the portal reads the Task's ActivityDefinition: {describe(read)} ({outcome_text(read)})")
    activity = json_object(read, ENDPOINT, "the ActivityDefinition")
    aud = _reference(activity, ORIGIN)
    precondition(aud == module.device, ENDPOINT,
                 f"the module's ActivityDefinition must carry its resource-origin {module.device} (the HTI aud), "
                 f"it carries {aud!r}")
    endpoint = _reference(activity, ENDPOINT_EXTENSION)
    precondition(endpoint and endpoint.startswith("Endpoint/"), ENDPOINT,
                 f"the ActivityDefinition names no Endpoint (KT2EndpointExtension): {endpoint!r}")
    read = portal.read(endpoint)
    precondition(read.status_code == 200, ENDPOINT,
                 f"the portal reads the definition's Endpoint: {describe(read)} ({outcome_text(read)})")
    address = json_object(read, ENDPOINT, "the Endpoint").get("address")
    precondition(address == module.launch_url, ENDPOINT,
                 f"Endpoint.address is {address!r}, not the launch URL {module.launch_url!r} the module published")
    scene = {"aud": aud, "address": address, "sub": task["for"]["reference"], "resource": f"Task/{task['id']}",
             "definition": definition}
    kt2.notes["launch scene"] = scene
    return scene


def _send_launch(kt2: Kt2World, *, aud: str | None = None, impostor: bool = False, **claims: Any) -> None:
    portal = kt2.portal
    scene = _scene(kt2)
    body = portal.hti_claims(aud or scene["aud"], scene["sub"], scene["resource"], definition=scene["definition"],
                             **claims)
    if impostor:
        current = portal.keys.current
        token = SigningKey(generate_key(current.algorithm), current.kid, current.algorithm).sign(body)
    else:
        token = portal.keys.current.sign(body)
    answer = portal.launch(scene["address"], token)
    got = kt2.bench.host.inbox.wait(lambda r: r.kind == "launch" and r.form.get("launch") == token, INBOX_SECONDS)
    precondition(bool(got), ENDPOINT, f"the module's launch URL did not receive the launch the portal posted "
                                      f"({describe(answer)})")
    kt2.notes.update({"hti": token, "hti claims": body, "launch": got[0], "launch answer": answer})


@when("the portal launches the module for the task")
def portal_launches(kt2: Kt2World) -> None:
    _send_launch(kt2)


@when(parsers.re(r"the portal launches the module with a launch token that (?P<defect>expired a minute ago|lives "
                 r"longer than five minutes|is addressed to another module|is signed with a key the portal never "
                 r"published)"))
def portal_launches_defective(kt2: Kt2World, defect: str) -> None:
    now = int(time.time())
    if defect.startswith("expired"):
        exp = now - int(_skew(kt2)) - 60
        _send_launch(kt2, iat=exp - 120, exp=exp)
    elif defect.startswith("lives"):
        lifetime = int(kt2.bench.setting("launch_max_lifetime_seconds", 300))
        _send_launch(kt2, iat=now, exp=now + lifetime + 60)
    elif defect.startswith("is addressed"):
        _send_launch(kt2, aud=_other_module(kt2).device)
    else:
        _send_launch(kt2, impostor=True)


@given("the identity provider the domain sends the patient to is known")
def default_idp(kt2: Kt2World) -> None:
    _send_launch(kt2)
    kind, detail = _outcome(_authorize(kt2), kt2.module.redirect_uri)
    precondition(kind == "idp", AUTHORIZE, f"a valid launch was not sent to an identity provider: {detail}")
    match = re.search(r"/idp/(?P<idp>[^/?#]+)/", urlsplit(detail).path)
    if match is None:
        pytest.skip("the identity provider page's address does not name the identity provider (/idp/<id>/), so "
                    "the bench cannot tell which id an idp_hint should carry")
    kt2.notes["idp"] = match["idp"]


@when("the portal launches the module with a launch token whose idp_hint names that identity provider")
def portal_launches_hint(kt2: Kt2World) -> None:
    _send_launch(kt2, idp_hint=kt2.notes["idp"])


@given("the portal has registered a patient without the identity provider user's identifier")
def stranger_patient(kt2: Kt2World) -> None:
    person = kt2.faker
    kt2.create(kt2.portal, "patient", resources.patient(family=person.last_name(), given=person.first_name()))


@then("the module receives launch and iss at the launch URL of its Endpoint, iss being the FHIR base")
def launch_received(kt2: Kt2World) -> None:
    received, scene = kt2.notes["launch"], kt2.notes["launch scene"]
    require(received.path == urlsplit(scene["address"]).path, ENDPOINT,
            f"the launch arrived at {received.path}, not at the Endpoint address")
    require(received.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"), ENDPOINT,
            f"the launch is a form POST, not {received.headers.get('content-type')!r}")
    require(received.form.get("launch") == kt2.notes["hti"], ENDPOINT, "the launch field is not the HTI token sent")
    require(received.form.get("iss") == kt2.bench.fhir_base, ENDPOINT,
            f"iss is {received.form.get('iss')!r}, not the FHIR base {kt2.bench.fhir_base}")


# -- path A: introspection ----------------------------------------------------------------------------------
@when("the module introspects the launch token")
def module_introspects(kt2: Kt2World) -> None:
    kt2.remember("introspect", kt2.module.introspect(kt2.notes["launch"].form["launch"]))


@when("the module introspects the launch token again")
def module_introspects_again(kt2: Kt2World) -> None:
    first = kt2.answers["introspect"]
    try:
        body = first.json()
    except ValueError:
        body = None
    active = first.status_code == 200 and isinstance(body, dict) and body.get("active") is True
    precondition(active, INTRO_ACTIVE, f"the first introspection of a valid launch token was not active "
                                       f"({describe(first)})")
    module_introspects(kt2)


@when(parsers.re(r"the module introspects the launch token (?P<caller>without a client assertion|with a client "
                 r"assertion signed by a key it never published|with a client assertion that expired a minute ago)"))
def module_introspects_badly(kt2: Kt2World, caller: str) -> None:
    module = kt2.module
    token = kt2.notes["launch"].form["launch"]
    if caller.startswith("without"):
        answer = module.http.request("POST", module.endpoint("introspection_endpoint"), data={"token": token},
                                     headers={"Accept": "application/json"}, role=module.name)
    elif "signed by" in caller:
        current = module.keys.current
        impostor = SigningKey(generate_key(current.algorithm), current.kid, current.algorithm)
        answer = module.introspect(token, assertion=impostor.sign(module.assertion_claims()))
    else:
        exp = int(time.time()) - int(_skew(kt2)) - 60
        answer = module.introspect(token, assertion=module.assertion(iat=exp - 120, exp=exp))
    kt2.remember("introspect", answer)


@then("the introspection answers active true with the claims the portal signed")
def introspection_active(kt2: Kt2World) -> None:
    answer = kt2.answers["introspect"]
    expect_status(answer, 200, INTRO_ACTIVE, "the introspection of a valid launch token")
    body = json_object(answer, INTRO_ACTIVE, "the introspection answer")
    require(body.get("active") is True, INTRO_ACTIVE, f"active is {body.get('active')!r}, not true")
    signed = kt2.notes["hti claims"]
    for name in HTI_CLAIMS:
        got = body.get(name)
        if name == "aud" and isinstance(got, list):
            ok = signed[name] in got
        else:
            ok = got == signed[name]
        require(ok, INTRO_ACTIVE, f"claim {name} is {got!r}, but the portal signed {signed[name]!r}")


@then("the introspection answers active false")
def introspection_inactive(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    answer = kt2.answers["introspect"]
    expect_status(answer, 200, INTRO_INACTIVE, "the introspection of an unusable launch token (RFC 7662: 200)")
    body = json_object(answer, INTRO_INACTIVE, "the introspection answer")
    require(body.get("active") is False, kt_requirements.pick(*HTI_REQUIREMENTS, INTRO_INACTIVE),
            f"the launch token is reported active={body.get('active')!r}")


@then("the introspection answers 401")
def introspection_401(kt2: Kt2World) -> None:
    answer = kt2.answers["introspect"]
    expect_status(answer, 401, INTRO_CALLER, "introspection without the caller's valid client assertion")
    try:
        body = answer.json()
    except ValueError:
        body = None
    require(not (isinstance(body, dict) and "active" in body), INTRO_CALLER,
            "a refused caller must learn nothing about the token, but the answer carries 'active'")


# -- path B: authorize, the identity provider, the callback -------------------------------------------------------
def _authorize(kt2: Kt2World, flow: SmartLaunch | None = None, **changes: str | None) -> httpx.Response:
    module = kt2.module
    received = kt2.notes["launch"]
    if flow is None:
        flow = SmartLaunch(launch=received.form.get("launch", ""), iss=received.form.get("iss", ""))
    precondition(flow.iss == module.fhir_base, ENDPOINT,
                 f"the launch's iss {flow.iss!r} is not the FHIR base the module knows")
    kt2.notes["flow"] = flow
    return kt2.remember("authorize", module.authorize(flow, **changes))


@when("the module sends the user to authorize with the launch")
def module_authorizes(kt2: Kt2World) -> None:
    _authorize(kt2)


@when(parsers.parse('the module sends the user to authorize with the launch and scope "{scope}"'))
def module_authorizes_scope(kt2: Kt2World, scope: str) -> None:
    _authorize(kt2, scope=scope)


@when(parsers.re(r"the module sends the user to authorize with the launch and (?P<pkce>code_challenge_method "
                 r"plain|no code_challenge)"))
def module_authorizes_pkce(kt2: Kt2World, pkce: str) -> None:
    received = kt2.notes["launch"]
    flow = SmartLaunch(launch=received.form.get("launch", ""), iss=received.form.get("iss", ""))
    if pkce.endswith("plain"):
        _authorize(kt2, flow, code_challenge=flow.verifier, code_challenge_method="plain")
    else:
        _authorize(kt2, flow, code_challenge=None, code_challenge_method=None)


@when(parsers.re(r"the module sends the user to authorize with the launch and (?P<redirect>a redirect_uri on another "
                 r"host|a redirect_uri on another path of its own host)"))
def module_authorizes_redirect(kt2: Kt2World, redirect: str) -> None:
    module = kt2.module
    target = ELSEWHERE if redirect.endswith("another host") else module.redirect_uri.rsplit("/", 1)[0] + "/elsewhere"
    kt2.notes["redirect target"] = target
    _authorize(kt2, redirect_uri=target)


@when("the module sends the user to authorize again with the same launch token")
def module_authorizes_again(kt2: Kt2World) -> None:
    kind, detail = _outcome(kt2.answers["authorize"], kt2.module.redirect_uri)
    precondition(kind == "idp", AUTHORIZE, f"the first use of a valid launch token was not accepted: {detail}")
    _authorize(kt2)


def _log_in(kt2: Kt2World) -> None:
    """The IdP user at the page authorize sent the browser to, then the browser back to the module."""
    module = kt2.module
    kind, detail = _outcome(kt2.answers["authorize"], module.redirect_uri)
    precondition(kind == "idp", AUTHORIZE, f"authorize did not send the user to an identity provider: {detail}")
    user = kt2.idp_user()
    try:
        answer = user.log_in(kt2.bench.http, detail)
    except IdpLoginFailed as problem:
        precondition(False, AUTHORIZE, str(problem))
        raise  # precondition raised already
    for _ in range(MAX_HOPS):
        location = _location(answer)
        if answer.status_code not in REDIRECTS or not location or _at(location, module.redirect_uri):
            break
        answer = module.follow(location)
    kt2.remember("login", answer)
    location = _location(answer)
    if answer.status_code in REDIRECTS and location and _at(location, module.redirect_uri):
        sent = _query(location)
        arrived = module.follow(location)
        path = urlsplit(location).path
        got = kt2.bench.host.inbox.wait(lambda r: r.kind == "callback" and r.path == path and r.form == sent,
                                        INBOX_SECONDS)
        precondition(bool(got), AUTHORIZE, f"the module's redirect URI did not receive the callback "
                                           f"({describe(arrived)})")
        kt2.notes["callback"] = dict(got[0].form)


@when("the IdP user logs in at the identity provider")
def idp_user_logs_in(kt2: Kt2World) -> None:
    _log_in(kt2)


@then("authorize sent the user to the identity provider, not straight back to the module")
def authorize_to_idp(kt2: Kt2World) -> None:
    kind, detail = _outcome(kt2.answers["authorize"], kt2.module.redirect_uri)
    require(kind == "idp", AUTHORIZE, f"a valid launch must go to the identity provider (scope openid), got {detail}")


def _callback_code(kt2: Kt2World, req: str) -> dict[str, str]:
    callback = kt2.notes.get("callback")
    final = kt2.answers.get("login")
    require(callback is not None, req, "the browser never came back to the module's redirect URI after the "
                                       f"identity provider: {describe(final) if final is not None else 'no answer'} "
                                       f"({outcome_text(final) if final is not None else ''})")
    require(bool(callback.get("code")), req, f"the redirect to the module carries no code "
                                             f"(error={callback.get('error')!r})")
    return callback


@then("the module's redirect URI receives a code and the state it sent")
def callback_state(kt2: Kt2World) -> None:
    callback = _callback_code(kt2, AUTHORIZE)
    require("state" in callback, STATE, "the redirect to the module carries no state")
    require(callback["state"] == kt2.notes["flow"].state, STATE, "the state of the redirect is not the one sent")


@then("the module's redirect URI receives a code")
def callback_code(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    _callback_code(kt2, kt_requirements.pick(AUTHORIZE, IDP_HINT))


@then("authorize sends the user to the identity provider the idp_hint names")
def authorize_hinted(kt2: Kt2World) -> None:
    kind, detail = _outcome(kt2.answers["authorize"], kt2.module.redirect_uri)
    require(kind == "idp", IDP_HINT, f"a launch with an idp_hint of the domain was not sent to an identity provider: "
                                     f"{detail}")
    require(f"/idp/{kt2.notes['idp']}/" in urlsplit(detail).path, IDP_HINT,
            f"the user was sent to {urlsplit(detail).path}, not to identity provider {kt2.notes['idp']!r}")


# -- the code exchange ----------------------------------------------------------------------------------------
def _exchange(kt2: Kt2World, **changes: str | None) -> httpx.Response:
    callback = kt2.notes.get("callback") or {}
    precondition(bool(callback.get("code")), AUTHORIZE, "the module's redirect URI received no code "
                                                        f"(error={callback.get('error')!r})")
    flow = kt2.notes["flow"]
    precondition(callback.get("state") == flow.state, STATE,
                 "the module refuses a callback whose state is not the one it sent (CSRF protection)")
    return kt2.remember("exchange", kt2.module.exchange_code(flow, callback["code"], **changes))


@when("the module exchanges the code with its code_verifier")
def module_exchanges(kt2: Kt2World) -> None:
    _exchange(kt2)


@when("the module exchanges the code with another code_verifier")
def module_exchanges_wrong(kt2: Kt2World) -> None:
    _exchange(kt2, code_verifier=pkce_pair()[0])


@when("the module exchanges the same code again")
def module_exchanges_again(kt2: Kt2World) -> None:
    expect_status(kt2.answers["exchange"], 200, TOKEN, "the first exchange of the code")
    _exchange(kt2)


def _exchanged(kt2: Kt2World) -> dict[str, Any]:
    answer = kt2.answers["exchange"]
    expect_status(answer, 200, TOKEN, "the code exchange with the right code_verifier")
    return json_object(answer, TOKEN, "the code exchange answer")


@then("the code exchange answers an id_token for the module about the launching user, signed by the domain")
def exchange_id_token(kt2: Kt2World) -> None:
    body = _exchanged(kt2)
    token = body.get("id_token")
    require(isinstance(token, str) and token.count(".") == 2, TOKEN, "the answer has no id_token JWT")
    module = kt2.module
    configuration = module.configuration
    jwks_answer = module.http.request("GET", module.endpoint("jwks_uri"), headers={"Accept": "application/json"},
                                      role=module.name)
    precondition(jwks_answer.status_code == 200, "KT2-DISC-JWKS", f"the domain JWKS: {describe(jwks_answer)}")
    try:
        claims = jwt.decode(token, KeySet.import_key_set(jwks_answer.json()), algorithms=ID_TOKEN_ALGORITHMS).claims
    except (JoseError, ValueError, TypeError, KeyError) as problem:
        require(False, TOKEN, f"the id_token does not verify with the domain JWKS ({type(problem).__name__})")
        raise
    aud = claims.get("aud")
    require(aud == module.client_id or (isinstance(aud, list) and module.client_id in aud), TOKEN,
            f"the id_token aud is {aud!r}, not the module's client id {module.client_id}")
    sub = kt2.notes["hti claims"]["sub"]
    require(claims.get("sub") == sub, TOKEN, f"the id_token sub is {claims.get('sub')!r}, not the HTI sub {sub}")
    issuer = configuration.get("issuer")
    if isinstance(issuer, str) and issuer:
        require(claims.get("iss") == issuer, TOKEN, f"the id_token iss is {claims.get('iss')!r}, not the issuer "
                                                    f"{issuer} of the smart-configuration")
    exp = claims.get("exp")
    require(isinstance(exp, (int, float)) and exp > time.time() - _skew(kt2), TOKEN,
            f"the id_token exp {exp!r} is not in the future")
    if "azp" in claims:
        require(claims["azp"] == module.client_id, TOKEN, f"the id_token azp is {claims['azp']!r}, not the module")


@then("the code exchange answers the access token NOOP, the launch scope and the launch context of the token")
def exchange_context(kt2: Kt2World) -> None:
    body = _exchanged(kt2)
    require(body.get("access_token") == "NOOP", TOKEN, "the access_token of a SMART app launch must be NOOP")
    require(str(body.get("token_type", "")).lower() == "bearer", TOKEN,
            f"token_type is {body.get('token_type')!r}, not bearer")
    scope = body.get("scope")
    require(isinstance(scope, str) and set(scope.split()) == set(LAUNCH_SCOPE.split()), TOKEN,
            f"scope is {scope!r}, not {LAUNCH_SCOPE!r}")
    signed = kt2.notes["hti claims"]
    for name in ("resource", "sub", "definition"):
        require(body.get(name) == signed[name], TOKEN,
                f"the launch context {name} is {body.get(name)!r}, but the HTI token says {signed[name]!r}")
    require("refresh_token" not in body, TOKEN, "a SMART app launch of KT2 issues no refresh_token")


@then("the module reads the launch's Task with its own backend-services token")
def module_reads_task(kt2: Kt2World) -> None:
    body = _exchanged(kt2)
    resource = body.get("resource")
    answer = kt2.module.read(str(resource))
    expect_status(answer, 200, TOKEN, f"the module reading the launch context's {resource} with its own token")
    task = json_object(answer, TOKEN, "the Task")
    require(f"Task/{task.get('id')}" == kt2.ref("task"), TOKEN, f"the launch context names Task/{task.get('id')}, "
                                                                f"not the portal's {kt2.ref('task')}")
    require(_reference(task, resources.INSTANTIATES) == kt2.notes["launch scene"]["definition"], TOKEN,
            "the Task read back does not instantiate the module's ActivityDefinition")


@when("the module reads the launch's Task with the access token of the code exchange")
def module_reads_with_noop(kt2: Kt2World) -> None:
    answer = kt2.answers["exchange"]
    precondition(answer.status_code == 200, TOKEN, f"the code exchange: {describe(answer)} ({outcome_text(answer)})")
    token = (answer.json() or {}).get("access_token")
    precondition(isinstance(token, str) and token, TOKEN, "the code exchange answered no access_token")
    kt2.remember("search", kt2.module.read(kt2.ref("task"), token=token))


@then("the code exchange is refused")
def exchange_refused(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    _judge_exchange_refused(kt2, kt_requirements.pick(PKCE, TOKEN))


def _judge_exchange_refused(kt2: Kt2World, req: str) -> None:
    answer = kt2.answers["exchange"]
    expect_status(answer, (400, 401), req, "the code exchange")
    body = json_object(answer, req, "the refused code exchange")
    require(body.get("error") in ("invalid_grant", "invalid_request", "invalid_client"), req,
            f"expected error invalid_grant, got {body.get('error')!r}")
    require("id_token" not in body and "access_token" not in body, req, "a refused code exchange issued tokens")


# -- refusals at authorize and after the identity provider ----------------------------------------------------------
@then("authorize refuses the launch")
def authorize_refuses(kt2: Kt2World, kt_requirements: ScenarioRequirements) -> None:
    req = kt_requirements.pick(*AUTHORIZE_REFUSALS)
    answer = kt2.answers["authorize"]
    kind, detail = _outcome(answer, kt2.module.redirect_uri)
    require(kind == "refused", req, f"authorize must refuse (400, or a redirect to the module with error), but "
                                    f"answered {detail if kind != 'idp' else 'with a redirect to the identity provider'}")
    if answer.status_code not in REDIRECTS:
        expect_status(answer, (400, 401, 403), req, "the refused authorize request")


@then("the launch is refused at authorize or, at the latest, at the code exchange")
def pkce_refused(kt2: Kt2World) -> None:
    module = kt2.module
    kind, detail = _outcome(kt2.answers["authorize"], module.redirect_uri)
    if kind == "refused":
        require(True, PKCE, "")
        return
    require(kind == "idp", PKCE, f"authorize without PKCE S256 answered {detail}")
    _log_in(kt2)
    callback = kt2.notes.get("callback") or {}
    if not callback.get("code"):
        final = kt2.answers["login"]
        require(callback.get("error") or 400 <= final.status_code < 500, PKCE,
                f"after the identity provider the launch neither failed nor gave a code: {describe(final)}")
        return
    _exchange(kt2)
    _judge_exchange_refused(kt2, PKCE)


@then("authorize answers 400 without redirecting to that redirect_uri")
def authorize_bad_redirect(kt2: Kt2World) -> None:
    answer = kt2.answers["authorize"]
    target = kt2.notes["redirect target"]
    location = _location(answer) or ""
    require(not _at(location, target), REDIRECT,
            f"authorize sent the browser to the unregistered redirect_uri {target} ({answer.status_code})")
    expect_status(answer, 400, REDIRECT, "authorize with an unregistered redirect_uri")


@then("the launch ends with 403 access_denied and no code")
def identity_refused(kt2: Kt2World) -> None:
    module = kt2.module
    callback = kt2.notes.get("callback") or {}
    require(not callback.get("code"), IDENTITY, "the module got a code for a user who is not the HTI sub")
    final = kt2.answers["login"]
    location = _location(final)
    if final.status_code in REDIRECTS and location and _at(location, module.redirect_uri):
        require(callback.get("error") == "access_denied", IDENTITY,
                f"the redirect to the module carries error={callback.get('error')!r}, not access_denied")
        return
    expect_status(final, 403, IDENTITY, "the identity provider's callback for a user who is not the HTI sub")
    try:
        body = final.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        require(body["error"] == "access_denied", IDENTITY, f"error is {body['error']!r}, not access_denied")

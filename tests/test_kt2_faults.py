"""The fault catalogue: every fault is a switch that produces exactly its defect.

Each probe returns True when the defect shows.  It must show with the fault switched on and not on a clean
voorziening; every fault names requirement ids of README.md.  (Faults the domain admin adds are probed by the
admin's own tests.)
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from kt2_support import (  # noqa: F401
    ALPHA,
    APPS,
    BETA,
    JWT_BEARER,
    KT,
    PATIENT_USER,
    Launch,
    Receiver,
    TestApp,
    client_audit_event,
    jwks_host,
    kt2,
    make_kt2,
    no_unhandled_errors,
    patient,
    subscription,
    task,
    updated,
)

from simulators.common.host import running_asgi
from simulators.kt2 import urls
from simulators.kt2.faults import FAULTS

ROTATING = TestApp("alpha-rotating", ALPHA, "Behandelaarsportaal", "ktbench-rotating")


def _patient(k) -> tuple[dict, str]:
    body = k.create("alpha-portal", patient())
    return body, f"Patient/{body['id']}"


def _token_status(k, assertion: str, name: str = "alpha-portal") -> int:
    return k.request_token(name, assertion).status_code


def _scene(k) -> tuple[dict, dict]:
    person = k.create("alpha-portal", patient(identifier=PATIENT_USER[1]))
    return person, k.world()


def _launch(k) -> Launch:
    person, world = _scene(k)
    return Launch(k, f"Patient/{person['id']}", world["task"]["id"])


def _kid_rotation(k) -> bool:
    k.jwks.published[ROTATING.client_id] = [ROTATING.jwk()]
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER}
    first = k.http.post(k.token_url(), data={**form, "client_assertion": ROTATING.assertion(k.token_url())})
    assert first.status_code == 200
    new_key = RSAKey.generate_key(2048)
    k.jwks.published[ROTATING.client_id] = [{**new_key.as_dict(private=False), "kid": "rotated-" + uuid.uuid4().hex}]
    kid = k.jwks.published[ROTATING.client_id][0]["kid"]
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS512", "kid": kid}, {"iss": ROTATING.client_id, "sub": ROTATING.client_id,
                                                         "aud": k.token_url(), "exp": now + 60,
                                                         "jti": uuid.uuid4().hex}, new_key, algorithms=["RS512"])
    return k.http.post(k.token_url(), data={**form, "client_assertion": assertion}).status_code == 401


def _hs256(k) -> bool:
    app = APPS["alpha-portal"]
    secret = json.dumps(app.jwk(), sort_keys=True, separators=(",", ":")).encode()
    key = OctKey.import_key({"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()})
    now = int(time.time())
    forged = jwt.encode({"alg": "HS256", "kid": app.kid}, {"iss": app.client_id, "sub": app.client_id,
                                                          "aud": k.token_url(), "exp": now + 60,
                                                          "jti": uuid.uuid4().hex}, key, algorithms=["HS256"])
    return _token_status(k, forged) == 200


def _never_expires(k) -> bool:
    token = k.services.tokens.mint_access(ALPHA, k.url, "alpha-portal", "system/*.rs")[0]
    k.ctx.clock.offset = 1000
    try:
        return k.http.get(f"{k.base()}/Patient", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        k.ctx.clock.offset = 0


def _narrowing(k) -> bool:
    sub = k.create("alpha-portal", subscription("Task?status=completed", "https://portal.ktbench.test/n"))
    found = k.search("alpha-module", f"Subscription?_id={sub['id']}")
    return found["total"] == 1


def _origin_not_injected(k) -> bool:
    body, _ = _patient(k)
    return not any(e["url"] == KT + "resource-origin" for e in body.get("extension", []))


def _origin_overwritable(k) -> bool:
    body, path = _patient(k)
    changed = updated(body, extension=[{"url": KT + "resource-origin", "valueReference": {"reference":
                                                                                          "Device/alpha-epd"}}])
    return k.put("alpha-portal", path, changed, version="1").status_code == 200


def _origin_client_set(k) -> bool:
    body = patient()
    body["extension"] = [{"url": KT + "resource-origin", "valueReference": {"reference": "Device/alpha-epd"}}]
    return k.post("alpha-portal", "Patient", body).status_code == 201


def _pkce(k) -> bool:
    launch = _launch(k)
    return launch.exchange(launch.code(PATIENT_USER[0]), code_verifier="x" * 50).status_code == 200


def _hti_aud(k) -> bool:
    launch = _launch(k)
    other = APPS["alpha-portal"].hti(APPS["alpha-module-2"], launch.params()["launch"] and "Patient/p", "Task/t")
    location = launch.authorize(launch=other).headers.get("location", "")
    return "/idp/" in location


def _identity(k) -> bool:
    launch = _launch(k)
    return k.http.get(launch.login("petra.de.vries")).status_code == 302


def _state(k) -> bool:
    launch = _launch(k)
    callback = k.http.get(launch.login(PATIENT_USER[0]))
    return "state" not in parse_qs(urlsplit(callback.headers["location"]).query)


def _redirect(k) -> bool:
    launch = _launch(k)
    return launch.authorize(redirect_uri="https://attacker.example.org/cb").status_code == 302


def _introspection_replay(k) -> bool:
    token = APPS["alpha-portal"].hti(APPS["alpha-module"], "Patient/p", "Task/t")
    form = {"token": token, "client_assertion_type": JWT_BEARER}
    url = urls.introspection_url(k.url, ALPHA)
    for _ in range(2):
        answer = k.http.post(url, data={**form, "client_assertion": APPS["alpha-module"].assertion(url)}).json()
    return answer["active"] is True


def _http_subscription(k) -> bool:
    return k.post("alpha-portal", "Subscription", subscription("Task", "http://example.org/hook")).status_code == 201


def _notification(k, client: str, criteria: str, trigger) -> list:
    hook = Receiver()
    with running_asgi(hook.asgi(), name="hook") as server:
        k.create(client, subscription(criteria, server.url + "/h"))
        trigger()
        return hook.wait(1, timeout=1.5)


def _no_trace_headers(k) -> bool:
    family = uuid.uuid4().hex[:10]
    got = _notification(k, "alpha-epd", f"Patient?family={family}",
                        lambda: k.create("alpha-portal", patient(family=family)))
    return bool(got) and "x-request-id" not in got[0].headers


def _subscription_narrowing(k) -> bool:
    event = client_audit_event()
    return bool(_notification(k, "alpha-module", "AuditEvent?action=E",
                              lambda: k.post("alpha-portal", "AuditEvent", event)))


def _audit_missing(k) -> bool:
    rid = uuid.uuid4().hex
    k.get("alpha-portal", "Patient", headers={"X-Request-Id": rid})
    return not k.audit_events(requestId=rid)


def _audit_mutable(k) -> bool:
    k.create("alpha-portal", patient())
    k.services.audit.flush()
    event = k.search("alpha-beheer", "AuditEvent?_count=1")["entry"][0]["resource"]
    return k.put("alpha-beheer", f"AuditEvent/{event['id']}", event, version="1").status_code == 200


def _validation_500(k) -> bool:
    body = patient()
    body.pop("identifier")
    return k.post("alpha-portal", "Patient", body).status_code == 500


def _delete_referenced(k) -> bool:
    world = k.world()
    return k.delete("alpha-portal", f"Patient/{world['patient']['id']}").status_code == 200


def _dangling(k) -> bool:
    world = k.world()
    return k.post("alpha-portal", "Task", task("missing", world["definition"]["id"])).status_code == 201


def _subtask(k) -> bool:
    world = k.world()
    return k.post("alpha-portal", "Task", task(world["patient"]["id"], world["definition"]["id"], view=True)) \
        .status_code == 201


def _paging(k, check) -> bool:
    family = uuid.uuid4().hex[:10]
    for _ in range(2):
        k.create("alpha-portal", patient(family=family))
    return check(k.search("alpha-portal", f"Patient?family={family}&_count=1"))


def _deleted_read(k) -> bool:
    _, path = _patient(k)
    k.delete("alpha-portal", path)
    return k.get("alpha-portal", path).status_code == 404


def _history_drops(k) -> bool:
    _, path = _patient(k)
    k.delete("alpha-portal", path)
    history = k.get("alpha-portal", f"{path}/_history").json()
    return not any(e["request"]["method"] == "DELETE" for e in history.get("entry", []))


PROBES = {
    "if-match-not-enforced": lambda k: (lambda b, p: k.put("alpha-portal", p, b).status_code == 200)(*_patient(k)),
    "stale-version-accepted": lambda k: (lambda b, p: k.put("alpha-portal", p, b, version="1").status_code == 200
                                         and k.put("alpha-portal", p, b, version="1").status_code == 200)(*_patient(k)),
    "etag-missing": lambda k: "etag" not in k.post("alpha-portal", "Patient", patient()).headers,
    "jti-replay-accepted": lambda k: (lambda a: _token_status(k, a) == 200 and _token_status(k, a) == 200)(
        APPS["alpha-portal"].assertion(k.token_url())),
    "exp-not-checked": lambda k: _token_status(k, APPS["alpha-portal"].assertion(k.token_url(), lifetime=-600)) == 200,
    "aud-not-checked": lambda k: _token_status(k, APPS["alpha-portal"].assertion("https://x.example.org")) == 200,
    "hs256-accepted": _hs256,
    "unapproved-client-token": lambda k: k.request_token("alpha-maintenance").status_code == 200,
    "role-scope-ignored": lambda k: k.request_token("alpha-client-portal").json()["scope"] == "system/*.cruds",
    "kid-refetch-missing": _kid_rotation,
    "access-token-never-expires": _never_expires,
    "noop-token-accepted": lambda k: k.http.get(f"{k.base()}/Patient", headers={"Authorization": "Bearer NOOP"})
    .status_code == 200,
    "cross-domain-read": lambda k: k.http.get(f"{k.base(BETA)}/Patient", headers={
        "Authorization": f"Bearer {k.token('alpha-portal')}"}).status_code == 200,
    "narrowing-missing": _narrowing,
    "resource-origin-not-injected": _origin_not_injected,
    "resource-origin-overwritable": _origin_overwritable,
    "resource-origin-client-set-accepted": _origin_client_set,
    "pkce-not-checked": _pkce,
    "hti-aud-not-checked": _hti_aud,
    "identity-match-skipped": _identity,
    "state-not-returned": _state,
    "redirect-uri-not-checked": _redirect,
    "introspection-replay-active": _introspection_replay,
    "jwks-private-parts": lambda k: "d" in k.http.get(urls.jwks_url(k.url, ALPHA)).json()["keys"][0],
    "http-subscription-allowed": _http_subscription,
    "notification-without-trace-headers": _no_trace_headers,
    "subscription-narrowing-missing": _subscription_narrowing,
    "audit-event-missing": _audit_missing,
    "audit-event-mutable": _audit_mutable,
    "validation-error-500": _validation_500,
    "delete-ignores-references": _delete_referenced,
    "dangling-reference-accepted": _dangling,
    "subtask-without-partof-accepted": _subtask,
    "relative-next-links": lambda k: _paging(k, lambda b: not next(
        link["url"] for link in b["link"] if link["relation"] == "next").startswith("http")),
    "search-total-missing": lambda k: _paging(k, lambda b: "total" not in b),
    "deleted-read-404": _deleted_read,
    "history-drops-deletes": _history_drops,
    "capability-without-oauth-uris": lambda k: "extension" not in k.http.get(f"{k.base()}/metadata").json()[
        "rest"][0]["security"],
}


@pytest.fixture(scope="module")
def clean(jwks_host):
    from kt2_support import kt2_running
    with kt2_running(jwks_host, extra_apps=[ROTATING]) as harness:
        yield harness


@pytest.mark.parametrize("name", list(PROBES))
def test_fault_produces_its_defect_and_only_with_the_switch(name, make_kt2, clean):
    assert not PROBES[name](clean), f"{name}: the defect shows without the fault"
    with make_kt2(faults=(name,), extra_apps=[ROTATING]) as faulty:
        assert PROBES[name](faulty), f"{name}: the fault does not produce its defect"


def _requirement_ids() -> set[str]:
    readme = (Path(__file__).resolve().parents[1] / "simulators" / "kt2" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Requirement ids", 1)[1].split("\n## ", 1)[0]
    ids = set()
    for prefix, names in re.findall(r"(KT2-[A-Z]+)-\{([^}]*)\}", section):
        ids |= {f"{prefix}-{n.strip()}" for n in names.split(",")}
    return ids


def test_catalogue_is_big_enough_and_names_known_requirements():
    known = _requirement_ids()
    assert len(known) > 80
    assert len(FAULTS) >= 20
    for fault in FAULTS.values():
        assert fault.breaks and set(fault.breaks) <= known, (fault.name, set(fault.breaks) - known)
        assert fault.description.endswith(".")
    assert set(PROBES) <= set(FAULTS)

"""The simulated KT2 applications, each alone: keys and JWKS, the actor host, HTI tokens, PKCE, registration
through the domain admin, and `ktbench serve module` standalone on loopback https."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from joserfc import jwt

from ktbench.generations.kt2.embedded import running_kt2_bench
from simulators.kt2.actors import (
    AdminClient,
    KeyRing,
    Kt2Application,
    Kt2Portal,
    PlainHttp,
    pkce_pair,
    running_actor_host,
)
from simulators.kt2.actors.keys import PRIVATE_MEMBERS
from simulators.kt2.actors.registration import RegistrationFailed, register

REPO = Path(__file__).resolve().parents[1]


def test_a_key_ring_publishes_public_members_only_and_keeps_old_keys_after_rotation() -> None:
    ring = KeyRing.generated("ES256")
    first = ring.current.kid
    ring.rotate()
    jwks = ring.jwks()["keys"]
    assert [k["kid"] for k in jwks] == [first, ring.current.kid] and first != ring.current.kid
    assert all(not set(k) & set(PRIVATE_MEMBERS) for k in jwks)
    assert all(k["use"] == "sig" and k["alg"] == "ES256" for k in jwks)
    ring.published_private = True        # the defect a simulated application can be given
    assert "d" in ring.jwks()["keys"][0]
    assert "PRIVATE" not in repr(ring) and first in repr(ring)


def test_a_private_key_from_pem_or_jwk_text_keeps_its_kid() -> None:
    original = KeyRing.generated()
    pem = original.current.key.as_pem(private=True).decode()
    assert KeyRing.from_private_text(pem).current.kid == original.current.kid      # RFC 7638 thumbprint
    jwk_text = '{"kid": "mine", ' + __import__("json").dumps(original.current.key.as_dict(private=True))[1:]
    assert KeyRing.from_private_text(jwk_text).current.kid == "mine"


def test_the_actor_host_serves_jwks_and_records_launches_and_notifications() -> None:
    with running_actor_host() as host, httpx.Client(timeout=5) as client:
        ring = KeyRing.generated()
        host.add("module", ring)
        jwks = client.get(host.jwks_url("module"))
        assert jwks.status_code == 200 and jwks.json() == ring.jwks()
        assert "max-age=" in jwks.headers["cache-control"]
        assert client.get(host.jwks_url("nobody")).status_code == 404

        def later() -> None:
            time.sleep(0.2)
            client.post(host.launch_url("module"), data={"launch": "hti-token", "iss": "https://fhir.example"})

        threading.Thread(target=later).start()
        got = host.inbox.wait(lambda r: r.kind == "launch", timeout=5)
        assert got and got[0].form == {"launch": "hti-token", "iss": "https://fhir.example"}
        assert "hti-token" not in repr(got[0])
        host.answer_notifications("module", "tasks", [503, 500])
        statuses = [client.post(host.notification_url("module", "tasks"), content=b"").status_code for _ in range(3)]
        assert statuses == [503, 500, 200]
        assert len(host.inbox.items(lambda r: r.kind == "notification" and r.channel == "tasks")) == 3
        assert client.post(host.launch_url("module"), content=b"x" * 70_000).status_code == 413
        assert host.inbox.wait(lambda r: r.kind == "callback", timeout=0.1) == []   # times out, no hang


def test_the_portal_signs_hti_tokens_with_the_claims_of_kt2_section_2_2() -> None:
    ring = KeyRing.generated()
    portal = Kt2Portal("portal", PlainHttp(httpx.Client()), "https://fhir.example/api/v1/d/fhir/r4", "portal-1", ring)
    token = portal.hti("Device/module-1", "Patient/p1", "Task/t1", patient="Patient/p1", lifetime=120)
    decoded = jwt.decode(token, ring.current.key, algorithms=["RS512"])
    claims = decoded.claims
    assert decoded.header["kid"] == ring.current.kid and decoded.header["alg"] == "RS512"
    assert claims["iss"] == "portal-1" and claims["aud"] == "Device/module-1" and claims["sub"] == "Patient/p1"
    assert claims["resource"] == "Task/t1" and claims["patient"] == "Patient/p1"
    assert claims["exp"] - claims["iat"] == 120 and len(claims["jti"]) >= 16
    assert portal.hti("Device/m", "Patient/p", "Task/t") != token           # a fresh jti every time


def test_pkce_pairs_are_s256_and_never_repeat() -> None:
    verifier, challenge = pkce_pair()
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == expected and 43 <= len(verifier) <= 128
    assert pkce_pair()[0] != verifier


def test_registration_through_the_domain_admin_gives_a_working_client(tmp_path) -> None:
    with running_kt2_bench(workdir=tmp_path) as bench, httpx.Client(
            timeout=10, verify=bench.target.tls.httpx_verify()) as client:
        http = PlainHttp(client)
        api = bench.target.setting("admin_api")
        roles = bench.target.roles
        filer = AdminClient("application-admin", http, api, roles["application-admin"].username,
                            roles["application-admin"].password.reveal())
        approver = AdminClient("domain-admin", http, api, roles["domain-admin"].username,
                               roles["domain-admin"].password.reveal())
        with running_actor_host() as host:
            ring = KeyRing.generated()
            host.add("portal", ring)
            done = register(filer, approver, application="ktbench-portal", domain="ktbench-alpha",
                            role="Behandelaarsportaal", jwks_uri=host.jwks_url("portal"))
            app = Kt2Application("portal", http, bench.target.url, done.client_id, ring)
            assert app.request_token().status_code == 200
            assert app.search("Patient").status_code == 200
            with pytest.raises(RegistrationFailed, match="role"):
                register(filer, approver, application="ktbench-portal", domain="ktbench-alpha",
                         role="no such role", jwks_uri=host.jwks_url("portal"))


def test_ktbench_serve_module_serves_its_jwks_and_launch_url_on_loopback_https(tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "ktbench", "serve", "module", "--tls-dir", str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = {}
        deadline = time.monotonic() + 20
        while "test CA" not in lines and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if ":" in line and line.startswith("  "):
                key, _, value = line.strip().partition(":")
                lines[key] = value.strip().split(" ")[0]
        assert lines.get("JWKS URL", "").startswith("https://127.0.0.1:"), lines
        ca = lines["test CA"]
        with httpx.Client(verify=__import__("ssl").create_default_context(cafile=ca), timeout=5) as client:
            assert client.get(lines["JWKS URL"]).json()["keys"][0]["kty"] == "RSA"
            assert client.post(lines["launch URL"], data={"launch": "x", "iss": "y"}).status_code == 200
        line = proc.stdout.readline()
        assert "received launch for module" in line and "(iss, launch)" in line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    bad = subprocess.run([sys.executable, "-m", "ktbench", "serve", "module", "--key", str(tmp_path / "none.pem")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot use --key" in bad.stderr and "Traceback" not in bad.stderr

"""An independently written client: the public KT2 Python SDK (PyPI `kt2` 0.0.19a0) as an eHealth module.

The SDK pins pydantic 1 and fhir.resources 7 and imports PyJWT and wasabi without declaring them, so it cannot
live in the project's venv: it gets its own (built once under <repo>/.cache/kt2-sdk-venv, guarded by a file
lock for pytest-xdist) and a driver script runs it as a subprocess against a running voorziening.  The SDK
signs an RS512 assertion with `kid`, publishes an Endpoint and an ActivityDefinition, updates it with If-Match,
pages through searches (absolute next links), reads a Task and verifies the access token's signature with the
voorziening's JWKS.  Where the SDK and the spec disagree the server follows the spec (README "Independent
clients"); nothing here needed a concession.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kt2_support import ALPHA, APPS, jwks_host, kt2, no_unhandled_errors, patient, task  # noqa: F401
from simulators.kt2 import urls

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache" / "kt2-sdk-venv"
PACKAGES = ["kt2==0.0.19a0", "pyjwt", "wasabi", "cryptography"]

DRIVER = r'''
import asyncio, json, sys
from kt2.client import KoppeltaalSDK
from kt2.settings import JWKSKeyPair
from kt2.models import KT2ActivityDefinition, KT2Endpoint

cfg = json.loads(sys.argv[1])
KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
sdk = KoppeltaalSDK(
    client_name="ktbench-sdk-module", fhir_url=cfg["fhir"], oauth_token_url=cfg["token"],
    oauth_authorize_url=cfg["authorize"], oauth_introspection_token_url=cfg["introspect"],
    jwks_url=cfg["server_jwks"], jwks_kid=cfg["server_kid"], domain=cfg["domain"], client_id=cfg["client_id"],
    smart_config_url=cfg["smart"],
    jwks_keys=JWKSKeyPair(private_key_path=cfg["private"], public_key_path=cfg["public"], kid=cfg["kid"]))


async def main():
    out = {}
    info = await sdk.get_info()
    out["issuer"] = info["issuer"]
    token = await sdk.get_access_token()
    out["token_type"] = token["token_type"]
    out["scope"] = token["scope"]
    out["bearer"] = sdk.token.bearer_token.startswith("Bearer ")   # verifies the RS512 signature with the JWKS
    endpoint = await sdk.create_endpoint(KT2Endpoint(
        status="active", name="sdk module", address="https://sdk.ktbench.test/launch",
        connectionType={"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type",
                        "code": "hti-smart-on-fhir"},
        payloadType=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                  "code": "any"}]}]))
    out["endpoint"] = endpoint.id
    definition = await sdk.create_activitydefinition(KT2ActivityDefinition(
        status="active", title="SDK dagboek", name="SdkDagboek", url="https://sdk.ktbench.test/activities/1",
        identifier=[{"system": "https://sdk.ktbench.test/ids", "value": cfg["marker"]}],
        extension=[{"url": KT + "KT2EndpointExtension", "valueReference": {"reference": "Endpoint/" + endpoint.id}},
                   {"url": KT + "KT2PublisherId", "valueId": cfg["marker"]}]))
    out["definition"] = definition.id
    out["origin"] = [e.valueReference.reference for e in definition.extension if e.url == KT + "resource-origin"]
    definition.title = "SDK dagboek (bijgewerkt)"
    changed = await sdk.update_activitydefinition(definition)
    out["version"] = changed.meta.versionId
    out["definitions"] = [d.id for d in await sdk.get_activitydefinitions()]
    out["patients"] = [p.id for p in await sdk.get_patients()]
    out["task"] = (await sdk.get_task(cfg["task"])).id
    out["endpoints"] = [e.id for e in await sdk.get_endpoints()]
    print("KTBENCH-RESULT " + json.dumps(out))

asyncio.run(main())
'''


def _sdk_python() -> Path:
    VENV.parent.mkdir(parents=True, exist_ok=True)
    python = VENV / "bin" / "python"
    with open(VENV.parent / "kt2-sdk-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (VENV / ".ready").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
            result = subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], capture_output=True,
                                    text=True, timeout=600)
            if result.returncode != 0:
                pytest.skip(f"pip cannot install the KT2 SDK here: {result.stderr.strip()[-400:]}")
            (VENV / ".ready").write_text(" ".join(PACKAGES), encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    return _sdk_python()


def test_sdk_as_an_ehealth_module(kt2, sdk_python, tmp_path):
    module = APPS["alpha-module"]
    (tmp_path / "private.pem").write_bytes(module.key.as_pem(private=True))
    (tmp_path / "public.pem").write_bytes(module.key.as_pem(private=False))
    person = kt2.create("alpha-portal", patient())
    world = kt2.world()
    chosen = kt2.create("alpha-portal", task(person["id"], world["definition"]["id"]))
    for _ in range(3):   # more patients than one page: the SDK follows the next links
        kt2.create("alpha-portal", patient())
    server_kid = kt2.http.get(urls.jwks_url(kt2.url, ALPHA)).json()["keys"][0]["kid"]
    marker = "sdk" + chosen["id"][:8]
    config = {"fhir": kt2.base(), "token": kt2.token_url(), "authorize": urls.authorize_url(kt2.url, ALPHA),
              "introspect": urls.introspection_url(kt2.url, ALPHA), "server_jwks": urls.jwks_url(kt2.url, ALPHA),
              "server_kid": server_kid, "domain": ALPHA, "client_id": module.client_id, "kid": module.kid,
              "smart": f"{kt2.base()}/.well-known/smart-configuration", "private": str(tmp_path / "private.pem"),
              "public": str(tmp_path / "public.pem"), "task": chosen["id"], "marker": marker}
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    run = subprocess.run([str(sdk_python), str(script), json.dumps(config)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(l for l in run.stdout.splitlines() if l.startswith("KTBENCH-RESULT "))
    out = json.loads(line.split(" ", 1)[1])
    assert out["issuer"] == urls.oauth_base(kt2.url, ALPHA)
    assert out["token_type"] == "Bearer" and "system/ActivityDefinition.cud?resource-origin=Device/alpha-module" \
        in out["scope"]
    assert out["bearer"] is True
    assert out["origin"] == ["Device/alpha-module"] and out["version"] == "2"
    assert out["definition"] in out["definitions"] and out["endpoint"] in out["endpoints"]
    assert person["id"] in out["patients"] and len(out["patients"]) >= 4
    assert out["task"] == chosen["id"]
    stored = kt2.get("alpha-portal", f"ActivityDefinition/{out['definition']}").json()
    assert stored["title"] == "SDK dagboek (bijgewerkt)"

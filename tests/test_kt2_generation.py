"""The KT2 generation as the engine sees it: target kind and roles, a bare --target URL, the embedded https
voorziening, and the preflight that turns set-up mistakes into configuration verdicts (never failures)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import httpx
import pytest

from ktbench.cli.registry import build_registry
from ktbench.generations.kt2 import GENERATION
from ktbench.generations.kt2.embedded import running_kt2_bench
from ktbench.targets.model import (
    AccountCredential,
    Secret,
    SmartBackendCredential,
    Target,
)
from ktbench.targets.reader import load_targets_file
from simulators.kt2.actors import KeyRing


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    with running_kt2_bench(workdir=tmp_path_factory.mktemp("kt2-bench")) as running:
        yield running


def test_the_kind_declares_the_counter_roles_and_credential_types() -> None:
    kind = next(k for k in GENERATION.kinds if k.name == "kt2-server")
    assert kind.target_role == "server"
    assert kind.roles["portal"].credential_types == ("smart-backend",)
    assert kind.roles["domain-admin"].credential_types == ("account",)
    assert build_registry().suite("kt2")[1].steps_package == "steps.kt2"


def test_a_bare_url_names_its_domain_the_other_domain_and_the_reference_admin_accounts() -> None:
    target = GENERATION.target_for_url("http://127.0.0.1:8082/api/v1/ktbench-alpha/fhir/r4/metadata")
    assert target.url == "http://127.0.0.1:8082/api/v1/ktbench-alpha/fhir/r4"
    assert target.setting("domain") == "ktbench-alpha"
    assert target.setting("other_domain_fhir_base") == "http://127.0.0.1:8082/api/v1/ktbench-beta/fhir/r4"
    assert isinstance(target.roles["domain-admin"], AccountCredential)
    assert "alpha-admin-password" not in repr(target)      # secrets print as ***


def test_the_embedded_voorziening_is_https_with_the_bench_ca_and_declares_its_timers(bench) -> None:
    target = bench.target
    assert target.url.startswith("https://127.0.0.1:") and target.url.endswith("/api/v1/ktbench-alpha/fhir/r4")
    answer = httpx.get(target.url + "/.well-known/smart-configuration", verify=str(target.tls.ca_file))
    assert answer.status_code == 200 and answer.json()["token_endpoint"].startswith("https://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):       # nobody else trusts the throw-away CA
        httpx.get(target.url + "/metadata")
    assert target.setting("access_token_seconds") == 3 and target.setting("clock_skew_seconds") == 1
    assert Path(target.setting("actors_tls_cert")).is_file()
    assert GENERATION.preflight(target) == []


def test_preflight_unreachable_and_wrong_url_are_configuration_verdicts(bench) -> None:
    gone = Target(name="gone", kind="kt2-server", url="http://127.0.0.1:9/api/v1/x/fhir/r4",
                  roles=GENERATION.default_roles())
    assert [p.kind for p in GENERATION.preflight(gone)] == ["unreachable"]
    root = bench.target.model_copy(update={"url": bench.target.url.split("/api/")[0]})
    problems = GENERATION.preflight(root)
    assert [p.kind for p in problems] == ["protocol"] and "FHIR base" in problems[0].message


def test_preflight_names_a_wrong_admin_password_and_an_unknown_pre_registered_client(bench, tmp_path) -> None:
    roles = dict(bench.target.roles)
    roles["domain-admin"] = AccountCredential(role="domain-admin", username="alpha-admin", password=Secret("wrong"))
    key = tmp_path / "portal.pem"
    key.write_bytes(KeyRing.generated().current.key.as_pem(private=True))
    roles["portal"] = SmartBackendCredential(role="portal", client_id="nobody-registered-this", private_key_file=key)
    problems = GENERATION.preflight(bench.target.model_copy(update={"roles": roles}))
    by_text = {p.kind: p.message for p in problems}
    assert set(by_text) == {"credentials"}
    messages = " | ".join(p.message for p in problems)
    assert "role domain-admin" in messages and "alpha-admin" in messages and "wrong" not in messages
    assert "role portal" in messages and "nobody-registered-this" in messages


def test_preflight_without_applications_or_admin_accounts_says_what_to_give(bench) -> None:
    bare = bench.target.model_copy(update={"roles": {}})
    problems = GENERATION.preflight(bare)
    assert [p.kind for p in problems] == ["configuration"]
    assert "application-admin" in problems[0].message and "smart-backend" in problems[0].message


def test_a_targets_file_with_pre_registered_instances_and_secrets_from_the_environment(tmp_path) -> None:
    key = tmp_path / "keys" / "portal.pem"
    key.parent.mkdir()
    key.write_bytes(KeyRing.generated().current.key.as_pem(private=True))
    jwk = json.dumps(KeyRing.generated("ES384").current.key.as_dict(private=True))
    path = tmp_path / "targets.toml"
    path.write_text(textwrap.dedent('''
        [targets.acc21]
        kind = "kt2-server"
        url = "https://acc21.example.org/api/v1/ggz-noord/fhir/r4"
        domain = "ggz-noord"
        [targets.acc21.roles.portal]
        type = "smart-backend"
        client_id = "5f0c-portal"
        private_key_file = "keys/portal.pem"
        jwks_url = "https://portal.vendor.example/jwks"
        [targets.acc21.roles.module]
        type = "smart-backend"
        client_id = "9a1b-module"
        private_jwk = "${MODULE_JWK}"
        algorithm = "ES384"
    '''), encoding="utf-8")
    target = load_targets_file(path, build_registry(), env={"MODULE_JWK": jwk}).get("acc21")
    portal, module = target.roles["portal"], target.roles["module"]
    assert Path(portal.private_key_file) == key.resolve()
    assert module.algorithm == "ES384" and module.private_key_text().reveal() == jwk
    assert jwk not in repr(target) and "PRIVATE KEY" not in repr(target)
    assert target.setting("domain") == "ggz-noord"

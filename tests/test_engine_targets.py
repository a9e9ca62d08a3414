"""ktbench.targets: the one target model, the one reader (pydantic, every problem at once), the one writer.

Targets are read through a registry of generations (here the KT1 generation and a throw-away one with
SMART and mTLS roles), so the reader is tested exactly as `ktbench run` uses it.
"""

from __future__ import annotations

import copy
import json
import pickle
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from ktbench.core.errors import BenchError, TargetConfigError
from ktbench.core.generation import GenerationRegistry, RoleSpec, TargetKind
from ktbench.core.secret import Secret
from ktbench.generations.kt1 import GENERATION as KT1
from ktbench.targets import (
    BasicCredential,
    MtlsCredential,
    SmartBackendCredential,
    Target,
    load_targets_file,
    resolve_target,
    substitute_env,
    target_table,
    write_targets_file,
)

GOOD = """
default = "acc"

[targets.acc]
kind = "kt1-server"
url = "https://edge.example.org/"
domain = "vzvz-test"
claim_timeout_seconds = 300
request_timeout_seconds = 20

[targets.acc.tls]
verify = false

[targets.acc.roles.portal]
app_id = "vzvz-portal"
password = "${KT_PORTAL_PASSWORD}"
client_secret = "${KT_PORTAL_SECRET:-fallback-secret}"

[targets.acc.roles.module]
app_id = "vzvz-module"
username = "module-user"
password = "literal-$$-dollar"
domain = "other-domain"

[targets.local]
kind = "kt1-server"
url = "http://127.0.0.1:8080"
"""


class ToySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    flavour: str = "plain"


class ToyGeneration:
    """Roles with the other credential types, to test the reader beyond KT1."""

    name = "toy"
    title = "toy"
    validation_kt = None
    kinds = (TargetKind("toy-server", "toy server", "server", settings=ToySettings, roles={
        "app": RoleSpec("app", ("smart-backend",)),
        "gateway": RoleSpec("gateway", ("mtls", "basic")),
    }),)
    suites = ()

    def default_roles(self, kind: str) -> dict:
        return {}

    def target_for_url(self, url: str, kind: str, name: str | None = None) -> Target:
        return Target(name=name or "toy", kind=kind, url=url, settings=ToySettings())

    def embedded(self, suite, *, faults=(), workdir):  # pragma: no cover - not used here
        raise NotImplementedError


@pytest.fixture
def registry() -> GenerationRegistry:
    reg = GenerationRegistry()
    reg.register(KT1, "ktbench.generations.kt1:GENERATION")
    reg.register(ToyGeneration(), "tests.test_engine_targets:ToyGeneration")
    return reg


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bare_url_gets_the_generations_default_credentials(registry) -> None:
    target = resolve_target("http://127.0.0.1:8080/", None, registry, kind="kt1-server", env={})
    assert target.url == "http://127.0.0.1:8080" and target.kind == "kt1-server"
    assert target.setting("domain") == "ktbench-alpha"
    expected = {"portal": "ktbench-portal", "module": "ktbench-module", "observer": "ktbench-observer",
                "other-domain-portal": "ktbench-beta-portal", "other-domain-module": "ktbench-beta-module"}
    assert {role: creds.app_id for role, creds in target.roles.items()} == expected
    assert target.role("portal").basic_auth() == ("ktbench-portal", "portal-secret")
    assert target.role("other-domain-portal").domain == "ktbench-beta"
    assert target.role("module").client_secret.reveal() == "module-oauth-secret"
    assert target.role("module").role == "module"


def test_targets_file_with_env_substitution(tmp_path: Path, registry) -> None:
    loaded = load_targets_file(write(tmp_path, GOOD), registry, env={"KT_PORTAL_PASSWORD": "from-env"})
    assert loaded.default == "acc"
    acc = loaded.get("acc")
    assert acc.url == "https://edge.example.org"
    assert acc.setting("claim_timeout_seconds") == 300.0 and acc.request_timeout_seconds == 20
    assert acc.tls.httpx_verify() is False and acc.tls.httpx_cert() is None
    assert set(acc.roles) == {"portal", "module"}
    portal = acc.role("portal")
    assert isinstance(portal, BasicCredential) and portal.type == "basic"
    assert portal.username == "vzvz-portal"  # defaults to app_id
    assert portal.password.reveal() == "from-env"
    assert portal.client_secret.reveal() == "fallback-secret"
    module = acc.role("module")
    assert module.password.reveal() == "literal-$-dollar"
    assert module.username == "module-user" and module.domain == "other-domain"
    # a target without roles gets the generation's defaults
    assert loaded.get("local").role("observer").app_id == "ktbench-observer"


def test_missing_env_var_is_a_clear_error(tmp_path: Path, registry) -> None:
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, GOOD), registry, env={})
    message = str(err.value)
    assert "KT_PORTAL_PASSWORD is not set" in message
    assert "[targets.acc].roles.portal.password" in message


def test_every_problem_is_reported_at_once(tmp_path: Path, registry) -> None:
    text = """
[targets.x]
kind = "kt1-server"
ulr = "http://a"
domain = 3

[targets.x.roles.portl]
app_id = "a"

[targets.y]
url = "ftp://host"
kind = "kt3-server"

[targets.z]
kind = "kt1-server"
url = "http://h"
claim_timeout_seconds = -1

[targets.z.roles.portal]
password = "p"
type = "smart-backend"

[targets.z.roles.module]
password = "p"
"""
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, text), registry, env={})
    message = str(err.value)
    for expected in ("unknown key 'ulr' (did you mean 'url'?)", "missing required key 'url'",
                     "[targets.x].domain: Input should be a valid string",
                     "unknown role 'portl' for a kt1-server target (did you mean 'portal'?)",
                     "unknown target kind 'kt3-server'",
                     "claim_timeout_seconds: Input should be greater than 0",
                     "[targets.z.roles.portal].type: role 'portal' takes basic credentials, not 'smart-backend'",
                     "[targets.z.roles.module].app_id: Field required"):
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert message.count("\n  - ") >= 8


def test_smart_and_mtls_credentials_are_typed_and_checked(tmp_path: Path, registry) -> None:
    key = tmp_path / "keys" / "app.pem"
    key.parent.mkdir()
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n")
    (tmp_path / "gw.pem").write_text("cert")
    (tmp_path / "gw.key").write_text("key")
    (tmp_path / "ca.pem").write_text("ca")
    text = """
[targets.t]
kind = "toy-server"
url = "https://voorziening.example"
flavour = "spicy"

[targets.t.tls]
ca_file = "ca.pem"
client_cert = "gw.pem"
client_key = "gw.key"

[targets.t.roles.app]
client_id = "c0ffee"
private_key_file = "keys/app.pem"
kid = "k1"
algorithm = "RS384"
jwks_url = "https://vendor.example/jwks"

[targets.t.roles.gateway]
type = "mtls"
cert_file = "gw.pem"
key_file = "gw.key"
"""
    target = load_targets_file(write(tmp_path, text), registry, env={}).get("t")
    app = target.role("app")
    assert isinstance(app, SmartBackendCredential) and app.type == "smart-backend"
    assert app.private_key_file == key.resolve(), "relative paths are relative to the targets file"
    assert app.private_key_text().reveal().startswith("-----BEGIN PRIVATE KEY-----")
    assert isinstance(target.role("gateway"), MtlsCredential)
    assert target.tls.ca_file == (tmp_path / "ca.pem").resolve()   # httpx_verify() builds an SSLContext from it
    assert target.tls.httpx_cert() == (str((tmp_path / "gw.pem").resolve()), str((tmp_path / "gw.key").resolve()))
    assert target.setting("flavour") == "spicy"
    assert any("not-a-real-key" in s for s in target.secrets()), "a private key is a secret to scrub"
    assert "not-a-real-key" not in repr(target) + str(target)

    for old, new, expected in (
            ('algorithm = "RS384"', 'algorithm = "HS256"', "asymmetric algorithm"),
            ('kid = "k1"', 'private_jwk = "{}"', "exactly one of private_key_file and private_jwk"),
            ('client_key = "gw.key"', "", "client_cert and client_key go together"),
            ('type = "mtls"', 'type = "smart-backend"', "role 'gateway' takes mtls or basic credentials")):
        with pytest.raises(TargetConfigError) as err:
            load_targets_file(write(tmp_path, text.replace(old, new)), registry, env={})
        assert expected in str(err.value)


def test_writer_round_trips_through_the_reader(tmp_path: Path, registry) -> None:
    loaded = load_targets_file(write(tmp_path, GOOD), registry, env={"KT_PORTAL_PASSWORD": "from-env"})
    path = write_targets_file(tmp_path / "out" / "targets.toml", loaded.targets.values(), default="acc")
    assert path.stat().st_mode & 0o077 == 0, "a written targets file holds credentials: owner-only"
    again = load_targets_file(path, registry, env={})
    assert again.default == "acc"
    for name, target in loaded.targets.items():
        copy_ = again.get(name)
        assert target_table(copy_) == target_table(target)
        assert copy_.role("portal").password == target.role("portal").password
    assert tomllib.loads(path.read_text())["targets"]["acc"]["claim_timeout_seconds"] == 300.0


def test_unknown_target_name_suggests_the_closest(tmp_path: Path, registry) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(TargetConfigError, match=r"unknown target 'accc'.*did you mean 'acc'"):
        resolve_target("accc", path, registry, kind="kt1-server", env={"KT_PORTAL_PASSWORD": "x"})
    assert resolve_target(None, path, registry, kind="kt1-server", env={"KT_PORTAL_PASSWORD": "x"}).name == "acc"
    assert resolve_target(None, None, registry, kind="kt1-server", env={}) is None
    with pytest.raises(TargetConfigError, match="neither a URL nor a target name"):
        resolve_target("acc", None, registry, kind="kt1-server", env={})
    env = {"KTBENCH_TARGETS": str(path), "KT_PORTAL_PASSWORD": "x"}
    assert resolve_target("local", None, registry, kind="kt1-server", env=env).name == "local"


@pytest.mark.parametrize("text,expected", [
    ("not toml = [", "not valid TOML"),
    ("[other]\nx = 1", "unknown key 'other'"),
    ("default = \"nope\"\n[targets.a]\nkind = \"kt1-server\"\nurl = \"http://h\"", "does not name a target"),
    ("[targets.a]\nurl = \"http://h\"", "missing key 'kind'"),
    ("[targets.a]\nkind = \"kt1-server\"\nurl = \"http://h:99999\"", "invalid port"),
    ("[targets.a]\nkind = \"kt1-server\"\nurl = \"http://h?x=1\"", "must not have a query"),
    ("[targets.a]\nkind = \"kt1-server\"\nurl = \"http://h\"\n[targets.a.tls]\nca_file = \"missing.pem\"",
     "ca_file 'missing.pem' is not a readable file"),
])
def test_bad_files_give_one_clear_message(tmp_path: Path, registry, text: str, expected: str) -> None:
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, text), registry, env={})
    assert expected in str(err.value).replace(str(tmp_path) + "/", "")


def test_missing_and_directory_files(tmp_path: Path, registry) -> None:
    with pytest.raises(TargetConfigError, match="does not exist"):
        load_targets_file(tmp_path / "nope.toml", registry)
    with pytest.raises(TargetConfigError, match="is a directory"):
        load_targets_file(tmp_path, registry)


def test_env_substitution_rules() -> None:
    env = {"A": "1"}
    assert substitute_env("x${A}y", "w", env) == "x1y"
    assert substitute_env("${B:-dflt}", "w", env) == "dflt"
    assert substitute_env("$$A and $A", "w", env) == "$A and $A"
    with pytest.raises(TargetConfigError, match="B is not set"):
        substitute_env("${B}", "[t].k", env)


def test_secrets_never_print_and_never_pickle() -> None:
    secret = Secret("hunter2")
    creds = BasicCredential(role="portal", app_id="a", password=secret)
    text = f"{secret} {secret!r} {creds} {creds!r} {json.dumps(str(secret))}"
    assert "hunter2" not in text
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        Secret(3)  # type: ignore[arg-type]


def test_unknown_role_is_a_bench_error_naming_the_configured_ones(registry) -> None:
    target = resolve_target("http://h", None, registry, kind="kt1-server", env={})
    with pytest.raises(BenchError, match="no credentials for role 'nurse'.*configured roles: module"):
        target.role("nurse")

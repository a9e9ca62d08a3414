"""ktbench.targets: bare-URL defaults, the TOML targets file, ${ENV} secrets and clear errors."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from ktbench.targets import (
    KNOWN_ROLES,
    BenchError,
    Secret,
    TargetConfigError,
    default_roles,
    load_targets_file,
    resolve_target,
    substitute_env,
    target_from_url,
)

GOOD = """
default = "acc"

[targets.acc]
kind = "kt1-server"
url = "https://edge.example.org/"
domain = "vzvz-test"
claim_timeout_seconds = 300
verify_tls = false

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
url = "http://127.0.0.1:8080"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_bare_url_gets_reference_server_credentials() -> None:
    target = target_from_url("http://127.0.0.1:8080/")
    assert target.url == "http://127.0.0.1:8080"
    assert target.fhir_base == "http://127.0.0.1:8080/FHIR/Koppeltaal"
    assert target.domain == "ktbench-alpha"
    assert set(target.roles) == set(KNOWN_ROLES)
    expected = {"portal": "ktbench-portal", "module": "ktbench-module", "observer": "ktbench-observer",
                "other-domain-portal": "ktbench-beta-portal", "other-domain-module": "ktbench-beta-module"}
    assert {role: creds.app_id for role, creds in target.roles.items()} == expected
    assert target.role("portal").basic_auth() == ("ktbench-portal", "portal-secret")
    assert target.role("other-domain-portal").domain == "ktbench-beta"
    assert target.role("module").client_secret.reveal() == "module-oauth-secret"


def test_targets_file_with_env_substitution(tmp_path: Path) -> None:
    loaded = load_targets_file(write(tmp_path, GOOD), env={"KT_PORTAL_PASSWORD": "from-env"})
    assert loaded.default == "acc"
    acc = loaded.get("acc")
    assert acc.url == "https://edge.example.org"
    assert acc.public_base == "https://edge.example.org"
    assert acc.claim_timeout_seconds == 300.0 and acc.verify_tls is False
    assert set(acc.roles) == {"portal", "module"}
    portal = acc.role("portal")
    assert portal.username == "vzvz-portal"  # defaults to app_id
    assert portal.password.reveal() == "from-env"
    assert portal.client_secret.reveal() == "fallback-secret"
    assert portal.domain == "vzvz-test"
    module = acc.role("module")
    assert module.password.reveal() == "literal-$-dollar"
    assert module.username == "module-user" and module.domain == "other-domain"
    # a target without roles gets the reference defaults
    assert loaded.get("local").role("observer").app_id == "ktbench-observer"


def test_missing_env_var_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, GOOD), env={})
    message = str(err.value)
    assert "KT_PORTAL_PASSWORD is not set" in message
    assert "[targets.acc.roles.portal].password" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
[targets.x]
ulr = "http://a"
domain = 3

[targets.x.roles.portl]
app_id = "a"

[targets.y]
url = "ftp://host"
kind = "kt3-server"
claim_timeout_seconds = -1

[targets.y.roles.portal]
password = "p"
"""
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, text), env={})
    message = str(err.value)
    for expected in ("unknown key 'ulr' (did you mean 'url'?)", "missing required key 'url'",
                     "domain: must be a string", "unknown role 'portl' (did you mean 'portal'?)",
                     "'ftp://host' is not an http(s) URL", "unknown kind 'kt3-server'",
                     "claim_timeout_seconds: must be a positive number",
                     "[targets.y.roles.portal]: missing required key 'app_id'"):
        assert expected in message, expected


@pytest.mark.parametrize("text, expected", [
    ("", "no [targets.<name>] tables"),
    ("targets = 3", "no [targets.<name>] tables"),
    ("[targets.a]\nurl = 'http://x'\n[other]\n", "unknown key 'other'"),
    ("default = 'zz'\n[targets.a]\nurl = 'http://x'\n", "default = 'zz' does not name a target"),
    ("[targets.a\nurl = ", "not valid TOML"),
    ("[targets.a]\nurl = 'http://x?y=1'\n", "must not have a query"),
])
def test_file_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(TargetConfigError) as err:
        load_targets_file(write(tmp_path, text), env={})
    assert expected in str(err.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError, match="does not exist"):
        load_targets_file(tmp_path / "nope.toml")


def test_resolve_target(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    env = {"KT_PORTAL_PASSWORD": "x"}
    assert resolve_target("http://127.0.0.1:9999", None, env={}).url == "http://127.0.0.1:9999"
    assert resolve_target(None, None, env={}) is None  # -> embedded server
    assert resolve_target("local", path, env=env).name == "local"
    assert resolve_target(None, path, env=env).name == "acc"  # the file's default
    assert resolve_target("local", None, env={**env, "KTBENCH_TARGETS": str(path)}).name == "local"
    with pytest.raises(TargetConfigError, match=r"unknown target 'lokal'.*did you mean 'local'"):
        resolve_target("lokal", path, env=env)
    with pytest.raises(TargetConfigError, match="neither a URL nor a target name"):
        resolve_target("acc", None, env={})
    with pytest.raises(TargetConfigError, match="not an http"):
        resolve_target("ftp://x", None, env={})


def test_unknown_role_of_a_target_is_a_bench_error(tmp_path: Path) -> None:
    acc = load_targets_file(write(tmp_path, GOOD), env={"KT_PORTAL_PASSWORD": "x"}).get("acc")
    with pytest.raises(BenchError, match="no credentials for role 'observer'.*module, portal"):
        acc.role("observer")


def test_substitute_env_grammar() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert substitute_env("x${A}y${B:-dflt}z${EMPTY:-unused}$${A}", "w", env) == "x1ydfltz${A}"
    with pytest.raises(TargetConfigError, match="B is not set"):
        substitute_env("${B}", "w", env)


def test_secret_never_prints_itself() -> None:
    s = Secret("hunter2-password")
    assert repr(s) == "Secret('***')" and str(s) == "***"
    assert f"{s}" == "***" and "%s" % s == "***" and "{}".format(s) == "***"
    assert s.reveal() == "hunter2-password"
    assert s == Secret("hunter2-password") and s != "hunter2-password"
    with pytest.raises(TypeError):
        json.dumps({"p": s})
    with pytest.raises(TypeError):
        pickle.dumps(s)
    target = target_from_url("http://127.0.0.1:8080")
    as_dict = dataclasses.asdict(target)  # deep copies keep the wrapper
    assert as_dict["roles"]["portal"]["password"] == Secret("portal-secret")
    assert "portal-secret" not in repr(as_dict)


def test_target_repr_has_no_secrets() -> None:
    target = target_from_url("http://127.0.0.1:8080")
    text = repr(target) + repr(target.role("portal")) + str(target.roles)
    for role in target.roles.values():
        assert role.password.reveal() not in text
        assert role.client_secret.reveal() not in text
    assert set(target.secrets()) >= {"portal-secret", "portal-oauth-secret", "beta-module-secret"}


def test_default_roles_follow_the_data_file(tmp_path: Path) -> None:
    data = tmp_path / "data.toml"
    data.write_text('[[applications]]\nid = "ktbench-portal"\ndomain = "d"\n', encoding="utf-8")
    with pytest.raises(TargetConfigError, match="ktbench-module"):
        default_roles(data)

"""Against a real voorziening whose targets file gives no admin accounts, the connection-approval scenarios skip
with the key to add (the run is then incomplete, exit 4), instead of breaking or blaming the target."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from steps.kt2.steps_admin import _application_admin, _domain_admin


def _world(admins: dict) -> SimpleNamespace:
    bench = SimpleNamespace(admins=admins, target=SimpleNamespace(name="acc21"), admin=admins.__getitem__)
    return SimpleNamespace(bench=bench)


def test_a_missing_admin_account_skips_naming_the_targets_file_key() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"add \[targets\.acc21\.roles\.domain-admin\]"):
        _domain_admin(_world({}))
    with pytest.raises(pytest.skip.Exception, match=r"roles\.application-admin\] \(type \"account\""):
        _application_admin(_world({"domain-admin": object()}))
    admin = object()
    assert _domain_admin(_world({"domain-admin": admin})) is admin

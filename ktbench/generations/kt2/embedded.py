"""The embedded KT2 target as the suite wants it: the reference voorziening on loopback https, trusting the
bench's test CA, with timers short enough to watch.

KT2 wants https where it matters (subscription endpoints, launch URLs, JWKS URIs), so the bench makes a
throw-away CA for the run (simulators.common.tls), serves the voorziening with a certificate from it, hands
the voorziening the CA as `trusted_ca_file` (so it can fetch the bench applications' JWKS and deliver
notifications to them) and hands the same CA to the bench's HTTP client through the target's TLS settings.
The pytest workers serve their simulated applications with the second certificate (`actors_tls_*`).

Short timers (access tokens of 3 s with 1 s leeway) let the suite watch a token expire; every other setting is
the shipped default data.  No application is pre-registered: the suite registers its own through the domain
admin (roles application-admin, domain-admin and other-domain-admin), as a vendor would.  The shipped data's
throw-away application admin `ktbench-lockout` (role lockout-account) is the one the lock-out scenario may
block: the accounts the bench registers its applications with are never put at risk.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktbench.targets.model import AccountCredential, Secret, Target, TlsSettings
from ktbench.targets.writer import dumps

DOMAIN = "ktbench-alpha"
OTHER_DOMAIN = "ktbench-beta"
BENCH_TOKEN_SECONDS = 3
BENCH_SKEW_SECONDS = 1
# role -> admin account of the shipped data
ADMIN_ROLES = {"application-admin": "vendor-admin", "domain-admin": "alpha-admin", "other-domain-admin": "beta-admin",
               "lockout-account": "ktbench-lockout"}
IDP_USER = ("jan.jansen", "jan.jansen@ktbench.test")


@dataclass
class Kt2BenchServer:
    target: Target
    server: Any
    data_file: Path


def default_raw_data() -> dict[str, Any]:
    from simulators.kt2.data import default_data_path

    return tomllib.loads(default_data_path().read_text(encoding="utf-8"))


def admin_roles(raw: dict[str, Any]) -> dict[str, AccountCredential]:
    """The admin accounts of a data file that the suite uses, as account credentials by role."""
    accounts = {a["username"]: a for a in raw.get("admins", [])}
    roles = {}
    for role, username in ADMIN_ROLES.items():
        account = accounts.get(username)
        if account is not None:
            roles[role] = AccountCredential(role=role, username=username, password=Secret(account["password"]))
    return roles


def bench_data(trusted_ca: Path | None) -> dict[str, Any]:
    raw = default_raw_data()
    server = dict(raw.get("server") or {})
    server.update(access_token_seconds=BENCH_TOKEN_SECONDS, clock_skew_seconds=BENCH_SKEW_SECONDS,
                  notification_attempts=2, notification_backoff_seconds=0.1)
    if trusted_ca is not None:
        server["trusted_ca_file"] = str(trusted_ca)
    raw["server"] = server
    return raw


@contextmanager
def running_kt2_bench(*, faults: Sequence[str] = (), workdir: Path, name: str = "embedded",
                      db: str | None = None) -> Iterator[Kt2BenchServer]:
    from ktbench.generations.kt2.settings import Kt2Settings
    from simulators.common.host import ServerTls
    from simulators.common.tls import TestCertificateAuthority
    from simulators.kt2 import urls
    from simulators.kt2.data import load_data
    from simulators.kt2.embedded import running_kt2_server

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ca = TestCertificateAuthority(workdir / "ca")
    server_cert = ca.server_certificate("voorziening")
    actors_cert = ca.server_certificate("actors")
    raw = bench_data(ca.ca_file)
    data_file = workdir / "kt2-bench-data.toml"
    data_file.write_text(dumps(raw, "written by ktbench for one run of the KT2 suite"), encoding="utf-8")
    data = load_data(data_file)
    database = db or str(workdir / "kt2.sqlite3")
    with running_kt2_server(data, db=database, faults=tuple(faults),
                            tls=ServerTls(server_cert.cert_file, server_cert.key_file)) as server:
        root = server.url
        settings = Kt2Settings(
            domain=DOMAIN, other_domain=OTHER_DOMAIN, other_domain_fhir_base=urls.fhir_base(root, OTHER_DOMAIN),
            admin_api=urls.management_api(root), actors_tls_cert=actors_cert.cert_file,
            actors_tls_key=actors_cert.key_file, idp_username=IDP_USER[0], idp_user_identifier=IDP_USER[1],
            access_token_seconds=BENCH_TOKEN_SECONDS, clock_skew_seconds=BENCH_SKEW_SECONDS,
            notification_timeout_seconds=5.0,
            audit_delay_seconds=0.5)   # the reference stores queued AuditEvents before any AuditEvent read answers
        target = Target(name=name, kind="kt2-server", url=urls.fhir_base(root, DOMAIN), embedded=True,
                        description="ktbench embedded KT2 reference voorziening (https, bench timers)",
                        tls=TlsSettings(ca_file=ca.ca_file), settings=settings, roles=admin_roles(raw))
        yield Kt2BenchServer(target=target, server=server, data_file=data_file)

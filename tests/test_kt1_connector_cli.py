"""The KT1.3 reference server driven by the `koppeltaal` console script of the public Python connector.

Why: the command line is how people poke a Koppeltaal server by hand, and it
only talks to servers it finds in ~/.koppeltaal.cfg with an https URL
(`utils.get_credentials_from_file` refuses anything else).  So the server is
served over HTTPS with a throw-away certificate authority made at test time
(never stored in the repo), HOME points at a temporary configuration, and
REQUESTS_CA_BUNDLE makes `requests` trust that authority.  Every command runs
as a real subprocess; the assertions read its output.

Credentials go in the file only: passing --username on the command line makes
the connector crash (its `get_credentials` returns a plain tuple where a
Credentials object is needed), a connector bug we do not exercise.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from faker import Faker

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # koppeltaal imports the deprecated pkg_resources
    pytest.importorskip("koppeltaal", reason="the koppeltaal connector (extra 'test') is not installed")
    from koppeltaal import connector  # first: importing koppeltaal.codes on its own hits an import circle
    from koppeltaal import models, utils

from simulators.kt1.embedded import running_kt1_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:koppeltaal")

CLI = Path(sys.executable).with_name("koppeltaal")
DOMAIN = "ktbench-alpha"
SENDER_URL = "https://module.ktbench.test/fhir/Koppeltaal"
PORTAL_URL = "https://portal.ktbench.test/fhir/Koppeltaal"
CLAIM_TIMEOUT = 1.0


# --------------------------------------------------------------------------------------------------
# A throw-away certificate authority and a server certificate for 127.0.0.1
# --------------------------------------------------------------------------------------------------
def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) as PEM files in `directory`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = {"not_valid_before": now - datetime.timedelta(minutes=5),
             "not_valid_after": now + datetime.timedelta(days=1)}

    def usage(*, signs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, key_cert_sign=signs, crl_sign=signs, content_commitment=False,
                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                             encipher_only=False, decipher_only=False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ktbench throw-away test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(usage(signs=True), critical=True)
               .add_extension(ca_ski, critical=False)
               .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(signs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))

    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


# --------------------------------------------------------------------------------------------------
# The server, its configuration file and seeded messages
# --------------------------------------------------------------------------------------------------
class _Integration(connector.Integration):
    """Stable model ids (the connector's default `id(model)` is not)."""

    def __init__(self, fake: Faker, url: str) -> None:
        super().__init__(name="ktbench connector", url=url, software="ktbench", version="0.1")
        self._fake = fake

    def model_id(self, model: object) -> str:
        if getattr(model, "_ktbench_id", None) is None:
            model._ktbench_id = self._fake.uuid4()  # type: ignore[attr-defined]
        return model._ktbench_id  # type: ignore[attr-defined]


@dataclass
class CliWorld:
    url: str
    home: Path
    ca_file: Path
    alice: str            # patient links of the seeded care plans
    bob: str
    fake: Faker

    def run(self, section: str, *args: str, ca_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        trusted = str(ca_file or self.ca_file)
        env = {**os.environ, "HOME": str(self.home), "REQUESTS_CA_BUNDLE": trusted, "CURL_CA_BUNDLE": trusted,
               "NO_PROXY": "127.0.0.1,localhost", "PYTHONWARNINGS": "ignore"}
        return subprocess.run([str(CLI), section, *args], env=env, capture_output=True, text=True, timeout=60,
                              check=False)

    def ok(self, section: str, *args: str) -> str:
        done = self.run(section, *args)
        assert done.returncode == 0, f"koppeltaal {section} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    def connect(self, username: str, password: str, app_url: str) -> connector.Connector:
        conn = connector.Connector(utils.Credentials(self.url, username, password, DOMAIN, {}),
                                   _Integration(self.fake, app_url))
        # requests lets REQUESTS_CA_BUNDLE from the environment win over Session.verify unless trust_env is off
        conn.transport.session.trust_env = False
        conn.transport.session.verify = str(self.ca_file)
        return conn


def _careplan(fake: Faker, patient: models.Patient, practitioner: models.Practitioner) -> models.CarePlan:
    activity = models.Activity(
        identifier="act-" + fake.uuid4(), definition="ktbench-game-1", kind="Game", status="Available",
        planned=datetime.datetime(2024, 3, 1, 9, 0, tzinfo=utils.utc),
        participants=[models.Participant(member=practitioner, role="Caregiver")])
    return models.CarePlan(activities=[activity], patient=patient, status="active",
                           participants=[models.Participant(member=practitioner, role="Supervisor")])


def _person(fake: Faker, cls):
    name = models.Name(given=[fake.first_name()], family=[fake.last_name()])
    return cls(name=[name]) if cls is models.Patient else cls(name=name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliWorld]:
    if not CLI.exists():
        pytest.skip(f"the koppeltaal console script is not installed next to {sys.executable}")
    home = tmp_path_factory.mktemp("home")
    ca_file, cert_file, key_file = make_tls_files(tmp_path_factory.mktemp("tls"))
    fake = Faker("nl_NL")
    fake.seed_instance(1305)
    with running_kt1_server(claim_timeout=CLAIM_TIMEOUT, ssl_certfile=cert_file, ssl_keyfile=key_file) as srv:
        # One section per application: the CLI's "server" argument only names a section.
        (home / ".koppeltaal.cfg").write_text(
            f"[portal]\nurl = {srv.url}\nusername = ktbench-portal\npassword = portal-secret\ndomain = {DOMAIN}\n\n"
            f"[module]\nurl = {srv.url}\nusername = ktbench-module\npassword = module-secret\ndomain = {DOMAIN}\n")
        built = CliWorld(srv.url, home, ca_file, "", "", fake)
        # The module sends; the portal (all events) and the module itself (subscribed) each get 3 messages.
        sender = built.connect("ktbench-module", "module-secret", SENDER_URL)
        practitioner = _person(fake, models.Practitioner)
        alice, bob = _person(fake, models.Patient), _person(fake, models.Patient)
        sender.send("CreateOrUpdateCarePlan", _careplan(fake, alice, practitioner), alice)
        sender.send("CreateOrUpdateCarePlan", _careplan(fake, bob, practitioner), bob)
        sender.send("CreateOrUpdatePractitioner", _person(fake, models.Practitioner))
        sender.close()
        built.alice, built.bob = alice.fhir_link, bob.fhir_link
        # The portal fails its practitioner message, so its mailbox holds New and Failed messages.
        portal = built.connect("ktbench-portal", "portal-secret", PORTAL_URL)
        for update in portal.updates(event="CreateOrUpdatePractitioner"):
            with update:
                update.fail("ktbench: not now")
        portal.close()
        yield built


def blocks(output: str, title: str) -> list[dict[str, str]]:
    """Parse the console's `Title: value` + `- key: value` blocks."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in output.splitlines():
        if line.startswith(title + ":"):
            current = {"": line[len(title) + 1:].strip()}
            found.append(current)
        elif line.startswith("- ") and current is not None and ": " in line:
            key, _, value = line[2:].partition(": ")
            current[key] = value
        elif line.strip():
            current = None                  # another model's block begins
    return found


# --------------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------------
def test_cli_metadata_over_https(world):
    conformance = json.loads(world.ok("portal", "metadata"))
    assert (conformance["name"], conformance["fhirVersion"]) == ("Koppeltaal", "0.0.82")
    assert conformance["version"] >= "v1.0"
    assert conformance["messaging"][0]["endpoint"] == world.url + "/FHIR/Koppeltaal/Mailbox"


def test_cli_refuses_an_untrusted_certificate(world, tmp_path):
    other_ca, _, _ = make_tls_files(tmp_path)                          # a CA that did not sign the server
    done = world.run("portal", "metadata", ca_file=other_ca)
    assert done.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in done.stdout + done.stderr   # the https really is verified


def test_cli_activities(world):
    activities = {b[""]: b for b in blocks(world.ok("portal", "activities"), "Activity")}
    assert set(activities) == {"ktbench-game-1", "ktbench-elearning-1"}     # archived ones are hidden
    game = activities["ktbench-game-1"]
    assert (game["name"], game["kind"], game["archived"], game["active"]) == ("Mood Quest", "Game", "False", "True")
    assert game["fhir link"].startswith(world.url + "/FHIR/Koppeltaal/Other/ActivityDefinition:")


def test_cli_messages_with_filters(world):
    everything = blocks(world.ok("portal", "messages"), "Message")
    assert sorted(m["event"] for m in everything) == ["CreateOrUpdateCarePlan", "CreateOrUpdateCarePlan",
                                                      "CreateOrUpdatePractitioner"]
    assert {m["endpoint"] for m in everything} == {SENDER_URL}
    assert all(m["fhir link"].startswith(world.url + "/FHIR/Koppeltaal/MessageHeader/") for m in everything)

    of_alice = blocks(world.ok("portal", "messages", "--patient", world.alice), "Message")
    assert [m["event"] for m in of_alice] == ["CreateOrUpdateCarePlan"]
    failed = blocks(world.ok("portal", "messages", "--status", "Failed"), "Message")
    assert [m["event"] for m in failed] == ["CreateOrUpdatePractitioner"]
    assert len(blocks(world.ok("portal", "messages", "--status", "New"), "Message")) == 2
    careplans = blocks(world.ok("portal", "messages", "--event", "CreateOrUpdateCarePlan"), "Message")
    assert len(careplans) == 2
    paged = blocks(world.ok("portal", "messages", "--batch-size", "1", "--batch-count", "2"), "Message")
    assert len(paged) == 2


def test_cli_message_by_id_and_by_url(world):
    header = blocks(world.ok("portal", "messages", "--patient", world.bob), "Message")[0]
    bare_id = utils.strip_history_from_link(header["fhir link"]).rsplit("/", 1)[-1]
    for message_id in (bare_id, header["fhir link"]):
        output = world.ok("portal", "message", message_id)
        assert [m[""] for m in blocks(output, "Message")] == [header[""]]
        careplans = blocks(output, "CarePlan")
        assert len(careplans) == 1 and "/CarePlan/" in careplans[0]["fhir link"]
        patients = blocks(output, "Patient")
        assert [utils.strip_history_from_link(p["fhir link"]) for p in patients] == [world.bob]
        assert len(blocks(output, "Practitioner")) == 1


def test_cli_updates_claims_acks_and_fails(world):
    module = world.connect("ktbench-module", "module-secret", SENDER_URL)  # only searches

    def status() -> dict[str, tuple[str, str | None]]:
        return {m.event + ("" if m.patient is None else "@" + utils.strip_history_from_link(m.patient.fhir_link)):
                (m.status.status, m.status.exception) for m in module.search()}

    first = world.ok("module", "updates")
    assert len(blocks(first, "CarePlan")) == 1                      # processes the oldest message only ...
    after_first = status()
    assert after_first[f"CreateOrUpdateCarePlan@{world.alice}"] == ("Success", None)
    # ... but, a connector quirk, it has already claimed the next one and leaves it Claimed (postpone)
    assert after_first[f"CreateOrUpdateCarePlan@{world.bob}"] == ("Claimed", None)
    assert after_first["CreateOrUpdatePractitioner"] == ("New", None)

    time.sleep(CLAIM_TIMEOUT + 0.2)                                 # the server hands the claim back
    rest = world.ok("module", "updates", "--all", "--failure", "ktbench: rejected by hand")
    assert len(blocks(rest, "CarePlan")) == 1 and len(blocks(rest, "Practitioner")) == 1
    final = status()
    assert final[f"CreateOrUpdateCarePlan@{world.bob}"] == ("Failed", "ktbench: rejected by hand")
    assert final["CreateOrUpdatePractitioner"] == ("Failed", "ktbench: rejected by hand")
    assert world.ok("module", "updates").strip() == ""                # nothing New is left
    module.close()


def test_cli_launch(world):
    user = "https://portal.ktbench.test/fhir/Koppeltaal/Practitioner/7"
    location = world.ok("portal", "launch", user, "ktbench-module", world.alice, "--activity", "act-1").strip()
    assert location.startswith("http://127.0.0.1:9/module/launch?")
    query = parse_qs(urlsplit(location).query)
    assert query["iss"] == [world.url + "/FHIR/Koppeltaal"]
    assert query["application_id"] == ["ktbench-module"]
    assert query["launch_id"] == query["launch"]

    unknown = world.run("portal", "launch", user, "no-such-app", world.alice)
    assert unknown.returncode != 0                                   # the server refused with a 400
    assert "ConnectionError" in unknown.stderr                       # (the connector expects a redirect)

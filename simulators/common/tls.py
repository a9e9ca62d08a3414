"""A throw-away certificate authority for loopback HTTPS and mTLS, made at run time.

KT2 requires https for subscription endpoints and launch URLs, and mTLS-protected targets need a client
certificate; the bench serves its own simulators on 127.0.0.1 with certificates from this CA and hands the
CA file to whoever must trust them.  Nothing here is meant to be secure beyond one run.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class IssuedCertificate:
    cert_file: Path
    key_file: Path


class TestCertificateAuthority:
    """`ca = TestCertificateAuthority(directory)`; `ca.server_certificate()`; `ca.client_certificate(name)`."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, directory: str | Path, name: str = "ktbench throw-away test CA") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._ski = x509.SubjectKeyIdentifier.from_public_key(self._key.public_key())
        now = datetime.datetime.now(datetime.UTC)
        self._not_before = now - datetime.timedelta(minutes=5)
        self._not_after = now + datetime.timedelta(days=2)
        cert = (x509.CertificateBuilder()
                .subject_name(self._name).issuer_name(self._name).public_key(self._key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self._not_before).not_valid_after(self._not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(_usage(signs=True), critical=True)
                .add_extension(self._ski, critical=False)
                .sign(self._key, hashes.SHA256()))
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def server_certificate(self, stem: str = "server") -> IssuedCertificate:
        """A certificate for 127.0.0.1 and localhost."""
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID

        names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                             x509.DNSName("localhost")])
        return self._issue(stem, "127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, names)

    def client_certificate(self, common_name: str, stem: str | None = None) -> IssuedCertificate:
        """A client certificate for mTLS, naming `common_name`."""
        from cryptography.x509.oid import ExtendedKeyUsageOID

        return self._issue(stem or f"client-{common_name}", common_name, ExtendedKeyUsageOID.CLIENT_AUTH, None)

    def _issue(self, stem: str, common_name: str, purpose, names) -> IssuedCertificate:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self._name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(self._not_before).not_valid_after(self._not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_usage(signs=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self._ski),
                                  critical=False))
        if names is not None:
            builder = builder.add_extension(names, critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        cert_file, key_file = self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_file.chmod(0o600)
        return IssuedCertificate(cert_file, key_file)


def _usage(*, signs: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=True, key_cert_sign=signs, crl_sign=signs, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         encipher_only=False, decipher_only=False)

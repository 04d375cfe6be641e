"""Throw-away TLS material for tests: a CA, a server and a client certificate, made offline.

Everything is generated with ``cryptography`` (no network, no ``openssl`` command line) using
EC P-256 keys, which take milliseconds. The server certificate names ``localhost``,
``127.0.0.1`` and ``::1`` in its subjectAltName, because Pyro4's client checks the host name
it connected to (``ssl.create_default_context`` with ``server_hostname=<uri host>``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestPKI", "make_pki"]


@dataclass
class TestPKI:
    """File names (PEM) of a freshly made CA, server and client, and a few facts to check."""

    directory: str
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    client_serial: int
    client_subject: dict[str, str]
    ca_subject: dict[str, str]

    __test__ = False  # not a pytest test class, despite the name


def _name(**attributes: str) -> x509.Name:
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
    }
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes.items()])


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as file:
        file.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           issuer_key: ec.EllipticCurvePrivateKey, serial: int, *, ca: bool = False,
           sans: list[x509.GeneralName] | None = None,
           usage: x509.ObjectIdentifier | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: str) -> TestPKI:
    """Write ``ca.pem``, ``server.pem``/``server.key`` and ``client.pem``/``client.key``."""
    curve = ec.SECP256R1()
    ca_key, server_key, client_key = (ec.generate_private_key(curve) for _ in range(3))
    ca_name = _name(C="NL", O="twisted-pyro tests", CN="twisted-pyro test CA")
    ca = _issue(ca_name, ca_key, ca_name, ca_key, x509.random_serial_number(), ca=True)
    server = _issue(
        _name(C="NL", O="twisted-pyro tests", OU="server", CN="localhost"), server_key, ca_name,
        ca_key, x509.random_serial_number(),
        sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
              x509.IPAddress(ipaddress.ip_address("::1"))],
        usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_serial = x509.random_serial_number()
    client = _issue(
        _name(C="NL", O="Razorvine.net", OU="Pyro4", CN="pyro client"), client_key, ca_name,
        ca_key, client_serial, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    join = os.path.join
    return TestPKI(
        directory=directory,
        ca_cert=_write(join(directory, "ca.pem"), ca.public_bytes(pem)),
        server_cert=_write(join(directory, "server.pem"), server.public_bytes(pem)),
        server_key=_write(join(directory, "server.key"), _key_pem(server_key)),
        client_cert=_write(join(directory, "client.pem"), client.public_bytes(pem)),
        client_key=_write(join(directory, "client.key"), _key_pem(client_key)),
        client_serial=client_serial,
        client_subject={"countryName": "NL", "organizationName": "Razorvine.net",
                        "organizationalUnitName": "Pyro4", "commonName": "pyro client"},
        ca_subject={"countryName": "NL", "organizationName": "twisted-pyro tests",
                    "commonName": "twisted-pyro test CA"},
    )

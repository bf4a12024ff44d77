"""The lab's TLS: a lab CA and one server certificate per load balancer, kept in .lab/tls/.

`invoke lab.up` calls `ensure_tls` with the hosts of the lab's `lb` group. Files (keys 0600):
`ca.crt`, `ca.key`, `<host>.crt`, `<host>.key`; a server certificate's subject alternative
names are the host's name and its ansible_host address. What is still good is kept, so a
converge after a second `lab.up` changes nothing; a file is made again when it is missing
or unreadable, expires within RENEW_DAYS, or (a server certificate) names other SANs, was
not signed by the current CA, or does not match its key. The loadbalancer role installs
them (inventories/lab/group_vars/lb/tls.yml); clients verify with ca.crt.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from slakit.lab.keys import STATE_DIR

TLS_DIR = STATE_DIR / "tls"
RENEW_DAYS = 30  # made again when it expires within this many days
CA_DAYS = 3650
SERVER_DAYS = 397  # the longest lifetime browsers accept for a server certificate
CA_NAME = "slakit lab CA"

Key = ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` with `data`, created with `mode` (never readable by others meanwhile)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Key] | None:
    """The certificate and its key, or None when either is missing, unreadable or mismatched."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return None
    return cert, key


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS)


def server_names(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses of a certificate's subject alternative names."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in sans.get_values_for_type(x509.DNSName)} | {
        str(a) for a in sans.get_values_for_type(x509.IPAddress)
    }


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _builder(subject: str, issuer: x509.Name, key: Key, now: dt.datetime, days: int):
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    cert = (
        _builder(CA_NAME, name, key, now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _alt_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def _make_server(
    names: list[str], ca: x509.Certificate, ca_key: Key, now: dt.datetime
) -> tuple[x509.Certificate, Key]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(names[0], ca.subject, key, now, SERVER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _store(directory: Path, stem: str, cert: x509.Certificate, key: Key) -> list[str]:
    _write(directory / f"{stem}.key", _key_pem(key), 0o600)
    _write(directory / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return [f"{stem}.crt", f"{stem}.key"]


def ensure_tls(
    hosts: dict[str, str], directory: Path = TLS_DIR, now: dt.datetime | None = None
) -> list[str]:
    """Make what is missing or stale for `hosts` ({name: address}); returns the files written."""
    now = now or _now()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: list[str] = []
    ca_pair = _load(directory / "ca.crt", directory / "ca.key")
    if ca_pair is None or not _fresh(ca_pair[0], now):
        ca_pair = _make_ca(now)
        written += _store(directory, "ca", *ca_pair)
    ca, ca_key = ca_pair
    for name, address in sorted(hosts.items()):
        names = list(dict.fromkeys([name, address]))
        have = _load(directory / f"{name}.crt", directory / f"{name}.key")
        if (
            have is None
            or not _fresh(have[0], now)
            or server_names(have[0]) != {str(_alt_name(n).value) for n in names}
            or not _signed_by(have[0], ca)
        ):
            written += _store(directory, name, *_make_server(names, ca, ca_key, now))
    return written

"""A throwaway PKI for TLS tests, made by the lab's own generator (slakit/lab/tls.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slakit.lab.tls import ensure_tls


@dataclass(frozen=True)
class Pki:
    ca: str  # the CA that signed both server certificates
    rogue_ca: str  # a CA that signed nothing here
    cert: str  # server certificate: 127.0.0.1 and localhost
    key: str
    other_cert: str  # server certificate for another host (192.0.2.10 and its name)
    other_key: str
    not_pem: str


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, one for another
    address, a CA that signed nothing here, and a file that is not PEM, all under d."""
    ensure_tls({"localhost": "127.0.0.1", "other": "192.0.2.10"}, d / "pki")
    ensure_tls({}, d / "rogue")
    (d / "not.pem").write_text("not a certificate\n")
    return Pki(
        ca=str(d / "pki/ca.crt"),
        rogue_ca=str(d / "rogue/ca.crt"),
        cert=str(d / "pki/localhost.crt"),
        key=str(d / "pki/localhost.key"),
        other_cert=str(d / "pki/other.crt"),
        other_key=str(d / "pki/other.key"),
        not_pem=str(d / "not.pem"),
    )

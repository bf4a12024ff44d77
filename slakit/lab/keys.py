"""The lab's SSH identity and the host keys it trusts, kept in .lab/ (git-ignored)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

STATE_DIR = Path(".lab")
PRIVATE_KEY = STATE_DIR / "id_ed25519"
PUBLIC_KEY = STATE_DIR / "id_ed25519.pub"
KNOWN_HOSTS = STATE_DIR / "known_hosts"
# The shared SSH connections testinfra's commands reuse (ControlPath in the lab inventory's
# connection.yml): one handshake per host instead of one per command, 0.22 -> 0.015 s a command.
CONTROL_SOCKETS = "ssh-*"


def ensure_keypair() -> str:
    """The lab's public key, made on first use; the private key is readable by its owner only."""
    if not PRIVATE_KEY.exists() or not PUBLIC_KEY.exists():
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        fd = os.open(PRIVATE_KEY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        PUBLIC_KEY.write_bytes(public + b" slakit-lab\n")
    return PUBLIC_KEY.read_text().strip()


def write_known_hosts(entries: dict[str, str]) -> None:
    """`entries` maps "name,address" to the host's public key line ("ssh-ed25519 AAAA...")."""
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    lines = [f"{names} {key}\n" for names, key in sorted(entries.items())]
    KNOWN_HOSTS.write_text("".join(lines))


def forget_connections() -> None:
    """Drop the shared SSH connections: a recreated host has a new sshd behind the same address
    (its old master dies with its container)."""
    for control in STATE_DIR.glob(CONTROL_SOCKETS):
        control.unlink(missing_ok=True)

"""The stack's secrets: generated once for the lab into .lab/secrets.yml (git-ignored, 0600),
or into an ansible-vault file for staging and production (`invoke secrets.vault`).

Both carry the same names (vault files prefix them with `vault_`), so roles see the same
variables in every environment.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slakit.errors import SlakitError
from slakit.lab.keys import STATE_DIR

SECRETS_FILE = STATE_DIR / "secrets.yml"
SLA_USER = "sla-operator"


def _hash_password(password: str) -> str:
    """The service's own password hash (scrypt), made by its CLI so the format has one owner.
    It runs from the checkout (editable install): no bytecode written into service/src."""
    run = subprocess.run(
        [sys.executable, "-m", "slakit_service.hashpw"],
        input=password,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    if run.returncode != 0:
        raise SlakitError(f"slakit_service.hashpw failed: {run.stderr.strip()[-200:]}")
    return run.stdout.strip()


def generators() -> dict[str, Callable[[dict[str, Any]], Any]]:
    """How to make each secret; a later one may use an earlier one's value."""
    return {
        "redis_app_password": lambda _: secrets.token_urlsafe(32),
        "redis_admin_password": lambda _: secrets.token_urlsafe(32),
        "redis_exporter_password": lambda _: secrets.token_urlsafe(32),
        "redis_replication_password": lambda _: secrets.token_urlsafe(32),
        "redis_sentinel_auth_password": lambda _: secrets.token_urlsafe(32),
        "redis_sentinel_password": lambda _: secrets.token_urlsafe(32),
        "app_token_secret": lambda _: secrets.token_urlsafe(48),
        "sla_username": lambda _: SLA_USER,
        "sla_password": lambda _: secrets.token_urlsafe(24),
        "app_users": lambda made: {
            made["sla_username"]: {
                "password_hash": _hash_password(made["sla_password"]),
                "roles": ["operator"],
            }
        },
    }


def complete(current: dict[str, Any]) -> list[str]:
    """Generate every secret missing from `current` (in place); returns their names."""
    missing = [key for key in generators() if key not in current]
    for key in missing:
        current[key] = generators()[key](current)
    return missing


def ensure_secrets(path: Path = SECRETS_FILE) -> dict[str, Any]:
    """The lab's secrets; any that are missing are generated and kept (0600)."""
    current: dict[str, Any] = yaml.safe_load(path.read_text()) if path.exists() else {}
    if complete(current):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(current, out, sort_keys=True)
    return current

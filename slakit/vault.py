"""Vault files for staging and production: the same secrets as the lab, ansible-vault encrypted."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from slakit.ansible import BIN, command_env
from slakit.envs import Environment, vault_password_file
from slakit.errors import SlakitError
from slakit.secrets import complete

PREFIX = "vault_"


def vault_path(env: Environment) -> Path:
    return env.inventory / "group_vars" / "all" / "vault.yml"


def read(env: Environment) -> dict[str, Any]:
    """The decrypted secrets (names without the vault_ prefix); never printed."""
    path = vault_path(env)
    vault_password_file(env)
    run = subprocess.run(
        [str(BIN / "ansible-vault"), "view", str(path)],
        capture_output=True,
        text=True,
        env=command_env(),
        check=False,
    )
    if run.returncode != 0:
        reason = "wrong vault password" if "ecryption failed" in run.stderr else run.stderr.strip()
        raise SlakitError(f"{path}: {reason.splitlines()[-1] if reason else 'cannot decrypt'}")
    data = yaml.safe_load(run.stdout) or {}
    return {k.removeprefix(PREFIX): v for k, v in data.items()}


def create(env: Environment, password_file: Path) -> Path:
    """Write a fresh vault file with every secret generated, encrypted with password_file."""
    path = vault_path(env)
    if path.exists():
        raise SlakitError(f"{path} exists: edit it with `ansible-vault edit {path}`")
    values: dict[str, Any] = {}
    complete(values)
    plain = yaml.safe_dump({PREFIX + k: v for k, v in values.items()}, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password_file),
            "--output",
            str(path),
            "-",
        ],
        input="---\n" + plain,
        capture_output=True,
        text=True,
        # the password file is given once, as the flag: twice is two "default" vault ids
        env={k: v for k, v in command_env().items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"},
        check=False,
    )
    if run.returncode != 0:
        raise SlakitError(f"ansible-vault encrypt failed: {run.stderr.strip()[-200:]}")
    return path

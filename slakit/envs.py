"""Environments are inventories: `inventories/<env>/hosts.yml` plus its group_vars."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from slakit.errors import SlakitError
from slakit.yamlfile import parse

INVENTORIES = Path("inventories")
VAULT_HEADER = "$ANSIBLE_VAULT"
REQUIRED_GROUPS = ("lb", "app", "redis")
ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Environment:
    name: str
    inventory: Path

    @property
    def is_lab(self) -> bool:
        return self.name == "lab"

    @property
    def reports_dir(self) -> Path:
        return Path("reports") / self.name

    def vault_files(self) -> list[Path]:
        return [p for p in self.yaml_files() if p.read_text().startswith(VAULT_HEADER)]

    def yaml_files(self) -> list[Path]:
        return sorted(
            p for p in self.inventory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()
        )


def known() -> list[str]:
    return sorted(p.parent.name for p in INVENTORIES.glob("*/hosts.yml"))


def resolve(name: str) -> Environment:
    if not ENV_NAME.fullmatch(name):
        raise SlakitError(
            f"env {name!r}: an environment is a folder name under {INVENTORIES}/ "
            "(letters, digits, '-', '_'; no path separators or '..')"
        )
    env = Environment(name, INVENTORIES / name)
    if env.inventory.is_dir() and not (env.inventory / "hosts.yml").is_file():
        raise SlakitError(f"{env.inventory}: no hosts.yml in the inventory folder")
    if not (env.inventory / "hosts.yml").is_file():
        raise SlakitError(
            f"unknown env {name!r}: no {env.inventory}/hosts.yml (known: {', '.join(known())})"
        )
    return env


def check_yaml(env: Environment) -> None:
    """Every plain YAML file of the inventory parses; the error names the file and line."""
    for path in env.yaml_files():
        text = path.read_text()
        if text.startswith(VAULT_HEADER):
            continue
        parse(text, path)


def vault_password_file(env: Environment) -> Path | None:
    """The vault password file Ansible will use, required when the inventory has vault files."""
    vaults = env.vault_files()
    if not vaults:
        return None
    configured = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", "")
    if not configured:
        raise SlakitError(
            f"{vaults[0]} is vault-encrypted: set ANSIBLE_VAULT_PASSWORD_FILE to the file holding "
            f"the {env.name} vault password"
        )
    if not Path(configured).is_file():
        raise SlakitError(f"ANSIBLE_VAULT_PASSWORD_FILE={configured}: no such file")
    return Path(configured)

"""`invoke secrets.*`: make the vault file of a real environment."""

from __future__ import annotations

import os
from pathlib import Path

from invoke import Collection

from slakit import envs
from slakit import vault as vault_files
from slakit.errors import SlakitError
from slakit.secret_checks import check_password_file
from slakit.tasks import task


@task(help={"env": "environment whose group_vars/all/vault.yml to create (not lab)"})
def vault(c, env):
    """Generate every secret into a new vault file, encrypted with ANSIBLE_VAULT_PASSWORD_FILE."""
    environment = envs.resolve(env)
    if environment.is_lab:
        raise SlakitError("the lab makes its own secrets in .lab/secrets.yml")
    password_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", "")
    if not password_file or not Path(password_file).is_file():
        raise SlakitError("set ANSIBLE_VAULT_PASSWORD_FILE to the file holding the vault password")
    check_password_file(Path(password_file))  # owner-only, not a published example password
    print(f"wrote {vault_files.create(environment, Path(password_file))}")


ns = Collection("secrets", vault)

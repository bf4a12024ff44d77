"""Credentials the checks use against a deployed stack (the SLA operator user).

Taken from SLAKIT_SLA_USERNAME / SLAKIT_SLA_PASSWORD when set (a CI secret store), else
from the environment's own secrets: .lab/secrets.yml for the lab, the vault file otherwise.
They are passed to checks in the process environment, never in argv or reports.
"""

from __future__ import annotations

import os

from slakit import vault
from slakit.envs import Environment
from slakit.secrets import ensure_secrets

USERNAME_ENV = "SLAKIT_SLA_USERNAME"
PASSWORD_ENV = "SLAKIT_SLA_PASSWORD"


def sla_credentials(env: Environment) -> dict[str, str]:
    if os.environ.get(USERNAME_ENV) and os.environ.get(PASSWORD_ENV):
        return {USERNAME_ENV: os.environ[USERNAME_ENV], PASSWORD_ENV: os.environ[PASSWORD_ENV]}
    values = ensure_secrets() if env.is_lab else vault.read(env)
    return {USERNAME_ENV: str(values["sla_username"]), PASSWORD_ENV: str(values["sla_password"])}


def export(env: Environment) -> None:
    """Put the credentials into this process's environment for the checks it runs."""
    os.environ.update(sla_credentials(env))

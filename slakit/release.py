"""Releases of the app on the app hosts: roll back, deploy a given source, read what runs.

The work is Ansible's (playbooks/app.yml, playbooks/rollback.yml, role `app`); this module
only runs those playbooks for an environment and turns a failure into one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slakit import ansible, envs
from slakit.errors import SlakitError


def _run(
    env_name: str,
    playbook: str,
    what: str,
    *,
    limit: str = "",
    extra_vars: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> ansible.PlayResult:
    env = envs.resolve(env_name)
    envs.vault_password_file(env)  # a clear line when a vault file has no password
    extra: tuple[str, ...] = ()
    tmp: str | None = None
    if extra_vars:
        # A file, never argv: values may be long or sensitive.
        fd, tmp = tempfile.mkstemp(prefix="slakit-vars-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(dict(extra_vars), out)
        extra = ("-e", f"@{tmp}")
    try:
        result = ansible.playbook(env, playbook, limit=limit, extra_args=extra, quiet=quiet)
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    if result.returncode != 0:
        raise SlakitError(f"{what} on {env.name} failed: {result.first_failure()}", exit_code=1)
    return result


def rollback(env_name: str = "lab", limit: str = "", quiet: bool = False) -> ansible.PlayResult:
    """Switch `current` back to the previously activated release on every app host (or the
    hosts of `limit`), one at a time behind the load balancer; the release left is deleted.

    Raises SlakitError (exit code 1) with the first failure, e.g. no previous release.
    """
    return _run(env_name, "rollback.yml", "rollback", limit=limit, quiet=quiet)


def deploy_app(
    env_name: str = "lab",
    sources: Sequence[str | Path] = (),
    extra_vars: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> ansible.PlayResult:
    """Run playbooks/app.yml; `sources` (project dirs or wheels) replace app_sources."""
    extra = dict(extra_vars or {})
    if sources:
        extra["app_sources"] = [str(Path(s).resolve()) for s in sources]
    return _run(env_name, "app.yml", "app deploy", extra_vars=extra, quiet=quiet)

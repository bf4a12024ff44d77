"""Preflight: everything that can be known wrong before any host is touched.

Checks, in order: the environment exists, its YAML parses, the secrets' files (a vault for
staging/production, not an example one; its password file private), the vault password is
there and right, the groups the stack needs are present, the secrets' values as Ansible
resolves them on the controller (not examples, strong, well-formed: slakit/secret_checks.py),
and `site.yml --tags preflight`: the checks across roles and hosts (playbooks/preflight.yml),
role input validation (argument_specs and each role's validation tasks) on every host, which
also proves every host reachable. Those two run at once; a refused secret is reported before a
playbook failure, as if they ran in that order. Any failure is one SlakitError line (exit 2).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slakit import ansible, secret_checks
from slakit.envs import REQUIRED_GROUPS, Environment, check_yaml
from slakit.errors import SlakitError

# Validation without SSH: every host's tasks run on the controller with its own facts.
OFFLINE_ARGS = (
    "-e",
    "ansible_connection=local",
    "-e",
    "ansible_become=false",
    "-e",
    "ansible_python_interpreter={{ ansible_playbook_python }}",
)


def run(
    env: Environment,
    *,
    limit: str = "",
    offline: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
) -> list[str]:
    """Returns what was checked, one line each; raises SlakitError on the first problem.
    `extra_vars` are the ones the run to follow gets (a deploy's): they are checked too."""
    check_yaml(env)
    vault = secret_checks.check_files(env)  # secrets: a vault, not an example, private password
    inventory = ansible.inventory(env)
    for group in REQUIRED_GROUPS:
        if not (inventory.get(group) or {}).get("hosts"):
            raise SlakitError(f"{env.inventory}/hosts.yml: group {group!r} has no hosts")
    hosts = sorted(inventory.get("_meta", {}).get("hostvars", {}))
    # The playbook runs while the secrets are checked (a play of its own on the controller):
    # one after the other they took 4 s + 12 s of an offline preflight. A refused secret is
    # still the one line, and stops the playbook.
    with ThreadPoolExecutor(max_workers=1) as pool, _stopped_on_failure() as started:
        playing = pool.submit(
            ansible.playbook,
            env,
            "site.yml",
            tags="preflight",
            limit=limit,
            quiet=True,
            extra_args=(OFFLINE_ARGS if offline else ()) + ansible.extra_vars_args(extra_vars),
            started=started,
        )
        unresolved = secret_checks.check_values(env, OFFLINE_ARGS)  # strong, well-formed
        result = playing.result()
    if result.returncode != 0:
        raise SlakitError(f"preflight ({env.name}): {result.first_failure()}")
    if unresolved:  # the role checks did not trip on them (outside --limit): still refused
        raise SlakitError(f"preflight ({env.name}): the secrets of {unresolved[0]} do not resolve")
    reach = "not contacted (offline)" if offline else f"{len(hosts)}/{len(hosts)} reachable"
    return [
        f"inventory {env.inventory}: {len(hosts)} hosts, groups {', '.join(REQUIRED_GROUPS)}",
        "secrets: "
        + (
            f"vault {', '.join(map(str, env.vault_files()))} (password file {vault})"
            if vault
            else "lab-generated (.lab/secrets.yml)"
        )
        + "; none an example or placeholder, token strong, users valid",
        f"role inputs valid on every host; hosts {reach}",
    ]


@contextlib.contextmanager
def _stopped_on_failure() -> Iterator[Callable[[subprocess.Popen], None]]:
    """A `started` callback for ansible.playbook: the processes it was given are terminated
    when the block raises (also one that starts after that)."""
    processes: list[subprocess.Popen] = []
    failed = threading.Event()

    def started(process: subprocess.Popen) -> None:
        processes.append(process)
        if failed.is_set():
            process.terminate()

    try:
        yield started
    except BaseException:
        failed.set()
        for process in processes:
            process.terminate()
        raise

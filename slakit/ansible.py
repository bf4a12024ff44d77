"""Running Ansible's own commands for an environment, and reading what they did.

Output streams to the terminal as usual; the slakit_summary callback (plugins/callback)
leaves a JSON summary that becomes one line per failure and the per-host change counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slakit.envs import Environment
from slakit.errors import SlakitError

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
# An inventory that does not parse is an error, never an empty inventory with a warning.
STRICT_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
    "ANSIBLE_FORCE_COLOR": "true",
}


@dataclass
class PlayResult:
    returncode: int
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    changed_tasks: dict[str, list[str]] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    published: dict[str, dict[str, Any]] = field(default_factory=dict)  # set_stats, by host

    def published_by_host(self, name: str) -> dict[str, Any]:
        """{host: value} of a per-host set_stats name (docs/contract.md)."""
        return {h: data[name] for h, data in self.published.items() if name in data}

    @property
    def changed(self) -> int:
        return sum(stats.get("changed", 0) for stats in self.hosts.values())

    def first_failure(self) -> str:
        """The first failed task, on the first of its failed hosts by name: hosts of one task
        finish in any order, and the line must not depend on that."""
        if not self.failures:
            return f"ansible-playbook exited {self.returncode}"
        first = self.failures[0]
        f = min(
            (g for g in self.failures if (g["task"], g["kind"]) == (first["task"], first["kind"])),
            key=lambda g: g["host"],
        )
        if f["kind"] == "unreachable":
            return f"host {f['host']} unreachable: {f['msg']}"
        return f"{f['host']}: {f['task']}: {f['msg']}"


def command_env() -> dict[str, str]:
    return {**os.environ, **STRICT_ENV, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def inventory(env: Environment, limit: str = "") -> dict[str, Any]:
    """`ansible-inventory --list` for the environment (raw variables, vault decrypted)."""
    return list_inventory(env.inventory, limit)


def list_inventory(source: Path | list[Path], limit: str = "") -> dict[str, Any]:
    """`ansible-inventory --list` of inventory files or directories: Ansible's own reader.
    Listed once per state of their files in a process (a deploy lists it for its preflight and
    for every run's forks: about 0.4 s each)."""
    sources = source if isinstance(source, list) else [source]
    key = (_files_state(sources), limit)
    if key not in _listings:
        run = subprocess.run(
            [str(BIN / "ansible-inventory"), *(a for s in sources for a in ("-i", str(s)))]
            + ["--list"]
            + (["--limit", limit] if limit else []),
            capture_output=True,
            text=True,
            env=command_env(),
            check=False,
        )
        if run.returncode != 0:
            raise SlakitError(f"{sources[0]}: {_ansible_error(run.stderr)}")
        _listings[key] = run.stdout
    return json.loads(_listings[key])  # a copy of its own for each caller


_listings: dict[tuple, str] = {}


def _files_state(sources: list[Path]) -> tuple:
    """What an inventory listing depends on: each source, every file of its folder (a file
    source's group_vars and host_vars are beside it) with its modification time and size,
    symlinked folders followed, and the vault password file that decrypts them."""
    files = []
    for source in sources:
        folder = source if source.is_dir() else source.parent
        for top, _, names in sorted(os.walk(folder, followlinks=True)):
            for name in sorted(names):
                path = Path(top, name)
                if path.is_file():
                    stat = path.stat()
                    files.append((str(path), stat.st_mtime_ns, stat.st_size))
    password = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE", "")
    return tuple(map(str, sources)), tuple(files), password


# Forks follow the inventory: one worker per host, so every host of a task runs at once
# (ansible.cfg's forks = 10 would take a 16-host lab in two waves per task), up to FORKS_MAX.
FORKS_MAX = 64


def host_names(listing: dict[str, Any]) -> set[str]:
    """Every host of an `ansible-inventory --list` listing, in any group."""
    return {
        host
        for group, body in listing.items()
        if group != "_meta"
        for host in (body or {}).get("hosts") or []
    } | set(listing.get("_meta", {}).get("hostvars", {}))


def forks_for(inventory: Path) -> int | None:
    """Forks for a run against `inventory`: its host count (1..FORKS_MAX); None (ansible.cfg's
    forks) when the inventory cannot be listed, which the run itself then reports."""
    try:
        hosts = len(host_names(list_inventory(inventory)))
    except SlakitError:
        return None
    return max(1, min(FORKS_MAX, hosts))


def _ansible_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for line in lines:
        low = line.lower()
        if "decryption failed" in low:
            return "vault password is wrong (decryption failed)"
        if "no vault secrets" in low or "vault password" in low:
            return "vault-encrypted variables but no vault password given"
    errors = [ln for ln in lines if "ERROR" in ln]
    return " ".join((errors or lines or ["ansible failed"])[0].split())[:300]


def extra_vars_args(values: Mapping[str, Any] | None) -> tuple[str, ...]:
    """`-e <JSON>` for ansible-playbook (JSON keeps every value's type); none when empty."""
    return ("-e", json.dumps(dict(values))) if values else ()


def playbook(
    env: Environment,
    name: str,
    *,
    tags: str = "",
    skip_tags: str = "",
    limit: str = "",
    check: bool = False,
    diff: bool = False,
    extra_args: tuple[str, ...] = (),
    quiet: bool = False,
    started: Callable[[subprocess.Popen], None] | None = None,
) -> PlayResult:
    """Run playbooks/<name> against the environment; returns its summary, never raises on fail.
    `started` is given the ansible-playbook process as soon as it runs (to stop it early)."""
    with tempfile.NamedTemporaryFile(prefix="slakit-ansible-", suffix=".json") as summary:
        cmd = [str(BIN / "ansible-playbook"), "-i", str(env.inventory), f"playbooks/{name}"]
        cmd += ["--tags", tags] if tags else []
        cmd += ["--skip-tags", skip_tags] if skip_tags else []
        cmd += ["--limit", limit] if limit else []
        cmd += ["--check"] if check else []
        cmd += ["--diff"] if diff else []
        cmd += list(extra_args)
        forks = None if {"-f", "--forks"} & set(extra_args) else forks_for(env.inventory)
        cmd += ["--forks", str(forks)] if forks else []
        with subprocess.Popen(
            cmd,
            env={**command_env(), "SLAKIT_ANSIBLE_SUMMARY": summary.name},
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.PIPE,
            text=True,
        ) as run:
            try:
                if started:
                    started(run)
                _, stderr = run.communicate()
            except BaseException:  # as subprocess.run: no ansible-playbook left running
                run.kill()
                raise
        text = Path(summary.name).read_text()
        data = json.loads(text) if text.strip() else {}
    result = PlayResult(
        run.returncode,
        data.get("hosts", {}),
        data.get("changed_tasks", {}),
        data.get("failures", []),
        data.get("published", {}),
    )
    if not quiet and stderr:
        sys.stderr.write(stderr)
    if run.returncode != 0 and not result.failures:
        result.failures.append(
            {"host": "-", "task": name, "kind": "error", "msg": _ansible_error(stderr or "")}
        )
    return result


def run_plays(
    inventory: str | Path,
    plays: list[dict[str, Any]],
    timeout: float = 600,
    args: tuple[str, ...] = (),
) -> dict:
    """Run throwaway plays with the JSON stdout callback; returns its parsed output.

    For probes and benches that read results back; the plays' own failures are in the
    returned `stats`, and output that is not JSON at all is a SlakitError.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="slakit-plays-") as f:
        yaml.safe_dump(plays, f, sort_keys=False)
        f.flush()
        env = {**command_env(), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        env.pop("ANSIBLE_FORCE_COLOR", None)
        run = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(inventory), f.name, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
    try:
        return json.loads(run.stdout)
    except ValueError:
        raise SlakitError(
            f"ansible-playbook failed (rc {run.returncode}): {run.stderr.strip()[-300:]}"
        ) from None


ROLES = ("host_tuning", "redis", "app", "loadbalancer", "node_exporter", "monitoring")
# Never published: secrets, values built from them, and internal (`__`) names.
UNPUBLISHED = r"__|_password$|_secret$|_key_pem$|^app_users$|_url$|_environment$"
RESOLVE_TAG = "slakit_resolve"


def resolved_role_vars(inventory: str | Path, timeout: float = 300) -> dict[str, dict[str, Any]]:
    """Every role variable of every host as Ansible resolves it for a play of that role.

    One play over all hosts loads the roles of ROLES (defaults, vars, inventory, facts) and runs
    none of their tasks: only the two tasks tagged RESOLVE_TAG run (`--skip-tags always`
    also drops the roles' argument-spec checks). Secrets are never templated out.
    """
    names = (
        "{{ query('ansible.builtin.varnames', '^(" + "|".join(ROLES) + ")_')"
        f" | reject('search', '{UNPUBLISHED}') | list }}}}"
    )
    plays = [
        {
            "name": "Resolve role variables",
            "hosts": "all",
            "gather_facts": False,
            "roles": list(ROLES),
            "tasks": [
                {"name": "Gather facts", "ansible.builtin.setup": {}, "tags": [RESOLVE_TAG]},
                {
                    "name": "Publish the resolved role variables",
                    "vars": {"slakit_names": names},
                    "ansible.builtin.debug": {
                        "msg": "{{ dict(slakit_names | zip(query('ansible.builtin.vars', "
                        "*slakit_names))) }}"
                    },
                    "tags": [RESOLVE_TAG],
                },
            ],
        }
    ]
    out = run_plays(
        inventory, plays, timeout, args=("--tags", RESOLVE_TAG, "--skip-tags", "always")
    )
    failed = [
        f"{host}: {result.get('msg', 'failed')}"
        for task in out["plays"][0]["tasks"]
        for host, result in task["hosts"].items()
        if result.get("failed") or result.get("unreachable")
    ]
    if failed:
        raise SlakitError(f"resolving role variables failed: {failed[0]}")
    # One entry per host and task: the strategy does not group hosts under one task.
    return {
        host: result["msg"]
        for task in out["plays"][0]["tasks"]
        if task["task"]["name"] == "Publish the resolved role variables"
        for host, result in task["hosts"].items()
    }

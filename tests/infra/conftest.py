"""Shared helpers for the testinfra suite (any inventory).

Run from the project root:
    pytest tests/infra --hosts=ansible://all --ansible-inventory=inventories/<env>

Expected values come from the inventory under test (`host.ansible.get_variables()`), falling
back to the role's `defaults/main.yml`: never from a second copy kept in the tests. Values
that the role resolves on the host (e.g. sizes from host memory) are read from the role's
local facts file under /etc/ansible/facts.d/. Secrets are only ever templated inside Ansible
(`ansible_task` with no_log): they never appear in an argv, a log or a test report.
"""

from __future__ import annotations

import base64
import fnmatch
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from slakit.ansible import run_plays
from slakit.errors import SlakitError

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
# Template expressions in role defaults cannot be resolved here (no facts): callers fall back
# to the role's local facts file for those.
TEMPLATED = "{{"


# --- who is the host under test -------------------------------------------------------------


def hostname(host) -> str:
    """The inventory name of the host under test (for messages and ansible runs)."""
    return host.backend.get_hostname()


def inventory_vars(host) -> dict[str, Any]:
    """The inventory's variables for this host, untemplated (group_vars + host_vars)."""
    return host.ansible.get_variables()


def groups(host) -> set[str]:
    return set(inventory_vars(host).get("group_names", []))


def require_group(host, group: str) -> None:
    """Skip the test on hosts outside `group` (e.g. Redis tests on app hosts)."""
    if group not in groups(host):
        pytest.skip(f"{hostname(host)} is not in group {group}")


def in_container(host) -> bool:
    return host.run("systemd-detect-virt --container --quiet").rc == 0


# --- expected values ------------------------------------------------------------------------


@cache
def role_defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}


def expected_var(host, role: str, name: str) -> Any:
    """Inventory value of `name` for this host, else the role default (may be templated)."""
    variables = inventory_vars(host)
    if name in variables:
        return variables[name]
    return role_defaults(role).get(name)


def is_templated(value: Any) -> bool:
    return isinstance(value, str) and TEMPLATED in value


def local_fact(host, name: str) -> dict[str, Any]:
    """/etc/ansible/facts.d/<name>.fact (JSON) written by the role `name`."""
    path = f"/etc/ansible/facts.d/{name}.fact"
    fact = host.file(path)
    assert fact.exists, f"{hostname(host)}: {path} missing (has the {name} role run here?)"
    return json.loads(fact.content_string)


def mismatch(host, key: str, expected: Any, actual: Any) -> str:
    """One line naming host, key, expected and actual value."""
    return f"{hostname(host)}: {key}: expected {expected!r}, actual {actual!r}"


def assert_no_mismatches(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# --- processes and limits -------------------------------------------------------------------


def running_units(host, patterns: list[str]) -> list[str]:
    """Running service units whose names match any of the glob patterns."""
    out = host.check_output(
        "systemctl list-units --type=service --state=running --plain --no-legend --no-pager"
    )
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]


def unit_pids(host, unit: str) -> list[int]:
    """Every process in the unit's cgroup (gunicorn's workers as well as its master)."""
    cgroup = host.check_output(f"systemctl show -p ControlGroup --value {unit}").strip()
    pids: set[int] = set()
    if cgroup:
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
            out = host.run(f"cat {base}{cgroup}/cgroup.procs 2>/dev/null")
            if out.rc == 0 and out.stdout.strip():
                pids.update(int(p) for p in out.stdout.split())
                break
    main = host.check_output(f"systemctl show -p MainPID --value {unit}").strip()
    if main and main != "0":
        pids.add(int(main))
    return sorted(pids)


def process_limits(host, pid: int) -> dict[str, tuple[str, str]]:
    """/proc/<pid>/limits as {name: (soft, hard)}."""
    limits: dict[str, tuple[str, str]] = {}
    for line in host.file(f"/proc/{pid}/limits").content_string.splitlines()[1:]:
        # columns are fixed-width: name (26 chars), soft, hard, units
        name, values = line[:26].strip(), line[26:].split()
        if len(values) >= 2:
            limits[name] = (values[0], values[1])
    return limits


def pid1_nofile_hard(host) -> int:
    return int(process_limits(host, 1)["Max open files"][1])


# --- Ansible runs with secrets templated inside Ansible -------------------------------------


def ansible_inventory(request) -> str:
    return request.config.getoption("ansible_inventory") or str(ROOT / "inventories" / "lab")


def ansible_task(inventory: str, target: str, task: dict[str, Any], timeout: int = 120) -> str:
    """Run one task on `target` with no_log and return its stdout.

    Module arguments may use inventory variables (e.g. "{{ redis_app_password }}"): Ansible
    templates them itself, so secrets never reach an argv or a log. Only the task's stdout
    comes back (printed by a second task), never its arguments.
    """
    playbook = [
        {
            "name": "slakit test probe",
            "hosts": target,
            "gather_facts": False,
            "tasks": [
                {**task, "register": "slakit_probe", "no_log": True, "failed_when": False},
                {
                    "name": "Show the probe's stdout",
                    "ansible.builtin.debug": {
                        "msg": "{{ slakit_probe.stdout | default('') | b64encode }}"
                    },
                },
            ],
        }
    ]
    try:
        result = run_plays(inventory, playbook, timeout=timeout)
        shown = result["plays"][0]["tasks"][1]["hosts"][target]["msg"]
    except (SlakitError, KeyError, IndexError) as err:
        raise AssertionError(f"{target}: ansible probe failed: {err}") from err
    return base64.b64decode(shown).decode()

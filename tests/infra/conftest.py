"""Shared helpers for the testinfra suite (any inventory).

Run from the project root:
    pytest tests/infra --hosts=ansible://all --ansible-inventory=inventories/<env>

Expected values are the role variables as Ansible resolves them for each host (inventory,
role defaults and vars, facts: `slakit.ansible.resolved_role_vars`, one play per run that
runs none of the roles' tasks); never a copy kept in the tests, never a file or fact the
role wrote. Actual values are read live where the service exposes them (CONFIG GET,
/proc, `systemctl show`, ss, HAProxy's admin socket), else from the file the service
loaded. Secrets are only ever templated inside Ansible (`ansible_task` with no_log): they
never appear in an argv, a log or a test report.

Checks that change a host for a moment (a Redis restart, evictions) are marked `destructive`
and skip, as not applicable, unless `--destructive` is given: `invoke check.infra` gives it
in the lab only, so a staging or production pipeline changes nothing.

Each module (or test) names the inventory group it checks with `pytest.mark.group`; tests
are generated only for the hosts of that group, so a run has no skip noise, and
`--checks-plan FILE` writes how many checks each group has: the verify gate multiplies
that by the group's hosts to know how many checks must pass (slakit/verify.py).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import shlex
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from slakit.ansible import resolved_role_vars, run_plays
from slakit.errors import SlakitError
from slakit.verify import NOT_APPLICABLE

ROOT = Path(__file__).resolve().parents[2]
ALL = "all"


# --- which tests run where -----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--checks-plan",
        default=None,
        help="write {group: number of checks per host} as JSON to this file",
    )
    parser.addoption(
        "--destructive",
        action="store_true",
        help="also run checks that change the host for a moment (restart, eviction): lab only",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "group(name): the inventory group a check runs on")
    config.addinivalue_line(
        "markers", "destructive: changes the host for a moment; runs only with --destructive"
    )


def item_group(item: pytest.Item) -> str:
    marker = item.get_closest_marker("group")
    return marker.args[0] if marker else ALL


def item_host(item: pytest.Item):
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("_testinfra_host") if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each check only for the hosts of its group, and write the plan if asked."""
    checks: dict[str, set[str]] = defaultdict(set)
    keep, drop = [], []
    for item in items:
        group, host = item_group(item), item_host(item)
        checks[group].add(f"{item.path.name}::{item.originalname}")
        # groups exist only for hosts from an inventory (the ansible backend)
        if host is None or host.backend.NAME != "ansible" or group == ALL or group in groups(host):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if not config.getoption("--destructive"):
        reason = f"{NOT_APPLICABLE}destructive check, runs only with --destructive (the lab)"
        for item in items:
            if item.get_closest_marker("destructive"):
                item.add_marker(pytest.mark.skip(reason=reason))
    plan = config.getoption("--checks-plan")
    if plan:
        Path(plan).write_text(json.dumps({g: len(c) for g, c in sorted(checks.items())}))


# --- who is the host under test -------------------------------------------------------------


def hostname(host) -> str:
    """The inventory name of the host under test (for messages and ansible runs)."""
    return host.backend.get_hostname()


def inventory_vars(host) -> dict[str, Any]:
    """The inventory's variables for this host, untemplated (group_vars + host_vars)."""
    return host.ansible.get_variables()


def groups(host) -> set[str]:
    return set(inventory_vars(host).get("group_names", []))


def address_of(host, name: str) -> str:
    """Inventory host `name`'s ansible_host (its name when it has none), from the inventory."""
    hostvars = host.backend.ansible_runner.inventory["_meta"]["hostvars"]
    return str(hostvars.get(name, {}).get("ansible_host") or name)


def group_hosts(host, group: str) -> list[str]:
    return list(inventory_vars(host).get("groups", {}).get(group, []))


def in_container(host) -> bool:
    return host.run("systemd-detect-virt --container --quiet").rc == 0


# --- expected values ------------------------------------------------------------------------


@cache
def _resolved(inventory: str) -> dict[str, dict[str, Any]]:
    try:
        return resolved_role_vars(inventory)
    except SlakitError as err:
        raise AssertionError(str(err)) from err


def resolved(host) -> dict[str, Any]:
    """This host's role variables as Ansible resolves them."""
    inventory = host.backend.ansible_inventory or str(ROOT / "inventories" / "lab")
    every = _resolved(str(inventory))
    assert hostname(host) in every, f"{hostname(host)}: no resolved role variables"
    return every[hostname(host)]


def resolved_of(host, other: str) -> dict[str, Any]:
    """Another host's resolved role variables (e.g. a Redis host's, seen from an app host)."""
    resolved(host)
    inventory = host.backend.ansible_inventory or str(ROOT / "inventories" / "lab")
    return _resolved(str(inventory))[other]


def expected(host, name: str) -> Any:
    """The resolved value of the role variable `name` on this host."""
    variables = resolved(host)
    assert name in variables, f"{hostname(host)}: role variable {name} is not defined"
    return variables[name]


def local_fact(host, name: str) -> dict[str, Any]:
    """/etc/ansible/facts.d/<name>.fact (JSON): what the role published, for contract checks."""
    path = f"/etc/ansible/facts.d/{name}.fact"
    fact = host.file(path)
    assert fact.exists, f"{hostname(host)}: {path} missing (has the {name} role run here?)"
    return json.loads(fact.content_string)


def mismatch(host, key: str, want: Any, actual: Any) -> str:
    """One line naming host, key, expected and actual value."""
    return f"{hostname(host)}: {key}: expected {want!r}, actual {actual!r}"


def assert_no_mismatches(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


def unit_properties(host, unit: str, names: list[str]) -> dict[str, str]:
    """`systemctl show` properties of a unit, as systemd loaded them."""
    args = " ".join(f"-p {n}" for n in names)
    out = host.check_output(f"systemctl show {unit} {args}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def file_owners(host, paths: list[str]) -> dict[str, tuple[str, str, int] | None]:
    """{path: (user, group, mode) or None when missing}, from one `stat` on the host."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    out = host.run(f"stat -c '%n\t%U\t%G\t%a' {quoted} 2>/dev/null").stdout
    found = {}
    for line in out.splitlines():
        path, user, group, mode = line.split("\t")
        found[path] = (user, group, int(mode, 8))
    return {p: found.get(p) for p in paths}


def check_unit_hardening(host, unit: str, want: dict[str, str]) -> list[str]:
    """One mismatch per hardening property whose loaded value differs from `want`."""
    have = unit_properties(host, unit, list(want))
    return [
        mismatch(host, f"{unit} {name}", value, have.get(name))
        for name, value in want.items()
        if have.get(name) != value
    ]


def exposure(host, unit: str) -> float:
    """systemd-analyze security's overall exposure score of a unit."""
    out = host.check_output(f"systemd-analyze security {unit} --no-pager | tail -1")
    match = re.search(r"exposure level for \S+: (\d+\.\d+)", out)
    assert match, f"{hostname(host)}: {unit}: no exposure score in {out!r}"
    return float(match.group(1))


# The hardening every unit slakit writes carries (the app and redis role READMEs), each
# directive as `systemctl show` reports it; a role's test adds its own.
UNIT_HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "DevicePolicy": "closed",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "PrivateIPC": "yes",
    "KeyringMode": "private",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RemoveIPC": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


# --- processes and limits -------------------------------------------------------------------


def unit_listeners(host, unit: str) -> dict[str, int]:
    """{"address:port": listen queue} of the TCP sockets a unit listens on.

    From `ss -e`: the socket's cgroup names the unit, visible even where another user's (or a
    chrooted process's) /proc entries are not.
    """
    found = {}
    for line in host.check_output("ss -Htlne").splitlines():
        fields = line.split()
        cgroup = re.search(r"cgroup:(\S+)", line)
        if cgroup and cgroup.group(1).rsplit("/", 1)[-1] == unit:
            found[fields[3].replace("[", "").replace("]", "")] = int(fields[2])
    return found


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
    return ansible_task_on(inventory, [target], task, timeout)[target]


def ansible_task_on(
    inventory: str, targets: list[str], task: dict[str, Any], timeout: int = 120
) -> dict[str, str]:
    """ansible_task on several hosts in one run: {target: its stdout}."""
    playbook = [
        {
            "name": "slakit test probe",
            "hosts": ",".join(targets),
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
        # the JSON callback under slakit's strategy: one task entry per host, so by task name
        shown = {
            host: r["msg"]
            for task in result["plays"][0]["tasks"]
            if task["task"]["name"] == "Show the probe's stdout"
            for host, r in task["hosts"].items()
        }
        shown = {t: shown[t] for t in targets}
    except (SlakitError, KeyError, IndexError) as err:
        raise AssertionError(f"{', '.join(targets)}: ansible probe failed: {err}") from err
    return {t: base64.b64decode(msg).decode() for t, msg in shown.items()}

"""host_tuning: every sysctl key and open-file limit the role sets, on every host.

Expected values: the host_tuning_* variables as Ansible resolves them for the host. Inside a
container host-level keys are never written: they must be recorded as skipped instead, and
the open-file limit is capped at the container's ceiling (PID 1's hard limit).
"""

from __future__ import annotations

import re

import pytest
from conftest import (
    assert_no_mismatches,
    expected,
    groups,
    in_container,
    local_fact,
    mismatch,
    pid1_nofile_hard,
    process_limits,
    unit_pids,
)

pytestmark = pytest.mark.group("all")


def _norm(value) -> str:
    return " ".join(str(value).split())


def _global(key: str, global_keys: list[str]) -> bool:
    return any(key.startswith(g) if g.endswith(".") else key == g for g in global_keys)


def expected_sysctl(host) -> dict[str, str]:
    """The keys the role applies on this host, merged exactly as the role documents."""
    keys = dict(expected(host, "host_tuning_sysctl"))
    keys.update(expected(host, "host_tuning_sysctl_extra"))
    if expected(host, "host_tuning_redis_group") in groups(host):
        keys.update(expected(host, "host_tuning_sysctl_redis"))
    return {k: _norm(v) for k, v in keys.items()}


def capped(host, limit) -> int:
    """An open-file limit as a container can grant it (PID 1's hard limit is the ceiling)."""
    return min(int(limit), pid1_nofile_hard(host)) if in_container(host) else int(limit)


def test_sysctl_keys_hold(host):
    """Every applied key reads its configured value live and is in the role's sysctl file."""
    global_keys = expected(host, "host_tuning_global_keys")
    container = in_container(host)
    path = expected(host, "host_tuning_sysctl_file")
    file_lines = {}
    for line in host.file(path).content_string.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            file_lines[key.strip()] = _norm(value)
    problems = []
    for key, want in expected_sysctl(host).items():
        if container and _global(key, global_keys):
            if key in file_lines:
                problems.append(mismatch(host, f"{path}: {key}", "absent (host-level)", "present"))
            continue
        live = host.run(f"sysctl -n {key}")
        actual = _norm(live.stdout) if live.rc == 0 else f"unreadable: {live.stderr.strip()}"
        if actual != want:
            problems.append(mismatch(host, key, want, actual))
        if file_lines.get(key) != want:
            problems.append(mismatch(host, f"{path}: {key}", want, file_lines.get(key)))
    assert_no_mismatches(problems)


def test_host_level_keys_reported_in_container(host):
    """In a container, host-level keys are recorded as skipped (for the readiness report)."""
    fact = local_fact(host, "host_tuning")
    global_keys = expected(host, "host_tuning_global_keys")
    wanted = expected_sysctl(host)
    skipped = {k for k in wanted if _global(k, global_keys)} if in_container(host) else set()
    assert set(fact["skipped"]) == skipped, mismatch(
        host, "host_tuning.fact skipped", sorted(skipped), sorted(fact["skipped"])
    )
    if skipped:
        assert fact["skipped_reason"] == "host-level, skipped in container"


def test_nofile_configured(host):
    """systemd's DefaultLimitNOFILE and the pam_limits file carry the open-file limit."""
    soft = capped(host, expected(host, "host_tuning_nofile"))
    hard = capped(host, expected(host, "host_tuning_nofile_hard"))
    problems = []
    for prop, want in (("DefaultLimitNOFILESoft", soft), ("DefaultLimitNOFILE", hard)):
        actual = host.check_output(f"systemctl show -p {prop} --value").strip()
        if actual != str(want):
            problems.append(mismatch(host, f"systemd {prop}", want, actual))
    limits = host.file(expected(host, "host_tuning_limits_file")).content_string
    for who in ("*", "root"):
        for kind, want in (("soft", soft), ("hard", hard)):
            pattern = rf"^{re.escape(who)}\s+{kind}\s+nofile\s+{want}\s*$"
            if not re.search(pattern, limits, re.M):
                problems.append(mismatch(host, f"limits.d {who} {kind} nofile", want, "missing"))
    assert_no_mismatches(problems)


def managed_units(host) -> dict[str, int]:
    """Every service the roles start on this host, with the open-file limit its role sets."""
    host_groups = groups(host)
    units: dict[str, int] = {}
    if "redis" in host_groups:
        for instance in expected(host, "redis_instances"):
            units[f"redis@{instance['name']}.service"] = expected(host, "redis_limit_nofile")
    if "app" in host_groups:
        units[f"{expected(host, 'app_name')}.service"] = expected(host, "app_nofile")
    if "lb" in host_groups:
        units["haproxy.service"] = expected(host, "loadbalancer_nofile")
    return {unit: capped(host, limit) for unit, limit in units.items()}


def test_running_processes_open_file_limit(host):
    """The effective limit of every process of every service the roles start."""
    units = managed_units(host)
    problems = []
    for unit, soft in units.items():
        pids = unit_pids(host, unit)
        if not pids:
            problems.append(mismatch(host, f"{unit} processes", "running", "none"))
        for pid in pids:
            actual = process_limits(host, pid).get("Max open files", ("?", "?"))
            what = f"{unit} pid {pid} open files"
            if actual[0] != str(soft):
                problems.append(mismatch(host, f"{what} (soft)", soft, actual[0]))
            if actual[1] != "unlimited" and int(actual[1]) < soft:
                problems.append(mismatch(host, f"{what} (hard)", f">= {soft}", actual[1]))
    assert_no_mismatches(problems)

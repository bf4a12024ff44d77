"""host_tuning: every sysctl key and open-file limit the role sets, on every host.

Expected values: the inventory's host_tuning_* variables, else the role defaults. Inside a
container host-level keys are never written: they must be recorded as skipped instead, and
the open-file limit is capped at the container's ceiling (PID 1's hard limit).
"""

from __future__ import annotations

import re

import pytest
from conftest import (
    assert_no_mismatches,
    expected_var,
    groups,
    in_container,
    local_fact,
    mismatch,
    pid1_nofile_hard,
    process_limits,
    running_units,
    unit_pids,
)

ROLE = "host_tuning"


def _norm(value) -> str:
    return " ".join(str(value).split())


def _global(key: str, global_keys: list[str]) -> bool:
    return any(key.startswith(g) if g.endswith(".") else key == g for g in global_keys)


def expected_sysctl(host) -> dict[str, str]:
    """The keys the role applies on this host, merged exactly as the role documents."""
    keys = dict(expected_var(host, ROLE, "host_tuning_sysctl") or {})
    keys.update(expected_var(host, ROLE, "host_tuning_sysctl_extra") or {})
    if expected_var(host, ROLE, "host_tuning_redis_group") in groups(host):
        keys.update(expected_var(host, ROLE, "host_tuning_sysctl_redis") or {})
    return {k: _norm(v) for k, v in keys.items()}


def expected_nofile(host) -> tuple[int, int]:
    soft = int(expected_var(host, ROLE, "host_tuning_nofile"))
    hard_var = expected_var(host, ROLE, "host_tuning_nofile_hard")
    hard = soft if hard_var is None or "{{" in str(hard_var) else int(hard_var)
    if in_container(host):
        ceiling = pid1_nofile_hard(host)
        return min(soft, ceiling), min(hard, ceiling)
    return soft, hard


def test_sysctl_keys_hold(host):
    """Every applied key reads its configured value live and is in the role's sysctl file."""
    global_keys = expected_var(host, ROLE, "host_tuning_global_keys")
    container = in_container(host)
    path = expected_var(host, ROLE, "host_tuning_sysctl_file")
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
    fact = local_fact(host, ROLE)
    global_keys = expected_var(host, ROLE, "host_tuning_global_keys")
    wanted = expected_sysctl(host)
    if not in_container(host):
        assert fact["skipped"] == {}, f"{host.backend.get_hostname()}: skipped {fact['skipped']}"
        return
    skipped = {k for k in wanted if _global(k, global_keys)}
    assert set(fact["skipped"]) == skipped, mismatch(
        host, "host_tuning.fact skipped", sorted(skipped), sorted(fact["skipped"])
    )
    assert fact["skipped_reason"] == "host-level, skipped in container"


def test_nofile_configured(host):
    """systemd's DefaultLimitNOFILE and the pam_limits file carry the open-file limit."""
    soft, hard = expected_nofile(host)
    problems = []
    for prop, want in (("DefaultLimitNOFILESoft", soft), ("DefaultLimitNOFILE", hard)):
        actual = host.check_output(f"systemctl show -p {prop} --value").strip()
        if actual != str(want):
            problems.append(mismatch(host, f"systemd {prop}", want, actual))
    limits = host.file(expected_var(host, ROLE, "host_tuning_limits_file")).content_string
    for who in ("*", "root"):
        for kind, want in (("soft", soft), ("hard", hard)):
            pattern = rf"^{re.escape(who)}\s+{kind}\s+nofile\s+{want}\s*$"
            if not re.search(pattern, limits, re.M):
                problems.append(mismatch(host, f"limits.d {who} {kind} nofile", want, "missing"))
    assert_no_mismatches(problems)


def test_running_processes_open_file_limit(host):
    """The effective limit of every running managed process (/proc/<pid>/limits)."""
    patterns = expected_var(host, ROLE, "host_tuning_verify_units")
    units = running_units(host, patterns)
    if not units:
        pytest.skip(f"no running unit matches {patterns}")
    soft, _hard = expected_nofile(host)
    problems = []
    for unit in units:
        for pid in unit_pids(host, unit):
            limits = process_limits(host, pid)
            actual = limits.get("Max open files", ("?", "?"))
            what = f"{unit} pid {pid} open files"
            if actual[0] != str(soft):
                problems.append(mismatch(host, f"{what} (soft)", soft, actual[0]))
            if actual[1] != "unlimited" and int(actual[1]) < soft:
                problems.append(mismatch(host, f"{what} (hard)", f">= {soft}", actual[1]))
    assert_no_mismatches(problems)

"""Sentinel (redis role, tasks_from: sentinel) on the `sentinel` group: running, bound and
allow-listed as set, its state file private, credentials required, and every Sentinel of the
inventory naming the same primary, one of redis_replication_hosts, with the quorum reachable.

Expected values: the redis_sentinel_* and redis_replication_hosts variables as Ansible resolves
them for the host and the inventory's groups. Actual values: `ss`, `systemctl show`, and the
Sentinels' own answers (redis-cli with the root-only credentials file the role writes).
"""

from __future__ import annotations

import ipaddress
import shlex

import pytest
from conftest import (
    address_of,
    assert_no_mismatches,
    expected,
    file_owners,
    hostname,
    mismatch,
    unit_listeners,
    unit_properties,
)

pytestmark = pytest.mark.group("sentinel")


def masters(host) -> dict[str, int]:
    """{master name: port} of the replicated instances Sentinel watches."""
    prefix = expected(host, "redis_sentinel_master_prefix")
    return {
        f"{prefix}{i['name']}": int(i["port"])
        for i in expected(host, "redis_instances")
        if i.get("replicated")
    }


def addresses(host, group_var: str) -> list[str]:
    return [address_of(host, h) for h in expected(host, group_var)]


def sentinel_cli(host, *args: str, address: str = "127.0.0.1"):
    """redis-cli to a Sentinel, authenticated from the root-only env file (no password in argv)."""
    env_file = expected(host, "redis_sentinel_env_file")
    port = int(expected(host, "redis_sentinel_port"))
    cmd = f"redis-cli --no-auth-warning -h {shlex.quote(address)} -p {port} " + " ".join(
        shlex.quote(a) for a in args
    )
    return host.run(f"set -a; . {shlex.quote(env_file)}; set +a; timeout 5 {cmd}")


def test_sentinel_runs_bound_and_filtered(host):
    unit = expected(host, "redis_sentinel_unit")
    port = int(expected(host, "redis_sentinel_port"))
    service = host.service(unit)
    problems = []
    if not (service.is_running and service.is_enabled):
        problems.append(mismatch(host, f"{unit} running and enabled", True, False))
    want = {f"{a}:{port}" for a in expected(host, "redis_sentinel_bind_addresses")}
    seen = set(unit_listeners(host, unit))
    if seen != want:
        problems.append(mismatch(host, f"{unit} listeners", sorted(want), sorted(seen)))
    allow = set(unit_properties(host, unit, ["IPAddressAllow"])["IPAddressAllow"].split())
    clients = expected(host, "redis_sentinel_allowed_clients")
    want_allow = {"127.0.0.0/8", "::1/128"} | {str(ipaddress.ip_network(a)) for a in clients}
    if allow != want_allow:
        problems.append(mismatch(host, f"{unit} IPAddressAllow", sorted(want_allow), sorted(allow)))
    state = f"{expected(host, 'redis_sentinel_dir')}/sentinel.conf"
    env_file = expected(host, "redis_sentinel_env_file")
    owners = file_owners(host, [state, env_file])
    user, group = expected(host, "redis_user"), expected(host, "redis_group")
    for path, want_owner in ((state, (user, group, 0o600)), (env_file, ("root", "root", 0o600))):
        if owners[path] != want_owner:
            problems.append(mismatch(host, f"{path} owner, group, mode", want_owner, owners[path]))
    assert_no_mismatches(problems)


def test_sentinel_refuses_clients_without_its_password(host):
    port = int(expected(host, "redis_sentinel_port"))
    out = host.run(f"timeout 5 redis-cli -p {port} SENTINEL MASTERS").stdout.strip()
    assert out.startswith("NOAUTH"), mismatch(
        host, "unauthenticated SENTINEL MASTERS", "NOAUTH", out
    )


def test_every_sentinel_names_the_same_primary_and_the_quorum_holds(host):
    """Asked from this host, every Sentinel of the inventory gives the same primary for each
    watched instance, a host of redis_replication_hosts; this one sees the others and the
    replicas, and its quorum (redis_sentinel_quorum) is reachable (SENTINEL CKQUORUM)."""
    sentinels = addresses(host, "redis_sentinel_hosts")
    replication = addresses(host, "redis_replication_hosts")
    quorum = int(expected(host, "redis_sentinel_quorum"))
    problems = []
    for master, port in masters(host).items():
        named = {
            s: sentinel_cli(
                host, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master, address=s
            ).stdout.split()
            for s in sentinels
        }
        primaries = {tuple(v) for v in named.values()}
        if len(primaries) != 1:
            problems.append(mismatch(host, f"{master}: primary per Sentinel", "one", named))
        primary = next(iter(primaries)) if len(primaries) == 1 else ()
        if list(primary) not in [[a, str(port)] for a in replication]:
            problems.append(mismatch(host, f"{master} primary", f"one of {replication}", primary))
        fields = sentinel_cli(host, "SENTINEL", "MASTER", master).stdout.splitlines()
        info = dict(zip(fields[::2], fields[1::2], strict=False))
        for key, want in (
            ("quorum", str(quorum)),
            ("num-other-sentinels", str(len(sentinels) - 1)),
            ("num-slaves", str(len(replication) - 1)),
            ("down-after-milliseconds", str(expected(host, "redis_sentinel_down_after_ms"))),
            ("failover-timeout", str(expected(host, "redis_sentinel_failover_timeout_ms"))),
        ):
            if info.get(key) != want:
                problems.append(mismatch(host, f"{master} {key}", want, info.get(key)))
        ckquorum = sentinel_cli(host, "SENTINEL", "CKQUORUM", master).stdout.strip()
        if not ckquorum.startswith("OK"):
            problems.append(mismatch(host, f"{master} CKQUORUM", "OK ...", ckquorum))
    assert masters(host), f"{hostname(host)}: Sentinel runs but no instance is replicated"
    assert_no_mismatches(problems)

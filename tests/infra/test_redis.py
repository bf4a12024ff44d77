"""redis: every instance provisioned, listening where configured, authenticated, persistent.

Runs on hosts of the `redis` group (and, for the app user's view, on `app` hosts). Expected
values: the inventory's redis_* variables, else the role defaults; values the role resolves
on the host (maxmemory sized from host memory, the bind address) come from its local facts
file /etc/ansible/facts.d/redis.fact. Admin commands run on the Redis host with
`redis-cli --user admin` and REDISCLI_AUTH from the root-only env file the role writes:
no password in any argv. The app user's password is templated inside Ansible only.
"""

from __future__ import annotations

import shlex
import time
import uuid

import pytest
import testinfra
from conftest import (
    ansible_inventory,
    ansible_task,
    assert_no_mismatches,
    expected_var,
    hostname,
    inventory_vars,
    is_templated,
    local_fact,
    mismatch,
    require_group,
)

ROLE = "redis"
TEST_DB = 15  # tests write only here (the app uses 5 and 6)
MIB = 1024 * 1024


# --- helpers ---------------------------------------------------------------------------------


def instances(host) -> list[dict]:
    """Instances as the role resolved them (fact), checked against the inventory elsewhere."""
    return list(local_fact(host, ROLE)["instances"].values())


def admin_cli(host, port: int, *args: str, db: int | None = None, stdin_cmds: str = ""):
    """redis-cli as the admin user on the Redis host; the password comes from the env file."""
    env_file = expected_var(host, ROLE, "redis_admin_env_file")
    user = expected_var(host, ROLE, "redis_admin_user")
    cmd = f"redis-cli --no-auth-warning --user {shlex.quote(user)} -p {port}"
    if db is not None:
        cmd += f" -n {db}"
    cmd += " " + " ".join(shlex.quote(a) for a in args)
    if stdin_cmds:
        cmd = f"printf %s {shlex.quote(stdin_cmds)} | {cmd}"
    return host.run(f"set -a; . {shlex.quote(env_file)}; set +a; {cmd}")


def admin_out(host, port: int, *args: str, db: int | None = None) -> str:
    result = admin_cli(host, port, *args, db=db)
    assert result.rc == 0, f"{hostname(host)}: redis-cli -p {port} {args[0]}: {result.stderr}"
    return result.stdout.strip()


def config_get(host, port: int, name: str) -> str:
    lines = admin_out(host, port, "CONFIG", "GET", name).splitlines()
    return lines[1] if len(lines) > 1 else ""


def info_field(host, port: int, section: str, field: str) -> str:
    for line in admin_out(host, port, "INFO", section).splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{hostname(host)}: INFO {section} has no {field}")


def wait_ready(host, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = admin_cli(host, port, "PING")
        if result.rc == 0 and result.stdout.strip() == "PONG":
            return
        time.sleep(0.5)
    raise AssertionError(f"{hostname(host)}: port {port} not answering PING after {timeout}s")


# --- provisioning ----------------------------------------------------------------------------


def test_instances_match_inventory(host):
    """The instances on the host are exactly redis_instances (inventory, else role defaults)."""
    require_group(host, "redis")
    fact = local_fact(host, ROLE)["instances"]
    problems = []
    wanted = expected_var(host, ROLE, "redis_instances")
    if sorted(i["name"] for i in wanted) != sorted(fact):
        problems.append(
            mismatch(host, "instances", sorted(i["name"] for i in wanted), sorted(fact))
        )
    for want in wanted:
        have = fact.get(want["name"], {})
        for field in ("port", "persistence", "maxmemory_policy", "maxmemory_mb", "databases"):
            literal = field in want and not is_templated(want[field])
            if literal and str(have.get(field)) != str(want[field]):
                key = f"{want['name']}.{field}"
                problems.append(mismatch(host, key, want[field], have.get(field)))
    assert_no_mismatches(problems)


def test_units_enabled_and_running(host):
    require_group(host, "redis")
    problems = []
    for inst in instances(host):
        unit = host.service(f"redis@{inst['name']}")
        if not unit.is_enabled:
            problems.append(mismatch(host, f"redis@{inst['name']} enabled", True, False))
        if not unit.is_running:
            problems.append(mismatch(host, f"redis@{inst['name']} running", True, False))
    distro = expected_var(host, ROLE, "redis_distro_unit")
    state = host.run(f"systemctl is-enabled {distro}").stdout.strip()
    if state != "masked":
        problems.append(mismatch(host, f"{distro} is-enabled", "masked", state))
    if host.service(distro).is_running:
        problems.append(mismatch(host, f"{distro} running", False, True))
    assert_no_mismatches(problems)


def test_listening_only_where_configured(host):
    """Each port listens on exactly the bind addresses, with the backlog raised by somaxconn."""
    require_group(host, "redis")
    fact = local_fact(host, ROLE)
    bind = expected_var(host, ROLE, "redis_bind_addresses")
    if any(is_templated(b) for b in bind):
        bind = fact["bind"]
    somaxconn = int(host.check_output("sysctl -n net.core.somaxconn"))
    backlog = min(int(fact["tcp_backlog"]), somaxconn)
    listening: dict[int, dict[str, int]] = {}
    for line in host.check_output("ss -ltnH").splitlines():
        _state, _recv, send_q, local, *_ = line.split()
        addr, _, port = local.rpartition(":")
        listening.setdefault(int(port), {})[addr.strip("[]")] = int(send_q)
    problems = []
    assert "127.0.0.1" in bind, mismatch(host, "redis_bind_addresses", "includes 127.0.0.1", bind)
    for inst in instances(host):
        port = int(inst["port"])
        seen = listening.get(port, {})
        if set(seen) != set(bind):
            problems.append(mismatch(host, f"{inst['name']} :{port} listen addresses", bind, seen))
        for addr, queue in seen.items():
            if queue != backlog:
                key = f"{inst['name']} {addr}:{port} listen backlog"
                problems.append(mismatch(host, key, backlog, queue))
    assert_no_mismatches(problems)


def test_live_config_values(host):
    """CONFIG GET (admin user) returns what the inventory/role asked for."""
    require_group(host, "redis")
    fact = local_fact(host, ROLE)
    fsync = expected_var(host, ROLE, "redis_aof_fsync")
    save = expected_var(host, ROLE, "redis_rdb_save")
    problems = []
    for inst in instances(host):
        port = int(inst["port"])
        persistent = inst["persistence"] == "aof_rdb"
        want = {
            "port": str(port),
            "bind": " ".join(fact["bind"]),
            "protected-mode": "yes",
            "maxmemory": str(int(inst.get("maxmemory_mb", 0)) * MIB),
            "maxmemory-policy": inst.get("maxmemory_policy", "noeviction"),
            "databases": str(inst.get("databases", 16)),
            "tcp-backlog": str(fact["tcp_backlog"]),
            "maxclients": str(expected_var(host, ROLE, "redis_maxclients")),
            "appendonly": "yes" if persistent else "no",
            "save": save if persistent else "",
        }
        if persistent:
            want["appendfsync"] = fsync
        for name, value in want.items():
            actual = config_get(host, port, name)
            if actual != value:
                problems.append(mismatch(host, f"{inst['name']} CONFIG {name}", value, actual))
    assert_no_mismatches(problems)


# --- auth ------------------------------------------------------------------------------------


def test_unauthenticated_ping_refused(host):
    require_group(host, "redis")
    problems = []
    for inst in instances(host):
        for addr in local_fact(host, ROLE)["bind"]:
            out = host.run(f"redis-cli -h {addr} -p {inst['port']} PING").stdout.strip()
            if not out.startswith("NOAUTH"):
                key = f"{inst['name']} {addr}:{inst['port']} unauthenticated PING"
                problems.append(mismatch(host, key, "NOAUTH ...", out))
    assert_no_mismatches(problems)


ALLOWED = [
    ["GET", "k"], ["SET", "k", "v"], ["SETEX", "k", "10", "v"], ["MGET", "a", "b"],
    ["DEL", "k"], ["EXPIRE", "k", "10"], ["TTL", "k"], ["PING"], ["INFO"], ["SELECT", "5"],
]  # fmt: skip
DENIED = [
    ["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "maxmemory"], ["KEYS", "*"],
    ["DEBUG", "SLEEP", "0"], ["SHUTDOWN"], ["ACL", "LIST"],
]  # fmt: skip


def test_app_user_permissions(host):
    """The app user may run the service's commands and none of the dangerous ones."""
    require_group(host, "redis")
    app = expected_var(host, ROLE, "redis_app_user")
    problems = []
    for inst in instances(host):
        for cmd in ALLOWED + DENIED:
            out = admin_out(host, int(inst["port"]), "ACL", "DRYRUN", app, *cmd)
            allowed = out == "OK"
            if allowed != (cmd in ALLOWED):
                want = "allowed" if cmd in ALLOWED else "denied"
                problems.append(mismatch(host, f"{inst['name']} {app}: {' '.join(cmd)}", want, out))
    assert_no_mismatches(problems)


# Runs on an app host: connects to a Redis instance, password read from stdin (templated by
# Ansible), prints one reply per probe.
PROBE = r"""
import socket, sys
addr, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = sys.stdin.read().strip()

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def talk(commands):
    with socket.create_connection((addr, port), timeout=5) as s:
        f = s.makefile("rb")
        replies = []
        for c in commands:
            s.sendall(resp(*c))
            replies.append(f.readline().decode().strip().split(" ")[0])
        return replies

print("anon", *talk([["PING"]]))
print("app", *talk([["AUTH", user, password], ["PING"], ["SELECT", "5"], ["FLUSHALL"],
                   ["CONFIG", "GET", "maxmemory"]]))
"""


def test_app_user_from_app_hosts(host, request):
    """From each app host: the app user's PING works on every instance; anonymous is refused;
    FLUSHALL and CONFIG are refused for the app user."""
    require_group(host, "app")
    inventory = ansible_inventory(request)
    redis_hosts = inventory_vars(host).get("groups", {}).get("redis", [])
    if not redis_hosts:
        pytest.skip("no redis hosts in the inventory")
    problems = []
    for redis_name in redis_hosts:
        redis_host = testinfra.get_host(f"ansible://{redis_name}?ansible_inventory={inventory}")
        fact = local_fact(redis_host, ROLE)
        addr = next(b for b in fact["bind"] if not b.startswith("127."))
        for inst in fact["instances"].values():
            task = {
                "name": "Probe Redis as the app user",
                "ansible.builtin.command": {
                    "argv": ["python3", "-c", PROBE, addr, str(inst["port"]), fact["app_user"]],
                    "stdin": "{{ redis_app_password }}",
                },
            }
            out = ansible_task(inventory, hostname(host), task)
            replies = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line}
            want = {"anon": ["-NOAUTH"], "app": ["+OK", "+PONG", "+OK", "-NOPERM", "-NOPERM"]}
            if replies != want:
                key = f"{redis_name} {inst['name']} {addr}:{inst['port']} replies"
                problems.append(mismatch(host, key, want, replies))
    assert_no_mismatches(problems)


# --- behaviour -------------------------------------------------------------------------------


def test_persist_survives_restart(host):
    """A key written to each persistent instance is still there after restarting its unit."""
    require_group(host, "redis")
    persistent = [i for i in instances(host) if i["persistence"] == "aof_rdb"]
    if not persistent:
        pytest.skip("no persistent instance")
    for inst in persistent:
        port = int(inst["port"])
        key, value = f"slakit:test:persist:{uuid.uuid4().hex}", uuid.uuid4().hex
        assert admin_out(host, port, "SET", key, value, db=TEST_DB) == "OK"
        try:
            restart = host.run(f"systemctl restart redis@{inst['name']}")
            assert restart.rc == 0, f"{hostname(host)}: restart redis@{inst['name']}: {restart}"
            wait_ready(host, port)
            actual = admin_out(host, port, "GET", key, db=TEST_DB)
            assert actual == value, mismatch(
                host, f"{inst['name']} {key} after restart", value, actual
            )
        finally:
            admin_cli(host, port, "DEL", key, db=TEST_DB)


def test_cache_evicts_under_memory_pressure(host):
    """With a small temporary maxmemory, writes to an evicting instance succeed and keys are
    evicted instead of OOM errors. maxmemory is restored and the test keys removed."""
    require_group(host, "redis")
    evicting = [
        i for i in instances(host) if str(i.get("maxmemory_policy", "")).startswith("allkeys-")
    ]
    if not evicting:
        pytest.skip("no instance with an allkeys-* eviction policy")
    for inst in evicting:
        port = int(inst["port"])
        original = config_get(host, port, "maxmemory")
        evicted_before = int(info_field(host, port, "stats", "evicted_keys"))
        used = int(info_field(host, port, "memory", "used_memory"))
        prefix = f"slakit:test:evict:{uuid.uuid4().hex[:8]}:"
        # 400 keys of 64 KiB = 25 MiB into a budget of used + 8 MiB; no payload in argv
        commands = "".join(f"SETRANGE {prefix}{n} 65535 x\n" for n in range(400))
        try:
            assert admin_out(host, port, "CONFIG", "SET", "maxmemory", str(used + 8 * MIB)) == "OK"
            result = admin_cli(host, port, db=TEST_DB, stdin_cmds=commands)
            replies = result.stdout.split()
            errors = [r for r in result.stdout.splitlines() if "OOM" in r or "ERR" in r]
            assert not errors, mismatch(host, f"{inst['name']} writes", "no errors", errors[:3])
            assert len(replies) == 400, mismatch(host, f"{inst['name']} replies", 400, len(replies))
            evicted = int(info_field(host, port, "stats", "evicted_keys")) - evicted_before
            assert evicted > 0, mismatch(host, f"{inst['name']} evicted_keys", "> 0", evicted)
        finally:
            admin_cli(host, port, "CONFIG", "SET", "maxmemory", original)
            admin_cli(
                host,
                port,
                db=TEST_DB,
                stdin_cmds="".join(f"DEL {prefix}{n}\n" for n in range(400)),
            )
        assert config_get(host, port, "maxmemory") == original

"""redis: every instance provisioned, listening where configured, authenticated, persistent.

Runs on hosts of the `redis` group (and, for the app user's view, on `app` hosts). Expected
values: the redis_* variables as Ansible resolves them for the host (instances, memory caps
from host memory, bind addresses from facts). Actual values: CONFIG GET as the admin user,
`systemctl show`, ss and the files on the host. Admin commands run on the Redis host with
`redis-cli --user admin` and REDISCLI_AUTH from the root-only env file the role writes: no
password in any argv. The app user's password is templated inside Ansible only.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import time
import uuid

import pytest
from conftest import (
    UNIT_HARDENING,
    address_of,
    ansible_inventory,
    ansible_task,
    assert_no_mismatches,
    check_unit_hardening,
    expected,
    file_owners,
    group_hosts,
    hostname,
    mismatch,
    resolved_of,
    unit_listeners,
    unit_properties,
)

from slakit.verify import NOT_APPLICABLE

pytestmark = pytest.mark.group("redis")
TEST_DB = 15  # tests write only here (the app uses 5 and 6)
MIB = 1024 * 1024
# systemd's spelling of the special IPAddressAllow words (systemd.resource-control(5)).
IP_WORDS = {
    "any": {"0.0.0.0/0", "::/0"},
    "localhost": {"127.0.0.0/8", "::1/128"},
    "link-local": {"169.254.0.0/16", "fe80::/64"},
    "multicast": {"224.0.0.0/4", "ff00::/8"},
}
# The redis unit's hardening (role README): the common set and no exec outside its binary.
HARDENING = UNIT_HARDENING | {
    "NoExecPaths": "/",
    "ExecPaths": "/usr/bin/redis-server /usr/lib /lib",
}
# Denied by `SystemCallFilter=~@privileged @resources`; `read` proves the list was read.
SYSCALLS_DENIED = ("mount", "reboot", "setrlimit", "setpriority")


# --- helpers ---------------------------------------------------------------------------------


def instances(host) -> list[dict]:
    """redis_instances as Ansible resolves them for this host."""
    return list(expected(host, "redis_instances"))


def admin_cli(host, port: int, *args: str, db: int | None = None, stdin_cmds: str = ""):
    """redis-cli as the admin user on the Redis host; the password comes from the env file."""
    env_file = expected(host, "redis_admin_env_file")
    user = expected(host, "redis_admin_user")
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


def admin_replies(host, port: int, commands: list[list[str]]) -> list[str]:
    """One redis-cli run for many commands whose replies are one line each (ACL DRYRUN): an
    ssh round trip and a redis-cli start per command cost ~0.15 s, 64 of them 10 s."""
    lines = "".join(" ".join(json.dumps(a) for a in cmd) + "\n" for cmd in commands)
    result = admin_cli(host, port, stdin_cmds=lines)
    replies = result.stdout.splitlines()
    assert result.rc == 0 and len(replies) == len(commands), (
        f"{hostname(host)}: redis-cli -p {port}: {len(commands)} commands, replies {replies[:5]}"
    )
    return replies


def config_get(host, port: int, name: str) -> str:
    lines = admin_out(host, port, "CONFIG", "GET", name).splitlines()
    return lines[1] if len(lines) > 1 else ""


def config_get_many(host, port: int, names: list[str]) -> dict[str, str]:
    """One CONFIG GET for many parameters (Redis 7): {name: value} of those it knows."""
    result = admin_cli(host, port, "CONFIG", "GET", *names)
    assert result.rc == 0, f"{hostname(host)}: redis-cli -p {port} CONFIG GET: {result.stderr}"
    lines = result.stdout.removesuffix("\n").split("\n")  # an empty value is an empty line
    return dict(zip(lines[::2], lines[1::2], strict=True))


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


def expected_directives(host, inst: dict) -> dict[str, str]:
    """Every directive the role sets for an instance, as CONFIG GET spells it."""
    persistent = inst["persistence"] == "aof_rdb"
    data_dir = f"{expected(host, 'redis_data_root')}/{inst['name']}"
    want = {
        "port": str(inst["port"]),
        "bind": " ".join(expected(host, "redis_bind_addresses")),
        "protected-mode": "yes" if expected(host, "redis_protected_mode") else "no",
        "tcp-backlog": str(expected(host, "redis_tcp_backlog")),
        "tcp-keepalive": str(expected(host, "redis_tcp_keepalive")),
        "timeout": str(expected(host, "redis_timeout")),
        "maxclients": str(expected(host, "redis_maxclients")),
        "supervised": "systemd",
        "daemonize": "no",
        "loglevel": str(expected(host, "redis_loglevel")),
        "databases": str(inst.get("databases", 16)),
        "dir": data_dir,
        "maxmemory": str(int(inst.get("maxmemory_mb", 0)) * MIB),
        "maxmemory-policy": inst.get("maxmemory_policy", "noeviction"),
        "appendonly": "yes" if persistent else "no",
        "save": expected(host, "redis_rdb_save") if persistent else "",
    }
    if persistent:
        want |= {
            "appendfsync": expected(host, "redis_aof_fsync"),
            "dbfilename": "dump.rdb",
            "rdbcompression": "yes",
            "rdbchecksum": "yes",
            "stop-writes-on-bgsave-error": "yes",
            "appendfilename": "appendonly.aof",
            "appenddirname": "appendonlydir",
            "aof-use-rdb-preamble": "yes",
        }
    want |= {str(k): str(v) for k, v in (inst.get("settings") or {}).items()}
    return want


# --- provisioning ----------------------------------------------------------------------------


def test_units_match_inventory(host):
    """Exactly one enabled, running redis@<name> per resolved instance; the distro unit masked."""
    wanted = sorted(f"redis@{i['name']}.service" for i in instances(host))
    out = host.check_output("systemctl list-units 'redis@*' --plain --no-legend --no-pager")
    running = sorted(line.split()[0] for line in out.splitlines() if " running" in line)
    problems = [] if running == wanted else [mismatch(host, "running units", wanted, running)]
    for unit in wanted:
        if not host.service(unit).is_enabled:
            problems.append(mismatch(host, f"{unit} enabled", True, False))
    distro = expected(host, "redis_distro_unit")
    state = host.run(f"systemctl is-enabled {distro}").stdout.strip()
    if state != "masked":
        problems.append(mismatch(host, f"{distro} is-enabled", "masked", state))
    if host.service(distro).is_running:
        problems.append(mismatch(host, f"{distro} running", False, True))
    assert_no_mismatches(problems)


def test_listening_only_where_configured(host):
    """Each port listens on exactly the bind addresses, with the backlog raised by somaxconn."""
    bind = expected(host, "redis_bind_addresses")
    somaxconn = int(host.check_output("sysctl -n net.core.somaxconn"))
    backlog = min(int(expected(host, "redis_tcp_backlog")), somaxconn)
    listening: dict[int, dict[str, int]] = {}
    for line in host.check_output("ss -ltnH").splitlines():
        _state, _recv, send_q, local, *_ = line.split()
        addr, _, port = local.rpartition(":")
        listening.setdefault(int(port), {})[addr.strip("[]")] = int(send_q)
    problems = []
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
    """CONFIG GET (admin user) returns every directive the role sets, as resolved."""
    problems = []
    for inst in instances(host):
        directives = expected_directives(host, inst)
        live = config_get_many(host, int(inst["port"]), list(directives))
        for name, value in directives.items():
            actual = live.get(name, "")
            if actual != value:
                problems.append(mismatch(host, f"{inst['name']} CONFIG {name}", value, actual))
    assert_no_mismatches(problems)


def test_unit_hardening(host):
    """Each hardening directive of every instance's unit, as systemd loaded it."""
    private_users = "yes" if expected(host, "redis_systemd_private_users") else "no"
    allow = expected(host, "redis_systemd_ip_allow")
    want_allow = set().union(*(IP_WORDS.get(a, {a}) for a in allow)) if allow else set()
    problems = []
    for inst in instances(host):
        unit = f"redis@{inst['name']}.service"
        want = HARDENING | {
            "PrivateUsers": private_users,
            "User": expected(host, "redis_user"),
            "Group": expected(host, "redis_group"),
            "ReadWritePaths": f"{expected(host, 'redis_data_root')}/{inst['name']}",
            "LimitNOFILE": str(expected(host, "redis_limit_nofile")),
        }
        problems += check_unit_hardening(host, unit, want)
        props = unit_properties(host, unit, ["IPAddressAllow", "IPAddressDeny", "SystemCallFilter"])
        allowed = set(props.get("IPAddressAllow", "").split())
        if allowed != want_allow:
            problems.append(mismatch(host, f"{unit} IPAddressAllow", sorted(want_allow), allowed))
        denied = props.get("IPAddressDeny", "")
        if allow and set(denied.split()) != IP_WORDS["any"]:
            problems.append(mismatch(host, f"{unit} IPAddressDeny", "any", denied))
        syscalls = set(props.get("SystemCallFilter", "").split())
        for name in SYSCALLS_DENIED:
            if name in syscalls or "read" not in syscalls:
                problems.append(
                    mismatch(host, f"{unit} SystemCallFilter {name}", "denied", "allowed")
                )
    assert_no_mismatches(problems)


def test_file_modes(host):
    """Configs readable by Redis only, data directories private, the admin env file root-only."""
    user, group = expected(host, "redis_user"), expected(host, "redis_group")
    files = {expected(host, "redis_admin_env_file"): ("root", "root", 0o600)}
    for inst in instances(host):
        files[f"{expected(host, 'redis_conf_dir')}/{inst['name']}.conf"] = ("root", group, 0o640)
        files[f"{expected(host, 'redis_data_root')}/{inst['name']}"] = (user, group, 0o750)
    problems = []
    for path, have in file_owners(host, list(files)).items():
        want, actual = files[path], have or "missing"
        if actual != want:
            problems.append(mismatch(host, f"{path} owner, group, mode", want, actual))
    assert_no_mismatches(problems)


# --- replication -----------------------------------------------------------------------------


def replication_fields(host, port: int) -> dict[str, str]:
    lines = admin_out(host, port, "INFO", "replication").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def test_replicated_instances_have_one_primary_and_live_replicas(host):
    """Each replicated instance (redis_replication_hosts > 1) as INFO replication shows it: a
    primary with every other host as a replica online and within redis_replication_max_lag_s,
    or a replica whose link to a host of redis_replication_hosts is up and recent. Which host
    is the primary is the Sentinels' (test_sentinel.py checks they agree). A link that is down
    (its primary restarted a moment ago: the destructive checks do that) gets
    redis_replication_link_timeout_s to come back, as a converge does."""
    hosts = list(expected(host, "redis_replication_hosts"))
    replicated = [i for i in instances(host) if i.get("replicated")] if len(hosts) > 1 else []
    if not replicated:
        pytest.skip(f"{NOT_APPLICABLE}no replicated instance on {hostname(host)}")
    peers = {address_of(host, h) for h in hosts}
    max_lag = int(expected(host, "redis_replication_max_lag_s"))
    problems = []
    settle = int(expected(host, "redis_replication_link_timeout_s"))
    for inst in replicated:
        fields = replication_fields(host, int(inst["port"]))
        deadline = time.monotonic() + settle
        while fields.get("master_link_status") == "down" and time.monotonic() < deadline:
            time.sleep(1)
            fields = replication_fields(host, int(inst["port"]))
        role, name = fields.get("role"), inst["name"]
        if role == "master":
            online = [
                v
                for k, v in fields.items()
                if k.startswith("slave") and k[5:].isdigit() and "state=online" in v
            ]
            if len(online) != len(hosts) - 1:
                problems.append(mismatch(host, f"{name} replicas online", len(hosts) - 1, fields))
            for replica in online:
                lag = int(dict(p.split("=", 1) for p in replica.split(","))["lag"])
                if lag > max_lag:
                    problems.append(mismatch(host, f"{name} replica lag (s)", f"<= {max_lag}", lag))
        elif role == "slave":
            if fields.get("master_host") not in peers:
                want = f"one of {sorted(peers)}"
                problems.append(
                    mismatch(host, f"{name} master_host", want, fields.get("master_host"))
                )
            if fields.get("master_link_status") != "up":
                problems.append(
                    mismatch(
                        host, f"{name} master_link_status", "up", fields.get("master_link_status")
                    )
                )
            last_io = int(fields.get("master_last_io_seconds_ago", "-1"))
            if not 0 <= last_io <= max_lag:
                problems.append(
                    mismatch(
                        host, f"{name} seconds since the primary spoke", f"<= {max_lag}", last_io
                    )
                )
        else:
            problems.append(mismatch(host, f"{name} role", "master or slave", role))
    assert_no_mismatches(problems)


# --- auth ------------------------------------------------------------------------------------


def test_unauthenticated_ping_refused(host):
    problems = []
    for inst in instances(host):
        for addr in expected(host, "redis_bind_addresses"):
            out = host.run(f"redis-cli -h {addr} -p {inst['port']} PING").stdout.strip()
            if not out.startswith("NOAUTH"):
                key = f"{inst['name']} {addr}:{inst['port']} unauthenticated PING"
                problems.append(mismatch(host, key, "NOAUTH ...", out))
    assert_no_mismatches(problems)


# Realistic invocations, one or more per command category a role might allow or deny; which
# of them the app user may run is computed from the role's redis_app_acl, never listed here.
PROBES = [
    ["GET", "{key}"], ["SET", "{key}", "v"], ["SETEX", "{key}", "10", "v"], ["MGET", "{key}"],
    ["DEL", "{key}"], ["EXPIRE", "{key}", "10"], ["TTL", "{key}"], ["LPUSH", "{key}", "v"],
    ["LRANGE", "{key}", "0", "-1"], ["LTRIM", "{key}", "0", "9"], ["MULTI"], ["EXEC"],
    ["WATCH", "{key}"], ["PING"], ["INFO"], ["SELECT", "5"], ["AUTH", "u", "p"],
    ["SUBSCRIBE", "c"], ["FLUSHALL"], ["FLUSHDB"], ["CONFIG", "GET", "maxmemory"],
    ["KEYS", "*"], ["DEBUG", "SLEEP", "0"], ["SHUTDOWN"], ["ACL", "LIST"],
    ["EVAL", "return 1", "0"], ["FCALL", "f", "0"], ["FUNCTION", "DELETE", "lib"],
    ["SCRIPT", "FLUSH"], ["MOVE", "{key}", "1"], ["COPY", "{key}", "{key}2"], ["SWAPDB", "0", "1"],
]  # fmt: skip


def acl_name(cmd: list[str], categories: dict[str, set[str]]) -> str:
    """The name ACL CAT uses for a probe: `config|get` for a subcommand, else `get`."""
    sub = f"{cmd[0]}|{cmd[1]}".lower() if len(cmd) > 1 else ""
    return sub if any(sub in names for names in categories.values()) else cmd[0].lower()


def acl_allows(name: str, rules: list[str], categories: dict[str, set[str]]) -> bool:
    """Redis's reading of command rules, left to right (acl.md: "ACL rules")."""
    allowed = False
    for rule in rules:
        sign, body = rule[0], rule[1:]
        if rule in ("allcommands", "+@all"):
            allowed = True
        elif rule in ("nocommands", "-@all"):
            allowed = False
        elif sign in "+-" and body.startswith("@"):
            if name in categories[body[1:]]:
                allowed = sign == "+"
        elif sign in "+-" and body in (name, name.split("|")[0]):
            allowed = sign == "+"
    return allowed


def probed(rule: str, names: set[str], categories: dict[str, set[str]]) -> bool:
    """Some probe exercises this rule (a command of its category, or the command itself)."""
    body = rule.lstrip("+-")
    if body in ("allcommands", "nocommands", "@all"):
        return True
    if body.startswith("@"):
        return bool(names & categories[body[1:]])
    return body in {n.split("|")[0] for n in names}


def test_app_user_permissions(host):
    """Every rule of redis_app_acl holds: each probe's ACL DRYRUN verdict is what the rules,
    read as Redis reads them against its own categories (ACL CAT), say; keys outside the
    user's pattern are refused."""
    app, acl = expected(host, "redis_app_user"), expected(host, "redis_app_acl").split()
    patterns = [r[1:] for r in acl if r.startswith("~")] + (["*"] if "allkeys" in acl else [])
    rules = [r for r in acl if r[0] in "+-" or r in ("allcommands", "nocommands")]
    port = int(instances(host)[0]["port"])
    cats = {r[2:] for r in rules if r[1:].startswith("@") and r[2:] != "all"}
    categories = {c: set(admin_out(host, port, "ACL", "CAT", c).split()) for c in cats}
    inside = patterns[0].replace("*", "probe") if patterns else "probe"
    names = {acl_name(cmd, categories) for cmd in PROBES}
    unprobed = [r for r in rules if not probed(r, names, categories)]
    assert not unprobed, f"{hostname(host)}: rules of redis_app_acl no probe covers: {unprobed}"
    probes = []  # (what, args, allowed)
    for cmd in PROBES:
        # a key command needs a key pattern at all
        want = acl_allows(acl_name(cmd, categories), rules, categories) and (
            bool(patterns) or "{key}" not in cmd
        )
        keys = [("inside", inside, want)]
        if "{key}" in cmd and not any(fnmatch.fnmatchcase("outside:probe", p) for p in patterns):
            keys.append(("outside", "outside:probe", False))
        for where, key, allowed in keys:
            args = [a.replace("{key}", key) for a in cmd]
            probes.append((f"{' '.join(args)} ({where} {patterns})", args, allowed))
    problems = []
    for inst in instances(host):
        dryruns = [["ACL", "DRYRUN", app, *args] for _, args, _ in probes]
        replies = admin_replies(host, int(inst["port"]), dryruns)
        for (what, _, allowed), out in zip(probes, replies, strict=True):
            if (out == "OK") != allowed:
                problems.append(
                    mismatch(
                        host,
                        f"{inst['name']} {app}: {what}",
                        "allowed" if allowed else "denied",
                        out,
                    )
                )
    assert_no_mismatches(problems)


# Runs on an app host: connects to a Redis instance, password read from stdin (templated by
# Ansible), prints one reply per probe.
PROBE = r"""
import socket, sys
addr, user, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
password = sys.stdin.read().strip()

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def talk(port, commands):
    with socket.create_connection((addr, int(port)), timeout=5) as s:
        f = s.makefile("rb")
        replies = []
        for c in commands:
            s.sendall(resp(*c))
            replies.append(f.readline().decode().strip().split(" ")[0])
        return replies

for port in ports:
    try:
        print(port, "anon", *talk(port, [["PING"]]))
        print(port, "app", *talk(port, [["AUTH", user, password], ["PING"], ["SELECT", "5"],
                                        ["FLUSHALL"], ["CONFIG", "GET", "maxmemory"]]))
    except OSError as err:
        print(port, "error", type(err).__name__)
"""


@pytest.mark.group("app")
def test_app_user_from_app_hosts(host, request):
    """From each app host, at the address the app uses (the first redis host): the app user's
    PING works on every instance; anonymous is refused; FLUSHALL and CONFIG are refused."""
    inventory = ansible_inventory(request)
    redis_hosts = group_hosts(host, "redis")
    assert redis_hosts, f"{hostname(host)}: the inventory has no redis hosts for the app"
    addr, redis = expected(host, "app_redis_host"), resolved_of(host, redis_hosts[0])
    ports = [str(inst["port"]) for inst in redis["redis_instances"]]
    argv = ["python3", "-c", PROBE, addr, redis["redis_app_user"], *ports]
    task = {
        "name": "Probe Redis as the app user",
        "ansible.builtin.command": {"argv": argv, "stdin": "{{ redis_app_password }}"},
    }
    out = ansible_task(inventory, hostname(host), task)  # one run for every instance
    replies: dict[str, dict[str, list[str]]] = {port: {} for port in ports}
    for line in out.splitlines():
        port, who, *answers = line.split()
        replies.setdefault(port, {})[who] = answers
    want = {"anon": ["-NOAUTH"], "app": ["+OK", "+PONG", "+OK", "-NOPERM", "-NOPERM"]}
    problems = [
        mismatch(host, f"{redis_hosts[0]} {inst['name']} {addr}:{inst['port']} replies", want, got)
        for inst in redis["redis_instances"]
        if (got := replies.get(str(inst["port"]))) != want
    ]
    assert_no_mismatches(problems)


# --- behaviour -------------------------------------------------------------------------------


@pytest.mark.destructive
def test_persist_survives_restart(host):
    """A key written to each persistent instance is still there after restarting its unit."""
    persistent = [
        i
        for i in instances(host)
        if i["persistence"] == "aof_rdb"
        # a replica takes writes from its primary only (the failover drill restarts one)
        and replication_fields(host, int(i["port"])).get("role") != "slave"
    ]
    if not persistent:
        pytest.skip(f"{NOT_APPLICABLE}no persistent instance that takes writes (replicas only)")
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


@pytest.mark.destructive
def test_cache_evicts_under_memory_pressure(host):
    """With a small temporary maxmemory, writes to an evicting instance succeed and keys are
    evicted instead of OOM errors. maxmemory is restored and the test keys removed."""
    evicting = [
        i for i in instances(host) if str(i.get("maxmemory_policy", "")).startswith("allkeys-")
    ]
    if not evicting:
        pytest.skip(f"{NOT_APPLICABLE}no instance with an allkeys-* eviction policy")
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


# --- exporters -------------------------------------------------------------------------------


def acl_log_denials(host, port: int, user: str) -> int:
    """Entries of the instance's ACL LOG where Redis refused `user` a command, key or channel.
    A failed AUTH (reason `auth`) is not one: it is what a rotated password leaves until the
    converge restarts the client, and the scrape's redis_up says whether it still fails."""
    lines = admin_out(host, port, "ACL", "LOG", "128").splitlines()
    entries: list[dict[str, str]] = []
    for key, value in zip(lines[::2], lines[1::2], strict=False):  # field, value, field, ...
        if key == "count":  # the first field of each entry
            entries.append({})
        if entries:
            entries[-1][key] = value
    return sum(1 for e in entries if e.get("username") == user and e.get("reason") != "auth")


def test_exporters(host):
    """One redis-exporter@<name> per instance: running, on redis_exporter_listen_address and its
    port alone, reachable from loopback and redis_exporter_allowed_clients only, hardened, its
    password in a root-only file. Its ACL user reads no key and writes none, runs INFO and
    PING, and Redis never refused the exporter a command (ACL LOG)."""
    if not expected(host, "redis_exporter_enabled"):
        pytest.skip(f"{NOT_APPLICABLE}redis_exporter_enabled is false")
    user = expected(host, "redis_exporter_user")
    address = expected(host, "redis_exporter_listen_address")
    ports = expected(host, "redis_exporter_ports")
    peers = list(expected(host, "redis_exporter_allowed_clients"))
    allow = {"127.0.0.0/8", "::1/128"} | {p if "/" in p else f"{p}/32" for p in peers}
    binary = expected(host, "redis_exporter_binary")
    hardening = UNIT_HARDENING | {"NoExecPaths": "/", "ExecPaths": f"{binary} /usr/lib /lib"}
    problems = []
    for inst in instances(host):
        name, port = inst["name"], int(inst["port"])
        unit = f"redis-exporter@{name}.service"
        if not host.service(unit).is_running or not host.service(unit).is_enabled:
            problems.append(mismatch(host, f"{unit} running and enabled", True, False))
        want = {f"{address}:{ports[name]}"}
        seen = set(unit_listeners(host, unit))
        if seen != want:
            problems.append(mismatch(host, f"{unit} listeners", sorted(want), sorted(seen)))
        have = set(unit_properties(host, unit, ["IPAddressAllow"])["IPAddressAllow"].split())
        if have != allow:
            problems.append(mismatch(host, f"{unit} IPAddressAllow", sorted(allow), sorted(have)))
        problems += check_unit_hardening(host, unit, hardening)
        env = host.file(f"{expected(host, 'redis_exporter_env_dir')}/{name}.env")
        if (env.user, env.mode) != ("root", 0o600):
            problems.append(
                mismatch(
                    host, f"{env.path} owner, mode", ("root", "0o600"), (env.user, oct(env.mode))
                )
            )
        probes = (
            (("GET", "slakit:probe"), False),
            (("SET", "slakit:probe", "x"), False),
            (("KEYS", "*"), False),
            (("CONFIG", "GET", "maxmemory"), False),
            (("INFO", "memory"), True),
            (("PING",), True),
        )
        verdicts = admin_replies(host, port, [["ACL", "DRYRUN", user, *a] for a, _ in probes])
        for (args, allowed), verdict in zip(probes, verdicts, strict=True):
            if (verdict == "OK") != allowed:
                key = f"{name} ACL DRYRUN {user} {' '.join(args)}"
                problems.append(mismatch(host, key, "OK" if allowed else "refused", verdict))
        denied = acl_log_denials(host, port, user)
        if denied:
            problems.append(mismatch(host, f"{name} ACL LOG entries of {user}", 0, denied))
    assert_no_mismatches(problems)

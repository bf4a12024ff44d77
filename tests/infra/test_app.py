"""app: the unit, its master and workers, releases, the environment file, the listeners and who
may connect to them, the app's own limits.

Expected values: the app_* variables as Ansible resolves them for the host (the worker count
from its CPUs, the backlog from the somaxconn host_tuning applies) and the inventory's groups
(who is a load balancer). Actual values: the live processes and listeners, `systemctl show`,
the gunicorn config file the master read, connections tried from every inventory host.
"""

from __future__ import annotations

import ast
import ipaddress
import json
from functools import cache

import pytest
from conftest import (
    UNIT_HARDENING,
    ansible_inventory,
    assert_no_mismatches,
    check_unit_hardening,
    expected,
    exposure,
    group_hosts,
    hostname,
    mismatch,
    resolved_of,
    unit_listeners,
    unit_pids,
    unit_properties,
)

from slakit.ansible import run_plays

pytestmark = pytest.mark.group("app")
MAX_EXPOSURE = 2.0  # systemd-analyze security goal for the app unit (role README)
# The gunicorn settings the role sets, each from its role variable.
GUNICORN = {
    "workers": "app_workers",
    "worker_class": "app_worker_class",
    "backlog": "app_backlog",
    "keepalive": "app_keepalive",
    "timeout": "app_timeout",
    "graceful_timeout": "app_graceful_timeout",
    "max_requests": "app_max_requests",
    "max_requests_jitter": "app_max_requests_jitter",
    "forwarded_allow_ips": "app_forwarded_allow_ips",
    "loglevel": "app_loglevel",
}


# A bounded TCP connect run on another host: "connected" or the error's name.
# Connects to every address:port of argv at once (a dropped one waits out its timeout, so
# probing them one after another would add the timeouts up); prints "address:port outcome".
CONNECT_PROBE = (
    "import socket, sys\n"
    "from concurrent.futures import ThreadPoolExecutor\n"
    "def connect(target):\n"
    "    address, port = target.rsplit(':', 1)\n"
    "    try:\n"
    "        socket.create_connection((address, int(port)), timeout=3).close()\n"
    "        return 'connected'\n"
    "    except OSError as err:\n"
    "        return type(err).__name__\n"
    "with ThreadPoolExecutor(len(sys.argv) - 1) as pool:\n"
    "    for target, outcome in zip(sys.argv[1:], pool.map(connect, sys.argv[1:])):\n"
    "        print(target, outcome)\n"
)
MEMORY_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@pytest.fixture
def app(host):
    name = expected(host, "app_name")
    return {
        "name": name,
        "unit": f"{name}.service",
        "socket": f"{name}.socket",
        "root": expected(host, "app_root"),
        "user": expected(host, "app_user"),
        "env_file": expected(host, "app_env_file"),
        "conf": f"{expected(host, 'app_config_dir')}/gunicorn.conf.py",
        "port": int(expected(host, "app_port")),
    }


def listen_addresses(host) -> list[str]:
    """The private address (app_bind_host) and loopback, as `address` ([v6] wrapped)."""
    addresses = dict.fromkeys([expected(host, "app_bind_host"), "127.0.0.1"])
    return [f"[{a}]" if ":" in a else a for a in addresses]


def gunicorn_settings(host, app) -> dict[str, object]:
    """The top-level `name = literal` settings of the gunicorn config on the host."""
    tree = ast.parse(host.file(app["conf"]).content_string)
    settings: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    settings[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return settings


def test_unit_enabled_and_running(host, app):
    service = host.service(app["unit"])
    assert service.is_enabled, f"{hostname(host)}: {app['unit']} is not enabled"
    assert service.is_running, f"{hostname(host)}: {app['unit']} is not running"


def test_unit_settings(host, app):
    """The unit as systemd loaded it: notify, mixed kill, the app user, reload by HUP."""
    names = ["Type", "KillMode", "User", "TimeoutStopUSec", "ExecReload", "EnvironmentFiles"]
    props = unit_properties(host, app["unit"], [*names, "WorkingDirectory", "ExecStart"])
    current = f"{app['root']}/current"
    want = {
        "Type": "notify",
        "KillMode": "mixed",
        "User": app["user"],
        "WorkingDirectory": current,
        "TimeoutStopUSec": f"{int(expected(host, 'app_stop_timeout'))}s",
    }
    problems = [
        mismatch(host, f"{app['unit']} {k}", v, props.get(k))
        for k, v in want.items()
        if props.get(k) != v
    ]
    if not ("kill" in props["ExecReload"] and "-HUP" in props["ExecReload"]):
        problems.append(mismatch(host, "ExecReload", "kill -HUP $MAINPID", props["ExecReload"]))
    if app["env_file"] not in props["EnvironmentFiles"]:
        problems.append(
            mismatch(host, "EnvironmentFiles", app["env_file"], props["EnvironmentFiles"])
        )
    if f"--chdir {current}" not in props["ExecStart"]:
        problems.append(mismatch(host, "ExecStart", f"--chdir {current}", props["ExecStart"]))
    assert_no_mismatches(problems)


def test_gunicorn_settings(host, app):
    """Every gunicorn setting the role sets, in the config the master read."""
    settings = gunicorn_settings(host, app)
    problems = [
        mismatch(host, f"gunicorn {key}", expected(host, var), settings.get(key))
        for key, var in GUNICORN.items()
        if str(settings.get(key)) != str(expected(host, var))
    ]
    bind = [f"{address}:{app['port']}" for address in listen_addresses(host)]
    if settings.get("bind") != bind:
        problems.append(mismatch(host, "gunicorn bind", bind, settings.get("bind")))
    assert_no_mismatches(problems)


def test_master_and_workers(host, app):
    """The master and exactly app_workers live uvicorn workers, all under the app user."""
    workers = int(expected(host, "app_workers"))
    master = int(host.check_output(f"systemctl show -p MainPID --value {app['unit']}"))
    assert master > 0
    uid = host.user(app["user"]).uid
    rows = {}
    for pid in unit_pids(host, app["unit"]):
        out = host.run(f"ps -o uid=,ppid=,args= -p {pid}")
        if out.rc == 0 and out.stdout.strip():
            puid, ppid, args = out.stdout.split(None, 2)
            rows[pid] = (int(puid), int(ppid), args)
    children = [p for p, (_, ppid, _) in rows.items() if ppid == master]
    assert len(children) == workers, mismatch(
        host, "gunicorn workers (live)", workers, len(children)
    )
    wrong = {p: r[0] for p, r in rows.items() if r[0] != uid}
    assert not wrong, f"{hostname(host)}: processes not run by {app['user']} (uid {uid}): {wrong}"
    assert all("gunicorn" in rows[p][2] for p in [master, *children])


def test_current_points_to_newest_release(host, app):
    current = host.file(f"{app['root']}/current")
    assert current.is_symlink
    target = current.linked_to
    assert target.startswith(f"{app['root']}/releases/")
    assert host.file(f"{target}/REVISION").exists, f"{target} has no REVISION"
    assert host.file(f"{target}/venv/bin/gunicorn").exists
    listing = host.check_output(
        f"find {app['root']}/releases -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\\n'"
    )
    newest = max((line.split() for line in listing.splitlines()), key=lambda x: float(x[0]))[1]
    assert newest == target, f"{hostname(host)}: current -> {target}, newest release is {newest}"
    keep = int(expected(host, "app_keep_releases"))
    releases = len(listing.splitlines())
    assert releases <= keep, mismatch(host, "releases kept", f"<= {keep}", releases)
    revision = host.file(f"{target}/REVISION").content_string
    assert f"release: {target.rsplit('/', 1)[1]}" in revision


def test_env_file_mode_and_owner(host, app):
    env = host.file(app["env_file"])
    assert env.exists
    actual = (env.user, env.mode)
    assert actual == (app["user"], 0o600), mismatch(
        host, f"{app['env_file']} owner, mode", (app["user"], 0o600), actual
    )
    # only the names leave the host: the values are secrets
    names = host.check_output(f"sed -n 's/^\\([A-Z_][A-Z0-9_]*\\)=.*/\\1/p' {app['env_file']}")
    keys = set(names.split())
    want = {
        "REDIS_URL",
        "REDIS_PERSIST_URL",
        "SLAKIT_TOKEN_SECRET",
        "SLAKIT_USERS",
        "SLAKIT_MAX_BODY_BYTES",
        "SLAKIT_OPENAPI_DOCS",
        "SLAKIT_CONVERSATION_MAX_TURNS",
        "SLAKIT_CONVERSATION_MAX_SESSIONS",
        "SLAKIT_CONVERSATION_TTL_SECONDS",
    }
    assert want <= keys, f"{hostname(host)}: {app['env_file']} lacks {sorted(want - keys)}"


def test_running_master_started_after_its_config_was_written(host, app):
    """A change to the environment file or the unit is only live once the master restarts: a
    file newer than the running master is a configuration (a rotated secret, say) written but
    never activated."""
    unit_file = f"/etc/systemd/system/{app['unit']}"
    started = host.check_output(
        f'date -d "$(systemctl show -p ExecMainStartTimestamp --value {app["unit"]})" +%s'
    )
    for path in (app["env_file"], unit_file):
        written = host.check_output(f"stat -c %Y {path}")
        assert int(written) <= int(started), mismatch(
            host, f"{path} written (epoch s)", f"<= the master's start {started}", written
        )


def test_listens_where_configured(host, app):
    """The socket unit holds exactly the private address and loopback on app_port, with the
    backlog capped by somaxconn; the app unit itself opens no listener of its own."""
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string)
    backlog = min(int(expected(host, "app_backlog")), somaxconn)
    seen = unit_listeners(host, app["socket"])
    want = {f"{address}:{app['port']}": backlog for address in listen_addresses(host)}
    assert seen == want, mismatch(host, f"{app['socket']} listeners", want, seen)
    own = unit_listeners(host, app["unit"])
    assert not own, mismatch(host, f"{app['unit']} listeners of its own", {}, own)
    assert host.service(app["socket"]).is_enabled, f"{hostname(host)}: {app['socket']} disabled"


def test_socket_filter_as_loaded(host, app):
    """IPAddressDeny=any and IPAddressAllow=loopback + app_allowed_clients +
    app_metrics_allowed_clients on the socket unit; the app unit has no filter (its connections
    to Redis are not restricted by one)."""
    props = unit_properties(host, app["socket"], ["IPAddressDeny", "IPAddressAllow"])
    clients = [*expected(host, "app_allowed_clients")]
    clients += expected(host, "app_metrics_allowed_clients")
    nets = [ipaddress.ip_network(c, strict=False) for c in clients]
    want_allow = {str(n) for n in nets} | {"127.0.0.0/8", "::1/128"}
    problems = []
    if set(props["IPAddressDeny"].split()) != {"0.0.0.0/0", "::/0"}:
        problems.append(mismatch(host, "IPAddressDeny", "any", props["IPAddressDeny"]))
    if set(props["IPAddressAllow"].split()) != want_allow:
        problems.append(
            mismatch(host, "IPAddressAllow", sorted(want_allow), props["IPAddressAllow"])
        )
    service = unit_properties(host, app["unit"], ["IPAddressDeny", "IPAddressAllow"])
    if service["IPAddressDeny"] or service["IPAddressAllow"]:
        problems.append(mismatch(host, f"{app['unit']} IP filter", "none", service))
    assert_no_mismatches(problems)


@cache
def connects_from(inventory: str, sources: tuple[str, ...], targets: tuple[str, ...]) -> dict:
    """{source: {"address": its ansible_host, target: outcome}}: one play in which every source
    connects to every target ("address:port") at once; shared by the app hosts' checks."""
    play = {
        "name": "Connect to the app ports",
        "hosts": ",".join(sources),
        "gather_facts": False,
        "tasks": [
            {
                "name": "Connect",
                "ansible.builtin.command": {"argv": ["python3", "-c", CONNECT_PROBE, *targets]},
                "changed_when": False,
            },
            {
                "name": "Address",
                "ansible.builtin.debug": {
                    "msg": "{{ ansible_host | default(inventory_hostname) }}"
                },
            },
        ],
    }
    out = run_plays(inventory, [play], timeout=120)
    seen: dict[str, dict[str, str]] = {h: {} for h in sources}
    for t in out["plays"][0]["tasks"]:
        for h, r in t["hosts"].items():
            if t["task"]["name"] == "Address":
                seen[h]["address"] = str(r.get("msg", ""))
            else:
                seen[h].update(line.split(" ", 1) for line in r.get("stdout_lines", []))
    return seen


def test_app_port_reached_only_from_load_balancers(host, app, request):
    """A connect from every inventory host to this host's private address: accepted from each
    host of the LB group and from each scraper in app_metrics_allowed_clients (the monitoring
    hosts), refused or dropped from every other (this host included)."""
    target = f"{expected(host, 'app_bind_host')}:{app['port']}"
    sources = tuple(sorted(set(group_hosts(host, "all"))))
    lbs = set(group_hosts(host, "lb"))
    scrapers = [
        ipaddress.ip_network(str(c), strict=False)
        for c in expected(host, "app_metrics_allowed_clients")
    ]
    every_app_port = tuple(
        sorted(
            f"{resolved_of(host, h)['app_bind_host']}:{resolved_of(host, h)['app_port']}"
            for h in group_hosts(host, "app")
        )
    )
    seen = connects_from(ansible_inventory(request), sources, every_app_port)
    outcomes = {h: seen[h].get(target, "failed") for h in sources}

    def scraper(h: str) -> bool:
        try:
            ip = ipaddress.ip_address(seen[h].get("address", ""))
        except ValueError:
            return False
        return any(ip in net for net in scrapers)

    want = {h: "connected" if h in lbs or scraper(h) else "not connected" for h in sources}
    got = {h: "connected" if outcomes[h] == "connected" else "not connected" for h in sources}
    assert lbs, f"{hostname(host)}: the inventory has no lb group: the app port would be unused"
    assert got == want, mismatch(host, f"connects to {target}", want, outcomes)


def test_memory_max(host, app):
    """MemoryMax of the unit as systemd loaded it (bytes), from app_memory_max."""
    value = str(expected(host, "app_memory_max"))
    loaded = unit_properties(host, app["unit"], ["MemoryMax"])["MemoryMax"]
    if value == "infinity":
        want = "infinity"
    elif value.endswith("%"):  # a share of the host's memory: systemd computes the bytes
        want = loaded if loaded.isdigit() else f"bytes ({value} of host memory)"
    elif value[-1] in MEMORY_UNITS:
        want = str(int(value[:-1]) * MEMORY_UNITS[value[-1]])
    else:
        want = value
    assert loaded == want, mismatch(host, f"{app['unit']} MemoryMax", want, loaded)


def test_app_limits_over_loopback(host, app):
    """The app itself: a body over app_max_body_bytes gets 413, a body at it does not; the
    OpenAPI pages answer only with app_openapi_docs."""
    limit = int(expected(host, "app_max_body_bytes"))
    docs = bool(expected(host, "app_openapi_docs"))
    probe = (
        "import json, sys, urllib.error, urllib.request\n"
        "base, limit = sys.argv[1], int(sys.argv[2])\n"
        "def status(path, body=None):\n"
        "    req = urllib.request.Request(base + path, data=body,\n"
        "                                 headers={'content-type': 'application/json'})\n"
        "    try:\n"
        "        with urllib.request.urlopen(req, timeout=10) as r:\n"
        "            return r.status\n"
        "    except urllib.error.HTTPError as err:\n"
        "        return err.code\n"
        "def body(size):\n"
        '    head = b\'{"data_source": "sales", "insight_type": "forecast", "pad": "\'\n'
        "    return head + b'x' * (size - len(head) - 2) + b'\"}'\n"
        "print(json.dumps({\n"
        "     'at_limit': status('/api/v1/ai/insights', body(limit)),\n"
        "    'over_limit': status('/api/v1/ai/insights', body(limit + 1)),\n"
        "    **{p: status(p) for p in ('/docs', '/redoc', '/openapi.json')},\n"
        "}))\n"
    )
    seen = json.loads(
        host.check_output(
            "python3 -c %s %s %s", probe, f"http://127.0.0.1:{app['port']}", str(limit)
        )
    )
    page = 200 if docs else 404
    want = {
        "at_limit": 200,
        "over_limit": 413,
        "/docs": page,
        "/redoc": page,
        "/openapi.json": page,
    }
    assert seen == want, mismatch(host, "app limits (loopback)", want, seen)


def test_health_answers_from_every_worker(host, app):
    probe = (
        "import json, urllib.request\n"
        "seen = set()\n"
        "for _ in range(40):\n"
        f"    url = 'http://127.0.0.1:{app['port']}{expected(host, 'app_health_path')}'\n"
        "    with urllib.request.urlopen(url, timeout=5) as r:\n"
        "        assert r.status == 200\n"
        "        seen.add(json.load(r)['pid'])\n"
        "print(json.dumps(sorted(seen)))\n"
    )
    out = host.check_output("python3 -c %s", probe)
    assert json.loads(out), "no health answer"


def test_unit_hardening(host, app):
    """Each hardening directive of the app unit, as systemd loaded it, and the overall score."""
    want = UNIT_HARDENING | {"ReadWritePaths": f"{app['root']}/shared"}
    problems = check_unit_hardening(host, app["unit"], want)
    score = exposure(host, app["unit"])
    if score > MAX_EXPOSURE:
        problems.append(mismatch(host, f"{app['unit']} exposure", f"<= {MAX_EXPOSURE}", score))
    assert_no_mismatches(problems)

"""app: the unit, its master and workers, releases, the environment file, the listener.

Expected values: the app_* variables as Ansible resolves them for the host (the worker count
from its CPUs, the backlog from the somaxconn host_tuning applies). Actual values: the live
processes and listeners, `systemctl show`, and the gunicorn config file the master read.
"""

from __future__ import annotations

import ast
import json

import pytest
from conftest import (
    UNIT_HARDENING,
    assert_no_mismatches,
    check_unit_hardening,
    expected,
    exposure,
    hostname,
    mismatch,
    unit_listeners,
    unit_pids,
    unit_properties,
)

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


@pytest.fixture
def app(host):
    name = expected(host, "app_name")
    return {
        "name": name,
        "unit": f"{name}.service",
        "root": expected(host, "app_root"),
        "user": expected(host, "app_user"),
        "env_file": expected(host, "app_env_file"),
        "conf": f"{expected(host, 'app_config_dir')}/gunicorn.conf.py",
        "port": int(expected(host, "app_port")),
    }


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
    bind = [f"{expected(host, 'app_bind_host')}:{app['port']}"]
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
    want = {"REDIS_URL", "REDIS_PERSIST_URL", "SLAKIT_TOKEN_SECRET", "SLAKIT_USERS"}
    assert want <= keys, f"{hostname(host)}: {app['env_file']} lacks {sorted(want - keys)}"


def test_listens_where_configured(host, app):
    """gunicorn listens on app_bind_host:app_port with its backlog capped by somaxconn."""
    bind = expected(host, "app_bind_host")
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string)
    backlog = min(int(expected(host, "app_backlog")), somaxconn)
    seen = unit_listeners(host, app["unit"])
    want = {f"{bind}:{app['port']}": backlog}
    assert seen == want, mismatch(host, f"{app['unit']} listeners", want, seen)


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

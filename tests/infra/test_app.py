"""app: the unit, its master and workers, releases, the environment file, the listener.

Expected values: the inventory's app_* variables, else the role defaults; values the role
computes on the host (worker count from CPUs, timeouts) are read from the gunicorn config it
rendered there, which is the file the running master read.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import expected_var, hostname, is_templated, require_group, unit_pids

ROLE = "app"
MAX_EXPOSURE = 2.0  # systemd-analyze security goal for the app unit (role README)


@pytest.fixture
def app(host):
    require_group(host, "app")
    name = expected_var(host, ROLE, "app_name")
    assert not is_templated(name), "app_name must be a plain string"
    root = expected_var(host, ROLE, "app_root")
    root = f"/opt/{name}" if is_templated(root) else root
    user = expected_var(host, ROLE, "app_user")
    user = name if is_templated(user) else user
    env_file = expected_var(host, ROLE, "app_env_file")
    env_file = f"/etc/{name}/{name}.env" if is_templated(env_file) else env_file
    return {
        "name": name,
        "unit": f"{name}.service",
        "root": root,
        "user": user,
        "env_file": env_file,
        "conf": f"/etc/{name}/gunicorn.conf.py",
    }


def gunicorn_setting(host, app, key: str) -> str:
    text = host.file(app["conf"]).content_string
    match = re.search(rf"^{key} = (.+)$", text, re.M)
    assert match, f"{hostname(host)}: {key} missing from {app['conf']}"
    return match.group(1).strip().strip('"')


def test_unit_enabled_and_running(host, app):
    service = host.service(app["unit"])
    assert service.is_enabled, f"{hostname(host)}: {app['unit']} is not enabled"
    assert service.is_running, f"{hostname(host)}: {app['unit']} is not running"


def test_unit_settings(host, app):
    show = host.check_output(
        f"systemctl show {app['unit']} -p Type -p KillMode -p User -p TimeoutStopUSec "
        "-p ExecReload -p EnvironmentFiles -p WorkingDirectory -p ExecStart"
    )
    props = dict(line.split("=", 1) for line in show.splitlines() if "=" in line)
    assert props["Type"] == "notify"
    assert props["KillMode"] == "mixed"
    assert props["User"] == app["user"]
    assert "kill" in props["ExecReload"] and "-HUP" in props["ExecReload"]
    assert app["env_file"] in props["EnvironmentFiles"]
    assert f"--chdir {app['root']}/current" in props["ExecStart"]
    graceful = int(gunicorn_setting(host, app, "graceful_timeout"))
    stop = props["TimeoutStopUSec"]
    seconds = int(stop[:-1]) if stop.endswith("s") else 60 * int(stop.split("min")[0])
    assert seconds > graceful, f"TimeoutStopSec {stop} must exceed graceful_timeout {graceful}s"


def test_master_and_workers(host, app):
    """The master and exactly `workers` uvicorn workers, all under the app user."""
    workers = int(gunicorn_setting(host, app, "workers"))
    assert gunicorn_setting(host, app, "worker_class") == "uvicorn_worker.UvicornWorker"
    master = int(host.check_output(f"systemctl show -p MainPID --value {app['unit']}"))
    assert master > 0
    pids = unit_pids(host, app["unit"])
    uid = host.user(app["user"]).uid
    rows = {}
    for pid in pids:
        out = host.run(f"ps -o uid=,ppid=,args= -p {pid}")
        if out.rc == 0 and out.stdout.strip():
            puid, ppid, args = out.stdout.split(None, 2)
            rows[pid] = (int(puid), int(ppid), args)
    children = [p for p, (_, ppid, _) in rows.items() if ppid == master]
    assert len(children) == workers, (
        f"{hostname(host)}: {len(children)} workers under master {master}, config says {workers}"
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
    keep = expected_var(host, ROLE, "app_keep_releases")
    assert len(listing.splitlines()) <= int(keep)
    revision = host.file(f"{target}/REVISION").content_string
    assert f"release: {target.rsplit('/', 1)[1]}" in revision


def test_env_file_mode_and_owner(host, app):
    env = host.file(app["env_file"])
    assert env.exists
    assert env.mode == 0o600, f"{app['env_file']} mode {oct(env.mode)}"
    assert env.user == app["user"]
    keys = {
        line.split("=", 1)[0]
        for line in env.content_string.splitlines()
        if "=" in line and not line.startswith("#")
    }
    expected = {
        "REDIS_URL",
        "REDIS_PERSIST_URL",
        "SLAKIT_TOKEN_SECRET",
        "SLAKIT_USERS",
        "SLAKIT_STATS_DIR",
    }
    assert expected <= keys, f"missing {sorted(expected - keys)}"


def test_listens_on_app_port(host, app):
    bind = gunicorn_setting(host, app, "bind").strip("[]").strip('"')
    address, port = bind.rsplit(":", 1)
    assert host.socket(f"tcp://{address}:{port}").is_listening
    # ss -e: the socket's cgroup, visible even where another user's /proc is not.
    listeners = host.check_output(f"ss -Htlne 'sport = :{port}'").splitlines()
    owners = {re.search(r"cgroup:(\S+)", line).group(1).rsplit("/", 1)[-1] for line in listeners}
    assert owners == {app["unit"]}, f"{hostname(host)}: port {port} held by {owners}"


def test_health_answers_from_every_worker(host, app):
    port = gunicorn_setting(host, app, "bind").rsplit(":", 1)[1].strip('"]')
    probe = (
        "import json, urllib.request\n"
        "seen = set()\n"
        "for _ in range(40):\n"
        f"    url = 'http://127.0.0.1:{port}/api/v1/health'\n"
        "    with urllib.request.urlopen(url, timeout=5) as r:\n"
        "        assert r.status == 200\n"
        "        seen.add(json.load(r)['pid'])\n"
        "print(json.dumps(sorted(seen)))\n"
    )
    out = host.check_output("python3 -c %s", probe)
    assert json.loads(out), "no health answer"


def test_systemd_security_exposure(host, app):
    out = host.check_output(f"systemd-analyze security {app['unit']} --no-pager | tail -1")
    match = re.search(r"exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    assert float(match.group(1)) <= MAX_EXPOSURE, out


def test_listen_backlog_follows_somaxconn(host, app):
    """gunicorn's listen queue (ss Send-Q) is its backlog setting, capped by somaxconn."""
    backlog = int(gunicorn_setting(host, app, "backlog"))
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string)
    port = gunicorn_setting(host, app, "bind").strip("[]").strip('"').rsplit(":", 1)[1]
    queues = {
        int(line.split()[2])
        for line in host.check_output(f"ss -Hltn 'sport = :{port}'").splitlines()
    }
    expected = min(backlog, somaxconn)
    assert queues == {expected}, (
        f"{hostname(host)}: gunicorn listen backlog: expected {expected}, actual {queues}"
    )
    assert backlog >= somaxconn, (
        f"{hostname(host)}: gunicorn backlog {backlog} is below net.core.somaxconn {somaxconn}"
    )

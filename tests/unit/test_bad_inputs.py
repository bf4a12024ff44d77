"""The battery of bad inputs (README, "Bad input"): each row is refused by the offline preflight
of a staging inventory with one line naming the file, host or variable, exit 2, before any
host is contacted. One case per row of the README table, in the same order.

One project copy with a real vault and a good throwaway certificate for lb-1 is the start of
every case; each case breaks a copy of it of its own (its staging inventory or certificate).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_preflight import invoke, make_vault, one_line_error, project_copy

from slakit.lab.tls import SERVER_DAYS, ensure_tls

STAGING = Path("inventories/staging")
REDIS_1 = "        redis-1:\n          ansible_host: 192.0.2.31\n"
# Where staging's group_vars/lb/tls.yml looks for lb-1's certificate and key.
LB_TLS = Path("tls/staging")
PARALLEL_CASES = 3


def lb_certificate(
    copy: Path, address: str = "192.0.2.10", age_days: int = 0, other_key: bool = False
) -> None:
    """lb-1's certificate and key (0600) where staging looks for them, made by the lab's own
    generator for the names lb-1 and `address`, issued `age_days` ago (the server certificate
    lives SERVER_DAYS); with other_key, the key beside it is not the certificate's."""
    made = Path(tempfile.mkdtemp(prefix=".tls-", dir=copy))  # never reuses what a copy holds
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days)
    ensure_tls({"lb-1": address}, made / "lb", now=issued)
    directory = copy / LB_TLS
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(made / "lb/lb-1.crt", directory / "lb-1.crt")
    if other_key:
        ensure_tls({"lb-1": address}, made / "other", now=issued)
    key = made / ("other" if other_key else "lb") / "lb-1.key"
    (directory / "lb-1.key").unlink(missing_ok=True)
    shutil.copy(key, directory / "lb-1.key")  # copy keeps the 0600 of the source


def yaml_file(copy: Path, name: str, text: str) -> None:
    path = copy / STAGING / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + text)


def hosts_edit(old: str, new: str) -> Callable[[Path], None]:
    def edit(copy: Path) -> None:
        hosts = copy / STAGING / "hosts.yml"
        text = hosts.read_text()
        assert old in text, old
        hosts.write_text(text.replace(old, new, 1))

    return edit


def group_vars(name: str, text: str) -> Callable[[Path], None]:
    """A file under group_vars/; for a group with a folder there (lb: tls.yml), inside it:
    Ansible reads group_vars/<group>/ and then ignores group_vars/<group>.yml."""
    return lambda copy: yaml_file(copy, f"group_vars/{name}", text)


def host_vars(host: str, text: str) -> Callable[[Path], None]:
    return lambda copy: yaml_file(copy, f"host_vars/{host}.yml", text)


def old_python(copy: Path) -> None:
    fake = copy / "python3.8"
    fake.write_text("#!/bin/sh\necho 3.8\n")
    fake.chmod(0o755)
    yaml_file(copy, "group_vars/app/python.yml", f"app_python: {fake}\n")


def no_hosts_yml(copy: Path) -> None:
    (copy / "inventories/empty/group_vars").mkdir(parents=True)


CASES = [
    (
        "roles collide on a host",
        lambda c: (
            hosts_edit(REDIS_1, "        app-1:\n")(c),
            host_vars("app-1", "app_port: 6380\n")(c),
        ),
        "staging",
        "app-1: port 6380 is used by both app (app_port) and redis instance persist",
    ),
    (
        "an exporter on a port a role uses",
        host_vars("redis-1", "node_exporter_port: 6379\n"),
        "staging",
        "redis-1: port 6379 is used by both redis instance cache and "
        "node_exporter (node_exporter_port)",
    ),
    (
        "two hosts with one address",
        hosts_edit("ansible_host: 192.0.2.22", "ansible_host: 192.0.2.21"),
        "staging",
        "app-2: ansible_host 192.0.2.21 is also the address of app-1",
    ),
    (
        "a second Redis host without three Sentinels",
        hosts_edit("        redis-2:\n        lb-1:\n", "        redis-2:\n"),
        "staging",
        "redis-2: in group redis, so the persist instance replicates and the app finds its primary"
        " through Sentinel, but group sentinel has 2 hosts (needs at least 3",
    ),
    (
        "an empty group a playbook needs",
        hosts_edit(
            "    lb:\n      hosts:\n        lb-1:\n          ansible_host: 192.0.2.10\n", ""
        ),
        "staging",
        "group 'lb' has no hosts",
    ),
    ("an env name with a path", lambda c: None, "../lab", "an environment is a folder name"),
    ("an inventory folder without hosts.yml", no_hosts_yml, "empty", "no hosts.yml"),
    (
        "LB health path differs from the app's",
        group_vars("lb/health.yml", "loadbalancer_health_path: /healthz\n"),
        "staging",
        "lb-1: loadbalancer_health_path /healthz differs from app_health_path /api/v1/health",
    ),
    (
        "an LB server name that is not the app host",
        host_vars("app-2", "app_lb_server: web-2\n"),
        "staging",
        "app-2: app_lb_server web-2 is not a server of lb-1",
    ),
    (
        "an LB backend name that is not the app's",
        group_vars("app.yml", "app_lb_backend: web\n"),
        "staging",
        "app-1: app_lb_backend web is not loadbalancer_backend_name app of lb-1",
    ),
    (
        "drain marks where the load balancer does not look",
        host_vars("app-2", "app_lb_drain_marks_dir: /var/tmp/marks\n"),
        "staging",
        "app-2: app_lb_admin_socket /run/haproxy/admin.sock and app_lb_drain_marks_dir "
        "/var/tmp/marks must be loadbalancer_admin_socket /run/haproxy/admin.sock and "
        "loadbalancer_drain_marks_dir /run/slakit/lb-drained of lb-1",
    ),
    (
        "an app Redis user the redis role does not create",
        group_vars("app.yml", "app_redis_user: bob\n"),
        "staging",
        "app-1: app_redis_user bob is not redis_app_user app of redis-1",
    ),
    (
        "an app Redis port no instance listens on",
        group_vars("app.yml", "app_redis_persist_port: 6390\n"),
        "staging",
        "app-1: app_redis_persist_port 6390 is not a port of a Redis instance on redis-1",
    ),
    (
        "an HAProxy timeout that is not a duration",
        group_vars("lb/timeouts.yml", "loadbalancer_timeout_client: thirty\n"),
        "staging",
        "loadbalancer_timeout_client (thirty) is not an HAProxy duration",
    ),
    (
        "a missing LB certificate",
        lambda c: (c / LB_TLS / "lb-1.crt").unlink(),
        "staging",
        "lb-1.crt: no such file on the controller",
    ),
    (
        "an LB key that is not the certificate's",
        lambda c: lb_certificate(c, other_key=True),
        "staging",
        "lb-1.key is not the key of the certificate of loadbalancer_tls_cert_src",
    ),
    (
        "an expired LB certificate",
        lambda c: lb_certificate(c, age_days=SERVER_DAYS + 1),
        "staging",
        "lb-1.crt expired on ",
    ),
    (
        "an LB certificate without the host's address",
        lambda c: lb_certificate(c, address="192.0.2.99"),
        "staging",
        "lb-1.crt does not cover 192.0.2.10",
    ),
    (
        "an LB key others can read",
        lambda c: (c / LB_TLS / "lb-1.key").chmod(0o644),
        "staging",
        "lb-1.key: readable by group or others",
    ),
    (
        "a zero app timeout",
        group_vars("app.yml", "app_timeout: 0\n"),
        "staging",
        "app_timeout=0 (needs > 0",
    ),
    (
        "maxmemory 0",
        group_vars("redis.yml", "redis_cache_maxmemory_mb: 0\n"),
        "staging",
        "redis_instances[cache] on redis-1",
    ),
    (
        "maxmemory above host memory",
        group_vars("redis.yml", "redis_persist_maxmemory_mb: 99999999\n"),
        "staging",
        "redis_instances[persist] on redis-1",
    ),
    (
        "a Redis bind on every interface",
        group_vars("redis.yml", "redis_bind_addresses: [0.0.0.0]\n"),
        "staging",
        "redis_bind_addresses on redis-1: 0.0.0.0 is not a private address",
    ),
    (
        "a public Redis bind with protected mode off",
        group_vars(
            "redis.yml",
            "redis_bind_addresses: [8.8.8.8]\nredis_allow_public_bind: true\n"
            "redis_protected_mode: false\n",
        ),
        "staging",
        "8.8.8.8 is not a private address and redis_protected_mode is off",
    ),
    (
        "a public Redis bind not allowed",
        group_vars("redis.yml", "redis_bind_addresses: [8.8.8.8, 127.0.0.1]\n"),
        "staging",
        "redis_bind_addresses on redis-1: 8.8.8.8 is not a private address",
    ),
    (
        "a Python older than the app needs",
        old_python,
        "staging",
        "is Python 3.8; the app needs Python 3.11 or newer",
    ),
]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """{case id: its preflight run}. One project copy with a real vault and a good throwaway
    certificate for lb-1 is made once; each case breaks a copy of it of its own. The cases run
    a few at a time (each is an ansible-playbook run of ~15 s, mostly waiting on its workers):
    measured 391 s one after another in CI, PARALLEL_CASES at a time cuts that about in half."""
    base = project_copy.__wrapped__(tmp_path_factory.mktemp("bad-inputs"))
    password = make_vault(base, "staging")
    lb_certificate(base)  # a good one; cases replace or break it

    def run(case: tuple) -> subprocess.CompletedProcess:
        _, break_it, env, _ = case
        copy = tmp_path_factory.mktemp("case")
        shutil.copytree(base, copy, dirs_exist_ok=True, symlinks=True)
        break_it(copy)
        return invoke("check.preflight", "--env", env, "--offline", cwd=copy, vault=password)

    with ThreadPoolExecutor(max_workers=PARALLEL_CASES) as pool:
        return dict(zip([c[0] for c in CASES], pool.map(run, CASES), strict=True))


@pytest.mark.parametrize(
    ("case", "message"), [(c[0], c[3]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_exit_2(refusals, case, message):
    line = one_line_error(refusals[case])
    assert message in line, line

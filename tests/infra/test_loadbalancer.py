"""loadbalancer: HAProxy runs, listens, has its admin socket, and sees every app host UP."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import expected_var, hostname, inventory_vars, require_group

ROLE = "loadbalancer"


@pytest.fixture
def lb(host):
    require_group(host, "lb")
    variables = inventory_vars(host)
    backend_group = expected_var(host, ROLE, "loadbalancer_backend_group")
    return {
        "port": int(expected_var(host, ROLE, "loadbalancer_port")),
        "socket": expected_var(host, ROLE, "loadbalancer_admin_socket"),
        "backend": expected_var(host, ROLE, "loadbalancer_backend_name"),
        "servers": variables["groups"].get(backend_group, []),
    }


def show_stat(host, lb) -> list[dict[str, str]]:
    out = host.check_output(f"echo 'show stat' | socat stdio {lb['socket']}")
    return list(csv.DictReader(out.lstrip("# ").splitlines()))


def test_haproxy_enabled_and_running(host, lb):
    service = host.service("haproxy")
    assert service.is_enabled and service.is_running


def test_listens_on_frontend_port(host, lb):
    assert host.socket(f"tcp://0.0.0.0:{lb['port']}").is_listening


def test_admin_socket(host, lb):
    sock = host.file(lb["socket"])
    assert sock.is_socket
    assert sock.mode == 0o660, f"{lb['socket']} mode {oct(sock.mode)}"


def test_every_app_host_is_up(host, lb):
    rows = {r["svname"]: r for r in show_stat(host, lb) if r["pxname"] == lb["backend"]}
    assert lb["servers"], "the backend group is empty"
    problems = [
        f"{s}: {rows[s]['status']} ({rows[s]['check_status']})" if s in rows else f"{s}: absent"
        for s in lb["servers"]
        if s not in rows or rows[s]["status"] != "UP"
    ]
    assert not problems, f"{hostname(host)} backend {lb['backend']}: " + "; ".join(problems)


def test_health_check_uses_app_health_path(host, lb):
    config = host.file(expected_var(host, ROLE, "loadbalancer_config_file")).content_string
    path = expected_var(host, ROLE, "loadbalancer_health_path")
    assert f"option httpchk GET {path}" in config
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0


def test_answers_through_the_frontend(host, lb):
    probe = (
        "import json, urllib.request\n"
        f"r = urllib.request.urlopen('http://127.0.0.1:{lb['port']}/api/v1/health', timeout=5)\n"
        "print(json.dumps({'status': r.status, 'body': json.load(r)}))\n"
    )
    out = json.loads(host.check_output("python3 -c %s", probe))
    assert out["status"] == 200 and out["body"]["status"] == "ok"

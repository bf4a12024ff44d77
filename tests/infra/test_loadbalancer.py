"""loadbalancer: HAProxy runs with the settings the role resolved and sees every app host UP.

Expected values: the loadbalancer_* variables as Ansible resolves them for the host. Actual
values: HAProxy's admin socket (`show info`, `show stat`) where it reports a setting, else
the configuration file that the running HAProxy loaded (checked with `haproxy -c`).
"""

from __future__ import annotations

import csv
import json

import pytest
from conftest import (
    assert_no_mismatches,
    expected,
    group_hosts,
    hostname,
    in_container,
    mismatch,
    pid1_nofile_hard,
    unit_listeners,
    unit_properties,
)

pytestmark = pytest.mark.group("lb")
# HAProxy keeps this many descriptors for itself (the role: maxconn = (fd - 512) / 2).
FD_RESERVE = 512


def admin(host, command: str) -> str:
    return host.check_output(
        f"echo {command!r} | socat stdio {expected(host, 'loadbalancer_admin_socket')}"
    )


def show_stat(host) -> list[dict[str, str]]:
    return list(csv.DictReader(admin(host, "show stat").lstrip("# ").splitlines()))


def show_info(host) -> dict[str, str]:
    lines = admin(host, "show info").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def config_sections(host) -> dict[str, list[list[str]]]:
    """The configuration file as {"<kind> <name>": [tokens of each line]}."""
    text = host.file(expected(host, "loadbalancer_config_file")).content_string
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for raw in text.splitlines():
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(" ".join(tokens), [])
        else:
            current.append(tokens)
    return sections


def directive(lines: list[list[str]], *keyword: str) -> str | None:
    """The value of the first line starting with `keyword` (tokens joined by spaces)."""
    for tokens in lines:
        if tuple(tokens[: len(keyword)]) == keyword:
            return " ".join(tokens[len(keyword) :])
    return None


def fd_limit(host) -> int:
    nofile = int(expected(host, "loadbalancer_nofile"))
    return min(nofile, pid1_nofile_hard(host)) if in_container(host) else nofile


def test_haproxy_enabled_and_running(host):
    service = host.service("haproxy")
    assert service.is_enabled and service.is_running


def test_config_valid(host):
    check = host.run(f"haproxy -c -f {expected(host, 'loadbalancer_config_file')}")
    assert check.rc == 0, f"{hostname(host)}: haproxy -c: {check.stderr.strip()}"


def test_listeners(host):
    """The frontend and the stats page listen where configured, and nothing else of HAProxy."""
    bind = expected(host, "loadbalancer_bind_address")
    frontend = f"{'0.0.0.0' if bind in ('*', '') else bind}:{expected(host, 'loadbalancer_port')}"
    want = {frontend}
    if expected(host, "loadbalancer_stats_bind"):
        want.add(expected(host, "loadbalancer_stats_bind"))
    seen = set(unit_listeners(host, "haproxy.service"))
    assert seen == want, mismatch(host, "haproxy listeners", sorted(want), sorted(seen))


def test_admin_socket(host):
    sock = host.file(expected(host, "loadbalancer_admin_socket"))
    want = ("root", expected(host, "loadbalancer_admin_group"), 0o660)
    actual = (sock.user, sock.group, sock.mode) if sock.is_socket else "not a socket"
    assert actual == want, mismatch(host, f"{sock.path} owner, group, mode", want, actual)


def test_open_files_and_maxconn(host):
    """LimitNOFILE of haproxy.service and HAProxy's own maxconn follow the resolved limits."""
    limit = fd_limit(host)
    maxconn = min(int(expected(host, "loadbalancer_maxconn")), (limit - FD_RESERVE) // 2)
    info = show_info(host)
    props = unit_properties(host, "haproxy.service", ["LimitNOFILE"])
    actual = {
        "haproxy.service LimitNOFILE": props.get("LimitNOFILE"),
        "show info Maxconn": info.get("Maxconn"),
    }
    want = {"haproxy.service LimitNOFILE": str(limit), "show info Maxconn": str(maxconn)}
    problems = [mismatch(host, k, want[k], actual[k]) for k in want if actual[k] != want[k]]
    front = [r for r in show_stat(host) if r["svname"] == "FRONTEND"]
    for row in front:
        if row["slim"] != str(maxconn):
            problems.append(
                mismatch(host, f"frontend {row['pxname']} maxconn", maxconn, row["slim"])
            )
    assert_no_mismatches(problems)


def test_backend_settings(host):
    """balance, health checks and server maxconn live; retries and timeouts as loaded."""
    backend = expected(host, "loadbalancer_backend_name")
    rows = [r for r in show_stat(host) if r["pxname"] == backend]
    kinds = sorted({"BACKEND" if r["svname"] == "BACKEND" else "server" for r in rows})
    assert kinds == ["BACKEND", "server"], mismatch(
        host, f"{backend} rows", "BACKEND and servers", kinds
    )
    problems = []
    for row in rows:
        if row["svname"] == "BACKEND":
            if row["algo"] != expected(host, "loadbalancer_balance"):
                want = expected(host, "loadbalancer_balance")
                problems.append(mismatch(host, f"{backend} balance", want, row["algo"]))
            continue
        live = {
            "maxconn": (row["slim"], expected(host, "loadbalancer_server_maxconn")),
            "rise": (row["check_rise"], expected(host, "loadbalancer_health_rise")),
            "fall": (row["check_fall"], expected(host, "loadbalancer_health_fall")),
        }
        for key, (actual, want) in live.items():
            if str(actual) != str(want):
                problems.append(mismatch(host, f"server {row['svname']} {key}", want, actual))
    sections = config_sections(host)
    defaults = sections.get("defaults", [])
    loaded = {
        "retries": (directive(defaults, "retries"), "loadbalancer_retries"),
        "retry-on": (directive(defaults, "retry-on"), "loadbalancer_retry_on"),
        "http-reuse": (directive(defaults, "http-reuse"), "loadbalancer_http_reuse"),
    }
    for name in ("connect", "client", "server", "http-request", "http-keep-alive", "queue"):
        var = f"loadbalancer_timeout_{name.replace('-', '_')}"
        loaded[f"timeout {name}"] = (directive(defaults, "timeout", name), var)
    server_line = (
        directive(sections.get(f"backend {backend}", []), "default-server") or ""
    ).split()
    for key in ("inter", "fastinter"):
        value = server_line[server_line.index(key) + 1] if key in server_line else None
        loaded[f"default-server {key}"] = (value, f"loadbalancer_health_{key}")
    path = directive(sections.get(f"backend {backend}", []), "option", "httpchk")
    loaded["option httpchk"] = (path, "loadbalancer_health_path")
    for key, (actual, var) in loaded.items():
        want = expected(host, var)
        if key == "option httpchk":
            want = f"GET {want}"
        if str(actual) != str(want):
            problems.append(mismatch(host, key, want, actual))
    assert_no_mismatches(problems)


def test_every_app_host_is_up(host):
    backend = expected(host, "loadbalancer_backend_name")
    servers = group_hosts(host, expected(host, "loadbalancer_backend_group"))
    rows = {r["svname"]: r for r in show_stat(host) if r["pxname"] == backend}
    assert servers, f"{hostname(host)}: the backend group is empty"
    problems = [
        f"{s}: {rows[s]['status']} ({rows[s]['check_status']})" if s in rows else f"{s}: absent"
        for s in servers
        if s not in rows or rows[s]["status"] != "UP"
    ]
    assert not problems, f"{hostname(host)} backend {backend}: " + "; ".join(problems)


def test_answers_through_the_frontend(host):
    bind = expected(host, "loadbalancer_bind_address")
    address = "127.0.0.1" if bind in ("*", "", "0.0.0.0") else bind
    port, path = expected(host, "loadbalancer_port"), expected(host, "loadbalancer_health_path")
    url = f"http://{address}:{port}{path}"
    probe = (
        "import json, urllib.request\n"
        f"r = urllib.request.urlopen('{url}', timeout=5)\n"
        "print(json.dumps({'status': r.status, 'body': json.load(r)}))\n"
    )
    out = json.loads(host.check_output("python3 -c %s", probe))
    assert out["status"] == 200 and out["body"]["status"] == "ok"

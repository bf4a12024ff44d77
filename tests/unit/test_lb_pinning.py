"""Pinning through HAProxy (the canary check's way to measure one app host): the role's own
template, rendered by Ansible, run by a real HAProxy on loopback in front of two small servers.

- from a source in loadbalancer_pin_sources, `X-Slakit-Server: <name>` goes to that server
  only, and the answer names it;
- from any other source the header is ignored (balanced as usual) and never reaches a server;
- a pinned request to a server that is down fails instead of going to the other one;
- the servers carry loadbalancer_server_weight (runtime weights of the canary start from it).
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from slakit.ansible import BIN, command_env

ROOT = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """An app host stand-in: answers its name and the X-Slakit-Server header it received."""

    def __init__(self, name: str) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"name": outer.name, "pin": self.headers.get("X-Slakit-Server")})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.name = name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def render(tmp: Path, lb_port: int, servers: list[Backend]) -> tuple[str, str]:
    """haproxy.cfg from roles/loadbalancer/templates/haproxy.cfg.j2 with the role's defaults,
    pinning allowed from 127.0.0.1, and the same with no source allowed (one Ansible run)."""
    settings = {
        "loadbalancer__effective_maxconn": 200,
        "loadbalancer_tls_enabled": False,
        "loadbalancer_bind_address": "127.0.0.1",
        "loadbalancer_port": lb_port,
        "loadbalancer_stats_bind": "",
        "loadbalancer_admin_socket": str(tmp / "admin.sock"),
        "loadbalancer_health_inter": "200ms",
        "loadbalancer_health_fastinter": "100ms",
        "loadbalancer_health_path": "/",
        "loadbalancer_servers": [
            {"name": b.name, "address": "127.0.0.1", "port": b.port} for b in servers
        ],
    }
    src = str(ROOT / "roles/loadbalancer/templates/haproxy.cfg.j2")
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": settings,
            "tasks": [
                {"ansible.builtin.import_role": {"name": "loadbalancer", "tasks_from": "plan"}},
                *(
                    {
                        "ansible.builtin.template": {"src": src, "dest": str(tmp / name)},
                        "vars": {"loadbalancer_pin_sources": sources},
                    }
                    for name, sources in (("pinned.cfg", ["127.0.0.1"]), ("plain.cfg", []))
                ),
            ],
        }
    ]
    playbook = tmp / "render.yml"
    playbook.write_text(yaml.safe_dump(play))
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        cwd=ROOT,
        env={**command_env(), "ANSIBLE_STRATEGY": "linear"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # not root in a chroot here: the rest is the role's configuration as HAProxy loads it
    pinned, plain = (
        re.sub(r"(?m)^\s*chroot .*$", "", (tmp / n).read_text())
        for n in ("pinned.cfg", "plain.cfg")
    )
    return pinned, plain


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[tuple[int, dict[str, Backend], str, str]]:
    """HAProxy with pinning from 127.0.0.1 in front of app-1 and app-2 (the last test of this
    file stops app-2)."""
    tmp = tmp_path_factory.mktemp("lb")
    servers = {n: Backend(n) for n in ("app-1", "app-2")}
    port = free_port()
    pinned, plain = render(tmp, port, list(servers.values()))
    config = tmp / "haproxy.cfg"
    config.write_text(pinned)
    proc = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if len({get(port)[1]["name"] for _ in range(6)}) == 2:  # both UP and balanced
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("HAProxy did not serve from both servers within 20 s")
        yield port, servers, pinned, plain
    finally:
        proc.terminate()
        proc.wait(10)
        for server in servers.values():
            server.stop()


def get(port: int, pin: str | None = None, source: str = "127.0.0.1") -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/", headers={"X-Slakit-Server": pin} if pin else {})
        reply = conn.getresponse()
        body = reply.read()
        headers = {k.lower(): v for k, v in reply.getheaders()}
        return reply.status, (json.loads(body) if reply.status == 200 else {}), headers
    finally:
        conn.close()


def test_pinning_from_allowed_sources_only(lab) -> None:
    port, _, config, _ = lab
    assert re.search(r"(?m)^\s*default-server .* weight 100$", config)  # the role's default
    for name in ("app-1", "app-2"):
        answers = [get(port, pin=name) for _ in range(20)]
        assert {a[1]["name"] for a in answers} == {name}
        assert {a[2].get("x-slakit-server") for a in answers} == {name}
        assert {a[1]["pin"] for a in answers} == {None}  # the header never reaches a server
    # another source (127.0.0.2 is loopback too): ignored, balanced, stripped, not named
    answers = [get(port, pin="app-1", source="127.0.0.2") for _ in range(20)]
    assert {a[1]["name"] for a in answers} == {"app-1", "app-2"}
    assert {a[1]["pin"] for a in answers} == {None}
    assert {a[2].get("x-slakit-server") for a in answers} == {None}
    # an unknown name from an allowed source: balanced as usual, not named
    answers = [get(port, pin="web-9") for _ in range(10)]
    assert {a[2].get("x-slakit-server") for a in answers} == {None}


def test_no_pinning_when_no_source_is_allowed(lab) -> None:
    text = lab[3]
    assert "use-server" not in text and "_pinned" not in text and "txn.pin" not in text
    assert re.search(r"(?m)^\s*http-request del-header X-Slakit-Server$", text)  # still dropped


def test_a_pinned_request_never_goes_to_another_server(lab) -> None:
    port, servers, _, _ = lab
    servers["app-2"].stop()
    deadline = time.monotonic() + 20  # until the health check marks it down: only app-1 answers
    while time.monotonic() < deadline and {get(port)[1]["name"] for _ in range(4)} != {"app-1"}:
        time.sleep(0.2)
    statuses = [get(port, pin="app-2")[0] for _ in range(5)]
    assert all(s >= 500 for s in statuses), statuses
    assert get(port, pin="app-1")[1]["name"] == "app-1"

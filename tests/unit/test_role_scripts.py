"""The Python that roles run on hosts (roles/*/files/*.py), against real sockets and servers."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

ROLES = Path(__file__).resolve().parents[2] / "roles"
HEADER = "# pxname,svname,status,check_status,check_desc\n"


def role_script(role: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROLES / role / "files" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


servers_up = role_script("loadbalancer", "servers_up")
health_probe = role_script("app", "health_probe")
import_check = role_script("app", "import_check")


@pytest.fixture
def admin_socket(tmp_path) -> Iterator[tuple[Path, list[str]]]:
    """A UNIX socket that answers every command with a fixed `show stat` text."""
    path, answer = tmp_path / "admin.sock", [HEADER]
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall("".join(answer).encode())

    threading.Thread(target=serve, daemon=True).start()
    yield path, answer
    server.close()


def test_servers_up_reads_the_backend_rows(admin_socket):
    path, answer = admin_socket
    answer.append("app,FRONTEND,OPEN,,\napp,app-1,UP,L7OK,ok\napp,app-2,DOWN,L7STS,HTTP 503\n")
    answer.append("other,x-1,DOWN,L4CON,refused\n")
    stat = servers_up.show_stat(str(path))
    assert servers_up.not_up(stat, "app") == (2, ["app-2 DOWN (L7STS HTTP 503)"])
    assert servers_up.not_up(stat, "missing") == (0, [])


@pytest.fixture
def health_server() -> Iterator[tuple[str, list[int]]]:
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = statuses.pop(0) if statuses else 200
            body = json.dumps({"pid": os.getpid()}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", statuses
    server.shutdown()


def test_health_probe_counts_answers_and_failures(health_server):
    url, statuses = health_server
    assert health_probe.probe(url, 3) == {"ok": 3, "pids": [str(os.getpid())], "error": []}
    statuses.append(500)
    failed = health_probe.probe(url, 3)
    assert failed["ok"] == 2 and failed["error"][0].startswith("HTTPError: HTTP Error 500")


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("json:dumps", ""),
        ("json:nothing", "AttributeError: module 'json' has no attribute 'nothing'"),
        ("no_such_module_here:app", "ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("json:__name__", "json:__name__ is not callable"),
    ],
)
def test_import_check_names_the_cause(target, cause):
    assert import_check.check(target) == cause

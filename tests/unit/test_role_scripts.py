"""The Python that roles run on hosts (roles/*/files/*.py), against real sockets and servers."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
import time
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
health_check = role_script("loadbalancer", "health_check")
lb_server_state = role_script("app", "lb_server_state")
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


def test_health_check_names_each_server_that_answers_otherwise(health_server, capsys):
    url, statuses = health_server
    port = url.split(":")[2].split("/")[0]
    with socket.socket() as unused:  # a port nothing listens on: bound, never listening
        unused.bind(("127.0.0.1", 0))
        closed = str(unused.getsockname()[1])
        argv = ["/health", "200", "2", "app-1", "127.0.0.1", port, "app-2", "127.0.0.1", port]
        assert health_check.main(argv) == 0
        assert capsys.readouterr().out == "2/2 servers answer GET /health with 200\n"
        statuses.append(404)
        assert health_check.main([*argv[:6], "app-3", "127.0.0.1", closed]) == 1
    assert capsys.readouterr().out == (
        "GET /health is answered other than 200 by app-1 (404), app-3 (ConnectionRefusedError)\n"
    )
    assert health_check.main(["/health", "200", "2", "app-1", "127.0.0.1"]) == 2


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


# --- HAProxy's admin socket, with state: the drain, repair and wait logic on real sockets ---

STAT_FIELDS = (
    "pxname,svname,qcur,scur,status,check_status,check_desc,check_rise,check_fall,check_health"
)
# Rows as HAProxy 2.6 shows them (rise 2, fall 2: full health is 3).
CHECKED = {"check_status": "L7OK", "check_desc": "Layer7 check passed", "check_health": "3"}
NOT_YET = {"check_status": "INI", "check_desc": "Initializing", "check_health": "2"}


class FakeHAProxy:
    """Answers `show info`, `show stat` and `set server B/S state X` (';' separates commands)
    like HAProxy's admin socket; `after_ready` is the status a server reaches when set READY."""

    def __init__(self, path: Path) -> None:
        self.path, self.commands, self.started = path, [], int(time.time())
        self.after_ready = "UP"
        self.rows: dict[str, dict[str, str]] = {}
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def server(self, name: str, status: str, backend: str = "app", **check: str) -> None:
        row = {"pxname": backend, "svname": name, "qcur": "0", "scur": "0", "status": status}
        self.rows[f"{backend}/{name}"] = {
            **row, "check_rise": "2", "check_fall": "2", **(check or CHECKED)
        }  # fmt: skip

    def status(self, name: str, backend: str = "app") -> str:
        return self.rows[f"{backend}/{name}"]["status"]

    def _answer(self, line: str) -> str:
        self.commands.append(line)
        if line == "show info":
            return f"Name: HAProxy\nPid: 4242\nStart_time_sec: {self.started}\n"
        if line == "show stat":
            fields = STAT_FIELDS.split(",")
            body = [",".join(r.get(f, "") for f in fields) for r in self.rows.values()]
            return "# " + STAT_FIELDS + "\n" + "\n".join(body) + "\n"
        words = line.split()
        if words[:2] == ["set", "server"] and words[3] == "state":
            if words[2] not in self.rows:
                return "No such server.\n"
            state = {"ready": self.after_ready, "drain": "DRAIN", "maint": "MAINT"}[words[4]]
            self.rows[words[2]]["status"] = state
            return "\n"
        return "Unknown command.\n"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                line = conn.recv(4096).decode().strip()
                conn.sendall("".join(self._answer(c.strip()) for c in line.split(";")).encode())


@pytest.fixture
def haproxy(tmp_path) -> Iterator[FakeHAProxy]:
    fake = FakeHAProxy(tmp_path / "admin.sock")
    yield fake
    fake.sock.close()


def state(haproxy: FakeHAProxy, marks: Path, capsys, *args: str) -> tuple[int, dict]:
    argv = ["--socket", str(haproxy.path), "--backend", "app", "--marks", str(marks), *args]
    rc = lb_server_state.main([*argv, "--timeout", "1"])
    return rc, json.loads(capsys.readouterr().out)


def test_drain_of_an_unknown_server_or_without_a_socket_fails_in_one_line(
    haproxy, tmp_path, capsys
):
    haproxy.server("app-1", "UP")
    haproxy.server("app-2", "UP")
    marks = tmp_path / "marks"
    rc, out = state(haproxy, marks, capsys, "--server", "app-9", "--action", "drain")
    assert (rc, out["msg"]) == (1, "HAProxy has no server app/app-9 (its servers: app-1, app-2)")
    rc, out = state(haproxy, marks, capsys, "--server", "app-1", "--action", "drain",
                    "--backend", "web")  # fmt: skip
    assert (rc, out["msg"]) == (1, "HAProxy has no backend web")
    argv = ["--socket", str(tmp_path / "none.sock"), "--backend", "app", "--server", "app-1"]
    argv += ["--marks", str(marks), "--action", "drain"]
    assert lb_server_state.main(argv) == 1
    assert "no HAProxy admin socket at" in json.loads(capsys.readouterr().out)["msg"]
    # a host that never ran a release cannot be in rotation: nothing to do
    assert lb_server_state.main([*argv, "--absent-ok"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert not any(c.startswith("set ") for c in haproxy.commands)  # nothing was touched
    with pytest.raises(SystemExit) as bad:  # would end the command on the socket
        lb_server_state.main([*argv[:4], "app-1;shutdown", *argv[6:]])
    assert bad.value.code == 2


def test_drain_sets_ready_first_what_an_interrupted_run_left_in_drain(haproxy, tmp_path, capsys):
    marks = tmp_path / "marks"
    haproxy.server("app-1", "UP")
    haproxy.server("app-2", "UP")
    haproxy.server("app-3", "MAINT")  # an operator's: no mark, left alone
    rc, out = state(haproxy, marks, capsys, "--server", "app-1", "--action", "drain")
    assert (rc, haproxy.status("app-1")) == (0, "DRAIN") and out["changed"] is True
    assert sorted(p.name for p in (marks / "app").iterdir()) == ["app-1"]
    # the run is interrupted here: app-1 stays in DRAIN; the next run drains app-2
    rc, out = state(haproxy, marks, capsys, "--server", "app-2", "--action", "drain")
    assert rc == 0, out
    assert [haproxy.status(s) for s in ("app-1", "app-2", "app-3")] == ["UP", "DRAIN", "MAINT"]
    assert out["msg"].endswith("set READY again after an interrupted run: app-1")
    assert sorted(p.name for p in (marks / "app").iterdir()) == ["app-2"]
    rc, out = state(haproxy, marks, capsys, "--server", "app-2", "--action", "ready")
    assert (rc, haproxy.status("app-2"), out["changed"]) == (0, "UP", True)
    assert list((marks / "app").iterdir()) == []
    rc, out = state(haproxy, marks, capsys, "--server", "app-2", "--action", "ready")
    assert (rc, out["changed"]) == (0, False)  # already READY and UP: no change


def test_servers_of_one_batch_drain_together(haproxy, tmp_path, capsys):
    marks = tmp_path / "marks"
    for name in ("app-1", "app-2", "app-3", "app-4"):
        haproxy.server(name, "UP")
    batch = ("--batch", "app-2,app-3")
    rc, out = state(haproxy, marks, capsys, "--server", "app-2", "--action", "drain", *batch)
    assert rc == 0, out
    rc, out = state(haproxy, marks, capsys, "--server", "app-3", "--action", "drain", *batch)
    assert rc == 0, out
    # app-2's mark is its batch's own: it stays drained while app-3 drains
    assert [haproxy.status(s) for s in ("app-2", "app-3", "app-4")] == ["DRAIN", "DRAIN", "UP"]
    assert sorted(p.name for p in (marks / "app").iterdir()) == ["app-2", "app-3"]
    # the next batch (app-4 alone) finds both still marked: an interrupted run's, set READY
    rc, out = state(haproxy, marks, capsys, "--server", "app-4", "--action", "drain")
    assert rc == 0, out
    assert [haproxy.status(s) for s in ("app-2", "app-3", "app-4")] == ["UP", "UP", "DRAIN"]
    assert out["msg"].endswith("set READY again after an interrupted run: app-2, app-3")


def test_drain_is_refused_when_the_left_over_server_does_not_come_up(haproxy, tmp_path, capsys):
    marks = tmp_path / "marks"
    haproxy.server("app-1", "DRAIN")
    haproxy.server("app-2", "UP")
    (marks / "app").mkdir(parents=True)
    (marks / "app" / "app-1").write_text("0\n")
    haproxy.after_ready = "DOWN"  # its app is broken: the health check keeps it DOWN
    rc, out = state(haproxy, marks, capsys, "--server", "app-2", "--action", "drain")
    assert rc == 1 and haproxy.status("app-2") == "UP", out  # app-2 keeps serving
    assert out["msg"].startswith("set READY again after an interrupted run, app-1 DOWN")
    assert out["msg"].endswith("not draining app/app-2 too")


def test_servers_up_counts_only_checks_of_the_process_that_read_the_file(haproxy, tmp_path):
    config = tmp_path / "haproxy.cfg"
    config.write_text("global\n")
    os.utime(config, (haproxy.started - 5, haproxy.started - 5))
    haproxy.server("app-1", "UP")
    haproxy.server("app-2", "UP", **NOT_YET)  # UP only because nothing was checked yet
    assert servers_up.main([str(haproxy.path), "app"]) == 0  # the status alone says UP
    argv = [str(haproxy.path), "app", "--config", str(config)]
    assert servers_up.main(argv) == 1
    haproxy.server("app-2", "UP 1/2", check_status="L7STS", check_desc="Not Found",
                   check_health="2")  # fmt: skip
    assert servers_up.main(argv) == 1
    haproxy.server("app-2", "UP")
    assert servers_up.main(argv) == 0
    haproxy.server("app-1", "DOWN", check_status="L7STS", check_health="0")
    haproxy.server("app-2", "DOWN", check_status="INI", check_health="0")
    assert servers_up.main(argv) == 1  # app-2 was not checked yet: it may still come UP
    haproxy.server("app-2", "DOWN", check_status="L4CON", check_health="0")
    assert servers_up.main(argv) == 3  # every server DOWN by a check: no use waiting
    os.utime(config, (haproxy.started + 5, haproxy.started + 5))  # written after it started
    assert servers_up.main(argv) == 1


def test_servers_up_sets_ready_the_marked_servers_left_in_drain(haproxy, tmp_path, capsys):
    marks = tmp_path / "marks"
    (marks / "app").mkdir(parents=True)
    for name in ("app-1", "app-2"):
        (marks / "app" / name).write_text("0\n")  # app-2's mark is stale: it is UP
    haproxy.server("app-1", "DRAIN")
    haproxy.server("app-2", "UP")
    haproxy.server("app-3", "MAINT")  # no mark: an operator's
    argv = [str(haproxy.path), "app", "--repair-marks", str(marks)]
    assert servers_up.main(argv) == 0
    assert capsys.readouterr().out.strip() == "set READY: app-1"
    assert [haproxy.status(s) for s in ("app-1", "app-2", "app-3")] == ["UP", "UP", "MAINT"]
    assert list((marks / "app").iterdir()) == []
    assert servers_up.main(argv) == 0
    assert capsys.readouterr().out.strip() == "nothing to repair"

"""Real processes for the service tests: redis-server instances and the service itself.

Redis users are the redis role's own: the `user` lines of roles/redis/templates/redis.conf.j2
as Ansible renders them with the role's variables (redis_app_acl and the rest), so a command
the role forbids the app fails here as it would in production. Nothing here writes under
service/src: the service's processes run with PYTHONDONTWRITEBYTECODE=1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from slakit.ansible import RESOLVE_TAG, run_plays

REPO = Path(__file__).resolve().parents[3]
SERVICE_SRC = REPO / "service" / "src"
VENV_BIN = Path(sys.executable).parent
ROLE_CONF_TEMPLATE = REPO / "roles" / "redis" / "templates" / "redis.conf.j2"
# Test passwords (the role requires 16 characters or more).
REDIS_PASSWORDS = {
    "redis_app_password": "unit-test-redis-app-password",
    "redis_admin_password": "unit-test-redis-admin-password",
    "redis_exporter_password": "unit-test-redis-exporter-password",
}
# Children write no bytecode: the service runs from service/src, which tests never write into.
NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}
TOKEN_SECRET = "unit-test-token-secret-0123456789abcdef"
OPERATOR, READER, PASSWORD = "ops", "viewer", "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    condition: Callable[[], Any],
    what: str,
    timeout: float = 20.0,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` and, when given,
    what `describe()` says of the state it gave up on."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (requests.RequestException, redis.RedisError, OSError) as err:
            last_error, result = err, None
        if result:
            return result
        time.sleep(0.05)
    state = f"\n{describe()}" if describe else ""
    raise AssertionError(f"gave up waiting for {what} (last error: {last_error}){state}")


def role_acl() -> tuple[str, str, str, list[str]]:
    """(app user, its ACL, admin user, the `user` lines of redis.conf) as Ansible renders the redis
    role's own config template with the role's variables, resolved on this machine, and the
    test passwords: a command the role forbids the app is forbidden here too."""
    rendered = f"{{{{ lookup('ansible.builtin.template', '{ROLE_CONF_TEMPLATE}') }}}}"
    play = {
        "name": "Render the redis role's ACL users",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "roles": ["redis"],
        "vars": REDIS_PASSWORDS,
        "tasks": [
            {"name": "Gather facts", "ansible.builtin.setup": {}, "tags": [RESOLVE_TAG]},
            {
                "name": "Render the config of one instance",
                "vars": {"item": {"name": "test", "port": 6379, "persistence": "none"}},
                "ansible.builtin.debug": {
                    "msg": {
                        "config": rendered,
                        "app": "{{ redis_app_user }}",
                        "acl": "{{ redis_app_acl }}",
                        "admin": "{{ redis_admin_user }}",
                    }
                },
                "tags": [RESOLVE_TAG],
            },
        ],
    }
    out = run_plays("localhost,", [play], args=("--tags", RESOLVE_TAG, "--skip-tags", "always"))
    result = out["plays"][0]["tasks"][-1]["hosts"]["localhost"]
    if result.get("failed") or "msg" not in result or not isinstance(result["msg"], dict):
        raise RuntimeError(f"rendering the redis role's config failed: {result.get('msg')}")
    msg = result["msg"]
    lines = [ln for ln in msg["config"].splitlines() if ln.startswith("user ")]
    return msg["app"], msg["acl"], msg["admin"], lines


REDIS_USER, REDIS_APP_ACL, REDIS_ADMIN, ACL_LINES = role_acl()
REDIS_PASSWORD = REDIS_PASSWORDS["redis_app_password"]


class RedisServer:
    """A redis-server on a loopback port with the redis role's ACL users (the app's, which the
    service gets, and the admin, which tests inspect with); stop() and start() keep the port."""

    def __init__(self, workdir: Path, db: int, config: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.db = db
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "users.conf"  # the role's users, then `config` (replicaof...)
        self.conf.write_text("\n".join([*ACL_LINES, *config]) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What the service gets: the app user, as the app role configures it."""
        return f"redis://{REDIS_USER}:{REDIS_PASSWORD}@127.0.0.1:{self.port}/{self.db}"

    def app_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def client(self) -> redis.Redis:
        """The admin user (everything, KEYS included), for tests to inspect and change data."""
        password = REDIS_PASSWORDS["redis_admin_password"]
        return redis.Redis(
            port=self.port, db=self.db, username=REDIS_ADMIN, password=password, socket_timeout=2
        )

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [
            binary,
            str(self.conf),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(lambda: self.app_client().ping(), f"redis on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last words to replicas or clients (a host that died)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def service_env(
    l1: RedisServer | None, l2: RedisServer | None, stats_dir: Path, users: str, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLAKIT_", "REDIS_"))}
    env.update(
        PYTHONPATH=str(SERVICE_SRC),
        **NO_BYTECODE,
        REDIS_URL=l1.url if l1 else "",
        REDIS_PERSIST_URL=l2.url if l2 else "",
        SLAKIT_TOKEN_SECRET=TOKEN_SECRET,
        SLAKIT_USERS=users,
        SLAKIT_STATS_DIR=str(stats_dir),
        SLAKIT_REDIS_RETRY_SECONDS="0.2",
        # tests read figures right after the requests they count: no freshness window (the
        # windows themselves are tested in-process with a fake clock: test_service_fresh.py)
        SLAKIT_STATS_REFRESH_SECONDS="0",
        SLAKIT_HEALTH_PROBE_SECONDS="0",
    )
    env.update(extra)
    return env


class ServiceProcess:
    """The service under uvicorn (one process) or gunicorn (N uvicorn workers)."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int = 0) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"service-{self.port}.log"
        if workers:
            cmd = [
                str(VENV_BIN / "gunicorn"),
                "-k", "uvicorn_worker.UvicornWorker",
                "-w", str(workers),
                "-b", f"127.0.0.1:{self.port}",
                "--graceful-timeout", "5",
                "--no-control-socket",
                "slakit_service.app:app",
            ]  # fmt: skip
        else:
            cmd = [
                str(VENV_BIN / "uvicorn"),
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--no-access-log",
                "slakit_service.app:app",
            ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.session = requests.Session()
        wait_until(self._healthy, f"the service on port {self.port} ({self.log_path})", 60)

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited early:\n{self.log_path.read_text()}")
        return requests.get(f"{self.base}/api/v1/health", timeout=2).status_code == 200

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, timeout=30, **kw)

    def token(self, username: str = OPERATOR, password: str = PASSWORD) -> str:
        reply = self.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert reply.status_code == 200, reply.text
        return reply.json()["access_token"]

    def bearer(self, username: str = OPERATOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def stats(self) -> dict:
        return self.get("/api/v1/performance/stats").json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.session.close()


def source_tree_snapshot(root: Path = SERVICE_SRC) -> dict[str, tuple[int, int] | None]:
    """Everything under `root`: relative path -> (size, mtime in ns) of a file, None for a
    folder (a folder's mtime moves with its entries, which are compared themselves)."""
    snapshot: dict[str, tuple[int, int] | None] = {}
    for path in root.rglob("*"):
        info = path.lstat()
        is_dir = path.is_dir() and not path.is_symlink()
        snapshot[str(path.relative_to(root))] = None if is_dir else (info.st_size, info.st_mtime_ns)
    return snapshot


def source_tree_changes(
    before: dict[str, tuple[int, int] | None], after: dict[str, tuple[int, int] | None]
) -> list[str]:
    """What changed between two snapshots, one entry per path, sorted."""
    changes = [f"created {p}" for p in after.keys() - before.keys()]
    changes += [f"removed {p}" for p in before.keys() - after.keys()]
    changes += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes)


def users_json(password_hash: str) -> str:
    return json.dumps(
        {
            OPERATOR: {"password_hash": password_hash, "roles": ["operator", "reader"]},
            READER: {"password_hash": password_hash, "roles": ["reader"]},
        }
    )


def cache_key(server: RedisServer, name: str) -> bytes | None:
    """The Redis key under which the service stores view `name`, if present."""
    keys = server.client().keys(f"slakit:*:{name}")
    return keys[0] if keys else None


def until_not_l0(service: ServiceProcess, path: str) -> Any:
    """GET `path` until L0 has expired and another tier (or a computation) answers."""

    def fetch() -> Any:
        reply = service.get(path)
        return reply if reply.headers.get("x-cache") != "L0" else None

    return wait_until(fetch, f"L0 expiry of {path}")


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (gunicorn's workers, for a master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found

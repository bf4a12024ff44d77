"""Real processes for the service tests: redis-server instances and the service itself.

Redis users are the redis role's own: the `user` lines of roles/redis/templates/redis.conf.j2
rendered with the role's defaults (redis_app_acl and the rest), so a command the role forbids
the app fails here as it would in production. Nothing here writes under service/src: the
service's processes run with PYTHONDONTWRITEBYTECODE=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis
import requests
import yaml

REPO = Path(__file__).resolve().parents[3]
SERVICE_SRC = REPO / "service" / "src"
VENV_BIN = Path(sys.executable).parent
ROLE_DEFAULTS = REPO / "roles" / "redis" / "defaults" / "main.yml"
ROLE_CONF_TEMPLATE = REPO / "roles" / "redis" / "templates" / "redis.conf.j2"
# Test passwords (the role requires 16 characters or more).
REDIS_PASSWORDS = {
    "redis_app_password": "unit-test-redis-app-password",
    "redis_admin_password": "unit-test-redis-admin-password",
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


_BARE_REF = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def role_defaults(names: Iterable[str], path: Path = ROLE_DEFAULTS) -> dict[str, str]:
    """These keys of the redis role's defaults as Ansible resolves them there: a plain string,
    or one whose only templating is `{{ other }}` naming another plain-string default (the
    inventories set none of these). Anything else (filters, expressions, facts, undefined
    names) would need Ansible itself: refused, loudly, rather than guessed."""
    data = yaml.safe_load(path.read_text())
    data = data if isinstance(data, dict) else {}

    def resolve(name: str, seen: tuple[str, ...]) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise RuntimeError(f"{path}: {name} must be a non-empty string, found {value!r}")
        if name in seen:
            raise RuntimeError(f"{path}: {name} refers to itself through {' -> '.join(seen)}")
        resolved = _BARE_REF.sub(lambda m: resolve(m.group(1), (*seen, name)), value)
        if "{{" in resolved or "{%" in resolved or "{#" in resolved:
            raise RuntimeError(
                f"{path}: {name} is templated beyond a plain `{{{{ name }}}}` ({value!r}); "
                "the service tests cannot resolve it as Ansible would: simplify it there or "
                "teach svc_harness.role_defaults"
            )
        return resolved

    return {name: resolve(name, ()) for name in names}


_JINJA_VAR = re.compile(r"\{\{\s*(\w+)\s*(\|\s*hash\('sha256'\)\s*)?\}\}")


def role_acl_lines(
    template: Path = ROLE_CONF_TEMPLATE, defaults: Path = ROLE_DEFAULTS
) -> list[str]:
    """The `user` lines of the role's redis.conf template as Ansible renders them with the
    role's defaults (user names and ACLs) and the test passwords."""
    lines = [ln for ln in template.read_text().splitlines() if ln.startswith("user ")]
    names = {m.group(1) for ln in lines for m in _JINJA_VAR.finditer(ln)}
    values = {**role_defaults(sorted(names - set(REDIS_PASSWORDS)), defaults), **REDIS_PASSWORDS}

    def render(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return hashlib.sha256(value.encode()).hexdigest() if match.group(2) else value

    rendered = [_JINJA_VAR.sub(render, ln) for ln in lines]
    leftover = [ln for ln in rendered if "{{" in ln or "{%" in ln]
    if leftover or not rendered:
        raise RuntimeError(f"{template}: cannot render its ACL user lines: {leftover or lines}")
    return rendered


ROLE_USERS = role_defaults(["redis_app_user", "redis_admin_user"])
REDIS_USER = ROLE_USERS["redis_app_user"]
REDIS_ADMIN = ROLE_USERS["redis_admin_user"]
REDIS_PASSWORD = REDIS_PASSWORDS["redis_app_password"]
ACL_LINES = role_acl_lines()


class RedisServer:
    """A redis-server on a loopback port with the redis role's ACL users (the app's, which the
    service gets, and the admin, which tests inspect with); stop() and start() keep the port."""

    def __init__(self, workdir: Path, db: int) -> None:
        self.port = free_port()
        self.db = db
        self.dir = workdir / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "users.conf"
        self.conf.write_text("\n".join(ACL_LINES) + "\n")
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

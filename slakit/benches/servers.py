"""Loopback servers for the benches: temporary redis-server instances, the service under
gunicorn with uvicorn workers, and wrk against it (shared by the service and endpoints
sections)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slakit.errors import SlakitError

REPO = Path(__file__).resolve().parents[2]
SERVICE_SRC = REPO / "service" / "src"
SERVICE_APP = "slakit_service.app:app"
WORKERS = int(os.environ.get("SLAKIT_BENCH_WORKERS", "2"))
READY_PATH = "/api/v1/dashboard/executive"
USERNAME, PASSWORD = "bench", "bench-pw"


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_service() -> None:
    """Makes `slakit_service` importable (the service is not installed in slakit's venv)."""
    if str(SERVICE_SRC) not in sys.path:
        sys.path.insert(0, str(SERVICE_SRC))


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SlakitError(f"bench: {what} exited with code {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SlakitError(f"bench: {what} did not answer {url} within {timeout:.0f} s")


@contextmanager
def redis(workdir: Path, name: str) -> Iterator[str]:
    """A redis-server on a free loopback port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise SlakitError("the bench needs redis-server on PATH (apt-get install redis-server)")
    port, data = free_port(), workdir / name
    data.mkdir()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise SlakitError(f"bench: redis-server {name} did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def gunicorn(app: str, env: dict[str, str], workdir: Path, what: str) -> Iterator[str]:
    """`app` under gunicorn (WORKERS uvicorn workers) on a free loopback port; yields its URL."""
    port = free_port()
    log = (workdir / f"{what.replace(' ', '-')}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker",
         "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--no-control-socket",
         "--graceful-timeout", "5", app],
        env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + READY_PATH, proc, what)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def service_env(l1: str, l2: str, workdir: Path, fast_path: bool = True) -> dict[str, str]:
    """The service's environment: both Redis tiers, one operator user (USERNAME, PASSWORD)."""
    import_service()
    from slakit_service.auth import hash_password

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLAKIT_", "REDIS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(SERVICE_SRC), str(REPO)]),
        REDIS_URL=f"{l1}/5",
        REDIS_PERSIST_URL=f"{l2}/6",
        SLAKIT_TOKEN_SECRET=os.urandom(16).hex(),
        SLAKIT_USERS=json.dumps(
            {USERNAME: {"password_hash": hash_password(PASSWORD), "roles": ["operator"]}}
        ),
        SLAKIT_STATS_DIR=str(workdir / "stats"),
        SLAKIT_L0_FASTPATH="1" if fast_path else "0",
    )
    return env


def token(base: str) -> str:
    import requests

    login = {"username": USERNAME, "password": PASSWORD}
    reply = requests.post(base + "/api/v1/auth/token", json=login, timeout=30)
    return reply.json()["access_token"]


def warm(base: str) -> bytes:
    """Warms the caches; returns the warm dashboard's body."""
    import requests

    reply = requests.post(
        base + "/api/v1/cache/warm", headers={"Authorization": f"Bearer {token(base)}"}, timeout=60
    ).json()
    if not reply.get("complete"):
        raise SlakitError(f"bench: cache warm incomplete: {reply}", exit_code=3)
    dashboard = requests.get(base + READY_PATH, timeout=10)
    if dashboard.headers.get("x-cache") not in ("L0", "L1"):
        raise SlakitError("bench: the dashboard is not warm after cache/warm", exit_code=3)
    return dashboard.content


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, seconds: int, connections: int, threads: int, script: Path | None = None
) -> WrkResult:
    """Closed-loop saturation; a non-2xx answer or a socket error makes the run untrusted."""
    binary = shutil.which("wrk")
    if not binary:
        raise SlakitError("the bench needs wrk on PATH (apt-get install wrk)")
    extra = ["-s", str(script)] if script else []
    out = subprocess.run(
        [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        problem = next(line for line in out.splitlines() if "Non-2xx" in line or "Socket" in line)
        raise SlakitError(f"bench: untrusted wrk run on {url}: {problem.strip()}", exit_code=3)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pcts = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    if not rate or set(pcts) != {"50", "99"}:
        raise SlakitError(f"bench: cannot read wrk output for {url}", exit_code=3)

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNIT_MS[unit]

    return WrkResult(float(rate.group(1)), ms(pcts["50"]), ms(pcts["99"]))

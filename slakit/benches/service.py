"""Service bench: a warm GET /api/v1/dashboard/executive against its ceiling.

Three gunicorn servers with the same worker count, all up at once but loaded one at a time
by `wrk` in interleaved rounds (same time, connections and threads), all on loopback:
  1. the service, caches warm, L0 fast path on (the default);
  2. a bare ASGI app that returns the same bytes: the ceiling for this server and machine;
  3. the service with SLAKIT_L0_FASTPATH=0 (L0 hits go through FastAPI routing).
Two redis-server instances (cache, persist) on temporary loopback ports back the service.
wrk is closed-loop: its latencies show service time under saturation, not an SLA figure.
SLAKIT_BENCH_WORKERS (default 2) and SLAKIT_BENCH_SECONDS (per variant, default 9) tune it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from slakit.bench import BenchRow
from slakit.errors import SlakitError

REPO = Path(__file__).resolve().parents[2]
SERVICE_SRC = REPO / "service" / "src"
PATH = "/api/v1/dashboard/executive"
WORKERS = int(os.environ.get("SLAKIT_BENCH_WORKERS", "2"))
DURATION_S = int(os.environ.get("SLAKIT_BENCH_SECONDS", "9"))  # per variant, all rounds
ROUNDS = 3
WARMUP_S = 2
CONNECTIONS, THREADS = 64, 2
TARGET_RATIO_PCT = 45.0
SECTION = "service"


def bare_app_factory():  # returns an ASGI callable
    """The ceiling: an ASGI app that only returns the bytes in $SLAKIT_BENCH_BODY_FILE."""
    body = Path(os.environ["SLAKIT_BENCH_BODY_FILE"]).read_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SlakitError(f"service bench: {what} exited with code {proc.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SlakitError(f"service bench: {what} did not answer {url} within {timeout:.0f} s")


@contextmanager
def _redis(workdir: Path, name: str) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if not binary:
        raise SlakitError("service bench needs redis-server on PATH (apt-get install redis-server)")
    port, data = _free_port(), workdir / name
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
                    raise SlakitError(f"service bench: redis-server {name} did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _gunicorn(app: str, env: dict[str, str], workdir: Path, what: str) -> Iterator[str]:
    port = _free_port()
    log = (workdir / f"{what.replace(' ', '-')}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker",
         "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--no-control-socket",
         "--graceful-timeout", "5", app],
        env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(base + PATH, proc, what)
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


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, seconds: int) -> WrkResult:
    wrk = shutil.which("wrk")
    if not wrk:
        raise SlakitError("service bench needs wrk on PATH (apt-get install wrk)")
    out = subprocess.run(
        [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        problem = next(line for line in out.splitlines() if "Non-2xx" in line or "Socket" in line)
        raise SlakitError(f"service bench: untrusted run on {url}: {problem.strip()}", exit_code=3)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pcts = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    if not rate or set(pcts) != {"50", "99"}:
        raise SlakitError(f"service bench: cannot read wrk output for {url}", exit_code=3)

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNIT_MS[unit]

    return WrkResult(float(rate.group(1)), ms(pcts["50"]), ms(pcts["99"]))


def _measure(bases: dict[str, str]) -> dict[str, WrkResult]:
    """Interleaved rounds (A, B, C, A, B, C, ...) so that drifting background load on the
    machine hits every variant alike; each figure is the median over the rounds."""
    for base in bases.values():
        _wrk(base + PATH, WARMUP_S)  # fills every worker's L0 and settles the processes
    rounds: dict[str, list[WrkResult]] = {name: [] for name in bases}
    for _ in range(ROUNDS):
        for name, base in bases.items():
            rounds[name].append(_wrk(base + PATH, max(1, DURATION_S // ROUNDS)))
    return {
        name: WrkResult(
            median(r.requests_per_s for r in results),
            median(r.p50_ms for r in results),
            median(r.p99_ms for r in results),
        )
        for name, results in rounds.items()
    }


def _service_env(l1: str, l2: str, workdir: Path, fast_path: bool) -> dict[str, str]:
    from slakit_service.auth import hash_password  # importable once run() extends sys.path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLAKIT_", "REDIS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(SERVICE_SRC), str(REPO)]),
        REDIS_URL=f"{l1}/5",
        REDIS_PERSIST_URL=f"{l2}/6",
        SLAKIT_TOKEN_SECRET=os.urandom(16).hex(),
        SLAKIT_USERS=json.dumps(
            {"bench": {"password_hash": hash_password("bench-pw"), "roles": ["operator"]}}
        ),
        SLAKIT_STATS_DIR=str(workdir / "stats"),
        SLAKIT_L0_FASTPATH="1" if fast_path else "0",
    )
    return env


def _warm(base: str) -> bytes:
    import requests

    token = requests.post(
        base + "/api/v1/auth/token", json={"username": "bench", "password": "bench-pw"}, timeout=30
    ).json()["access_token"]
    warm = requests.post(
        base + "/api/v1/cache/warm", headers={"Authorization": f"Bearer {token}"}, timeout=60
    ).json()
    if not warm.get("complete"):
        raise SlakitError(f"service bench: cache warm incomplete: {warm}", exit_code=3)
    reply = requests.get(base + PATH, timeout=10)
    if reply.headers.get("x-cache") not in ("L0", "L1"):
        raise SlakitError("service bench: the dashboard is not warm after cache/warm", exit_code=3)
    return reply.content


def run() -> list[BenchRow]:
    if str(SERVICE_SRC) not in sys.path:
        sys.path.insert(0, str(SERVICE_SRC))
    with tempfile.TemporaryDirectory(prefix="slakit-bench-service-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        l1 = stack.enter_context(_redis(workdir, "cache"))
        l2 = stack.enter_context(_redis(workdir, "persist"))
        env = _service_env(l1, l2, workdir, fast_path=True)
        warm = stack.enter_context(_gunicorn("slakit_service.app:app", env, workdir, "service"))
        body_file = workdir / "executive.json"
        body_file.write_bytes(_warm(warm))
        bare_env = {**env, "SLAKIT_BENCH_BODY_FILE": str(body_file)}
        bare_app = "slakit.benches.service:bare_app_factory()"
        bare = stack.enter_context(_gunicorn(bare_app, bare_env, workdir, "bare asgi"))
        env_off = _service_env(l1, l2, workdir, fast_path=False)
        off = stack.enter_context(
            _gunicorn("slakit_service.app:app", env_off, workdir, "service no fast path")
        )
        _warm(off)
        results = _measure(
            {
                "warm dashboard": warm,
                "bare ASGI ceiling": bare,
                "warm dashboard, fast path off": off,
            }
        )

    per_round = max(1, DURATION_S // ROUNDS)
    setup = f"{WORKERS} workers, wrk -t{THREADS} -c{CONNECTIONS}, median of {ROUNDS}x{per_round}s"
    rows = []
    for name, result in results.items():
        rows += [
            BenchRow(SECTION, f"{name}: requests/s ({setup})", result.requests_per_s, "req/s"),
            BenchRow(SECTION, f"{name}: p50", result.p50_ms, "ms"),
            BenchRow(SECTION, f"{name}: p99", result.p99_ms, "ms"),
        ]
    ceiling = results["bare ASGI ceiling"].requests_per_s
    ratio = 100 * results["warm dashboard"].requests_per_s / ceiling
    off_ratio = 100 * results["warm dashboard, fast path off"].requests_per_s / ceiling
    rows += [
        BenchRow(
            SECTION,
            "warm dashboard / bare ASGI requests/s",
            ratio,
            "%",
            f">= {TARGET_RATIO_PCT:.0f}%",
            ratio >= TARGET_RATIO_PCT,
        ),
        BenchRow(SECTION, "fast path off / bare ASGI requests/s", off_ratio, "%"),
    ]
    return rows

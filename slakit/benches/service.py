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

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from statistics import median

from slakit.bench import BenchRow
from slakit.benches.servers import (
    SERVICE_APP,
    WORKERS,
    WrkResult,
    gunicorn,
    redis,
    service_env,
    warm,
    wrk,
)

PATH = "/api/v1/dashboard/executive"
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


def _wrk(url: str, seconds: int) -> WrkResult:
    return wrk(url, seconds, CONNECTIONS, THREADS)


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


def run() -> list[BenchRow]:
    with tempfile.TemporaryDirectory(prefix="slakit-bench-service-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        l1 = stack.enter_context(redis(workdir, "cache"))
        l2 = stack.enter_context(redis(workdir, "persist"))
        env = service_env(l1, l2, workdir, fast_path=True)
        served = stack.enter_context(gunicorn(SERVICE_APP, env, workdir, "service"))
        body_file = workdir / "executive.json"
        body_file.write_bytes(warm(served))
        bare_env = {**env, "SLAKIT_BENCH_BODY_FILE": str(body_file)}
        bare_app = "slakit.benches.service:bare_app_factory()"
        bare = stack.enter_context(gunicorn(bare_app, bare_env, workdir, "bare asgi"))
        env_off = service_env(l1, l2, workdir, fast_path=False)
        off = stack.enter_context(gunicorn(SERVICE_APP, env_off, workdir, "service no fast path"))
        warm(off)
        results = _measure(
            {
                "warm dashboard": served,
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

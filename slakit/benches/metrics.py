"""Metrics bench: what /metrics costs the service.

1. Per request (slakit.benches.metrics_overhead, a subprocess): the shared-stats counting
   before /metrics, now, and prometheus_client's multiprocess mode instead.
2. The warm executive dashboard under `wrk` (as the service bench: gunicorn, two loopback
   redis-servers), in interleaved rounds without and with a scraper that GETs /metrics once a
   second; the scrapes' own duration too. Loopback only, bounded: ROUNDS x (2 x per-round s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from statistics import median

import requests

from slakit.bench import BenchRow
from slakit.benches import service as svc
from slakit.errors import SlakitError

SECTION = "metrics"
SCRAPE_INTERVAL_S = 1.0


def _overhead() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="slakit-prom-") as prom_dir:
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": prom_dir,
            "PYTHONPATH": os.pathsep.join([str(svc.SERVICE_SRC), str(svc.REPO)]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        out = subprocess.run(
            [sys.executable, "-m", "slakit.benches.metrics_overhead"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    if out.returncode != 0:
        raise SlakitError(f"metrics bench: overhead run failed: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout)


class _Scraper(threading.Thread):
    """GET /metrics every SCRAPE_INTERVAL_S until stopped; keeps each scrape's seconds."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.seconds, self.size = url, threading.Event(), [], 0
        self.failure = ""

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                began = time.perf_counter()
                reply = session.get(self.url, timeout=5)
                self.seconds.append(time.perf_counter() - began)
                if reply.status_code != 200:
                    self.failure = f"metrics bench: /metrics answered {reply.status_code}"
                    return
                self.size = len(reply.content)
                self.stop.wait(max(0.0, SCRAPE_INTERVAL_S - (time.perf_counter() - began)))


def _dashboard(base: str) -> tuple[dict[str, svc.WrkResult], list[float], int]:
    per_round = max(2, svc.DURATION_S // svc.ROUNDS)
    svc._wrk(base + svc.PATH, svc.WARMUP_S)
    rounds: dict[str, list[svc.WrkResult]] = {"without": [], "with": []}
    scrapes: list[float] = []
    size = 0
    for _ in range(svc.ROUNDS):
        rounds["without"].append(svc._wrk(base + svc.PATH, per_round))
        scraper = _Scraper(base + "/metrics")
        scraper.start()
        try:
            rounds["with"].append(svc._wrk(base + svc.PATH, per_round))
        finally:
            scraper.stop.set()
            scraper.join(10)
        if scraper.failure:
            raise SlakitError(scraper.failure, exit_code=3)
        scrapes += scraper.seconds
        size = scraper.size
    figures = {
        name: svc.WrkResult(
            median(r.requests_per_s for r in results),
            median(r.p50_ms for r in results),
            median(r.p99_ms for r in results),
        )
        for name, results in rounds.items()
    }
    return figures, scrapes, size


def run() -> list[BenchRow]:
    if str(svc.SERVICE_SRC) not in sys.path:
        sys.path.insert(0, str(svc.SERVICE_SRC))
    cost = _overhead()
    rows = [
        BenchRow(SECTION, "per request: shared stats before /metrics", cost["stats_before"], "ns"),
        BenchRow(SECTION, "per request: shared stats + request series", cost["stats_now"], "ns"),
        BenchRow(
            SECTION,
            "per request: prometheus_client multiprocess (histogram + counter)",
            cost["prometheus_client"],
            "ns",
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="slakit-bench-metrics-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        l1 = stack.enter_context(svc._redis(workdir, "cache"))
        l2 = stack.enter_context(svc._redis(workdir, "persist"))
        env = svc._service_env(l1, l2, workdir, fast_path=True)
        base = stack.enter_context(svc._gunicorn("slakit_service.app:app", env, workdir, "service"))
        svc._warm(base)
        figures, scrapes, size = _dashboard(base)
    setup = f"{svc.WORKERS} workers, wrk -t{svc.THREADS} -c{svc.CONNECTIONS}, median of rounds"
    for name, result in figures.items():
        label = f"dashboard {name} a 1 s /metrics scrape"
        rows += [
            BenchRow(SECTION, f"{label}: requests/s ({setup})", result.requests_per_s, "req/s"),
            BenchRow(SECTION, f"{label}: p50", result.p50_ms, "ms"),
            BenchRow(SECTION, f"{label}: p99", result.p99_ms, "ms"),
        ]
    rows += [
        BenchRow(
            SECTION,
            f"/metrics scrape under load: median of {len(scrapes)}",
            1000 * median(scrapes),
            "ms",
        ),
        BenchRow(SECTION, "/metrics scrape under load: max", 1000 * max(scrapes), "ms"),
        BenchRow(SECTION, "/metrics body", size / 1024, "KiB"),
    ]
    return rows

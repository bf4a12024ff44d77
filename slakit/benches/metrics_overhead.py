"""Per-request cost of counting the Prometheus request metrics, for each candidate.

Run as `python -m slakit.benches.metrics_overhead` with PROMETHEUS_MULTIPROC_DIR set (an empty
folder) and the service on sys.path (slakit.benches.metrics does both); prints JSON, ns per
request, best of ROUNDS:
  - `stats_before`: what a request cost the shared stats before /metrics (a copy of that code);
  - `stats_now`: WorkerStats.record now, the same plus the request series (bucket, status);
  - `prometheus_client`: a Histogram observe and a Counter inc in multiprocess mode (labels
    resolved per request, as a middleware would), which would come on top of `stats_before`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROUNDS, N = 5, 100_000
ROUTE_PATH = "/api/v1/dashboard/executive"


def _best_ns(step: Callable[[int], None]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.perf_counter_ns()
        for i in range(N):
            step(i)
        best = min(best, (time.perf_counter_ns() - began) / N)
    return best


def main() -> None:
    from prometheus_client import Counter, Histogram
    from slakit_service import stats
    from slakit_service.series import DEFAULT_BUCKETS_MS

    shared = stats.WorkerStats()
    shared.share(Path(tempfile.mkdtemp(prefix="slakit-overhead-")))
    route = stats.ROUTE_INDEX[f"GET {ROUTE_PATH}"]
    slots = shared._slots

    def before(route: int, status: int, elapsed_ns: int) -> None:
        """WorkerStats.record as it was before the request series."""
        us = elapsed_ns // 1000
        slots[stats.STATUS_BASE + min(max(status // 100, 1), 5) - 1] += 1
        base = stats.ROUTE_BASE + route * stats.ROUTE_SLOTS
        slots[base] += 1
        slots[base + 1] += us
        if us > slots[base + 2]:
            slots[base + 2] = us
        slots[base + 3 + stats.bucket_of(us)] += 1

    seconds = [ms / 1000 for ms in DEFAULT_BUCKETS_MS]
    duration = Histogram("d_seconds", "d", ["route", "method"], buckets=seconds)
    requests = Counter("r_total", "r", ["route", "method", "status"])

    def prometheus(i: int) -> None:
        duration.labels(ROUTE_PATH, "GET").observe((1_000_000 + i) / 1e9)
        requests.labels(ROUTE_PATH, "GET", "200").inc()

    figures = {
        "stats_before": _best_ns(lambda i: before(route, 200, 1_000_000 + i)),
        "stats_now": _best_ns(lambda i: shared.record(route, 200, 1_000_000 + i)),
        "prometheus_client": _best_ns(prometheus),
    }
    json.dump(figures, sys.stdout)


if __name__ == "__main__":
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise SystemExit("set PROMETHEUS_MULTIPROC_DIR to an empty folder")
    main()

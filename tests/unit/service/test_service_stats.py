"""/api/v1/performance/stats covers every worker of a gunicorn server, not one worker."""

from __future__ import annotations

import os
import signal

import requests
from svc_harness import ServiceProcess, children, wait_until

EXECUTIVE = "GET /api/v1/dashboard/executive"
REQUESTS = 40


def _views_from_every_worker(service: ServiceProcess, workers: int) -> dict[int, dict]:
    """One stats reply per worker pid (fresh connections land on different workers)."""
    seen: dict[int, dict] = {}

    def collect() -> bool:
        body = requests.get(service.base + "/api/v1/performance/stats", timeout=5).json()
        seen[body["this_worker"]["pid"]] = body
        return len(seen) >= workers

    wait_until(collect, f"stats replies from {workers} workers")
    return seen


def test_stats_sum_all_workers(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, workers=2)
    for _ in range(REQUESTS):  # a new connection each time, so both workers serve some
        assert requests.get(service.base + "/api/v1/dashboard/executive", timeout=5).ok

    def settled() -> dict | None:
        body = service.stats()
        count = body["requests"]["by_endpoint"].get(EXECUTIVE, {}).get("count")
        return body if count == REQUESTS and body["workers"] == 2 else None

    stats = wait_until(settled, "stats to count every request")
    cache = stats["cache"]
    assert cache["l0"]["hits"] + cache["l0"]["misses"] == REQUESTS
    assert 0 <= cache["overall_hit_rate"] <= 1
    assert cache["computes"] + cache["l1"]["hits"] + cache["l2"]["hits"] == cache["l0"]["misses"]
    timing = stats["requests"]["by_endpoint"][EXECUTIVE]
    assert 0 < timing["p50"] <= timing["p99"] <= timing["max"]

    views = _views_from_every_worker(service, 2)
    assert len(views) == 2
    for body in views.values():  # each worker reports the same server-wide figures
        assert body["workers"] == 2
        assert body["requests"]["by_endpoint"][EXECUTIVE]["count"] == REQUESTS
        assert body["cache"]["l0"] == cache["l0"]


def test_a_replaced_worker_keeps_its_counts(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, workers=2)
    # the server answers once one worker is up; the victim must have started (and shared its
    # counters) too, or there is nothing of it to keep
    wait_until(lambda: service.stats()["workers"] == 2, "both workers to start", timeout=60)
    for _ in range(REQUESTS):
        requests.get(service.base + "/api/v1/dashboard/executive", timeout=5)
    wait_until(
        lambda: service.stats()["requests"]["by_endpoint"][EXECUTIVE]["count"] == REQUESTS,
        "stats to count every request",
    )
    victim = children(service.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)  # gunicorn boots a replacement

    def replaced() -> dict | None:
        body = service.stats()
        ok = (
            victim not in children(service.proc.pid)
            and body["workers"] == 2
            and body["workers_retired"] == 1
        )
        return body if ok else None

    def state() -> str:
        body = service.stats()
        figures = {k: body.get(k) for k in ("workers", "workers_retired")}
        return (
            f"victim {victim}, workers now {children(service.proc.pid)}, stats {figures}\n"
            f"service log tail:\n{service.log()[-3000:]}"
        )

    # the replacement builds its dataset (about a second) before it counts
    stats = wait_until(replaced, "a replacement worker", timeout=30, describe=state)
    assert stats["requests"]["by_endpoint"][EXECUTIVE]["count"] == REQUESTS


def test_plain_uvicorn_reports_one_worker(redis_pair, start_service) -> None:
    service = start_service(*redis_pair)
    service.get("/api/v1/dashboard/executive")
    stats = service.stats()
    assert stats["workers"] == 1
    assert stats["scope"] == "server"
    assert set(stats["cache"]) >= {"l0", "l1", "l2", "overall_hit_rate"}
    for tier in ("l0", "l1", "l2"):
        assert set(stats["cache"][tier]) >= {"hits", "misses", "hit_rate"}

"""GET /metrics: valid Prometheus text, summed over the workers of a real gunicorn server."""

from __future__ import annotations

import math

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from slakit_service.series import DEFAULT_BUCKETS_MS, parse_buckets_ms
from svc_harness import ServiceProcess, wait_until

from slakit.sla.spec import load_spec

EXECUTIVE = "/api/v1/dashboard/executive"
DURATION = "slakit_http_request_duration_seconds"
Labels = tuple[tuple[str, str], ...]


def scrape(service: ServiceProcess) -> dict[tuple[str, Labels], float]:
    """{(sample name, sorted labels): value}, parsed by prometheus_client's own parser."""
    reply = requests.get(service.base + "/metrics", timeout=5)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def histogram(samples: dict, route: str, method: str = "GET") -> list[tuple[float, float]]:
    """[(le, cumulative count)] of one series, in le order."""
    rows = [
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == f"{DURATION}_bucket"
        and ("route", route) in labels
        and ("method", method) in labels
    ]
    return sorted(rows)


def settled(service: ServiceProcess, route: str, method: str, count: int, workers: int) -> dict:
    """A scrape once every request to (route, method) is counted (each is counted after its
    last byte went out) and every worker is up."""

    def ready() -> dict | None:
        samples = scrape(service)
        done = value(samples, f"{DURATION}_count", route=route, method=method) == count
        return samples if done and value(samples, "slakit_workers_alive") == workers else None

    return wait_until(ready, f"/metrics to count {count} {method} {route}")


def test_requests_by_route_and_status_summed_over_workers(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, workers=2)
    wait_until(lambda: service.stats()["workers"] == 2, "both workers to start", timeout=60)
    health_before = value(
        scrape(service), f"{DURATION}_count", route="/api/v1/health", method="GET"
    )
    pids, sent = set(), 0
    while sent < 30 or (len(pids) < 2 and sent < 300):  # new connections: both workers serve
        reply = requests.get(service.base + EXECUTIVE, timeout=5)
        assert reply.status_code == 200
        pids.add(requests.get(service.base + "/api/v1/health", timeout=5).json()["pid"])
        sent += 1
    for _ in range(4):
        assert requests.get(service.base + "/no/such/path", timeout=5).status_code == 404
    for _ in range(3):
        assert requests.post(service.base + EXECUTIVE, timeout=5).status_code == 405
    samples = settled(service, "other", "GET", 4, workers=2)
    assert len(pids) == 2, "the requests must reach both workers for the sum to mean anything"

    requests_total = "slakit_http_requests_total"
    assert value(samples, requests_total, route=EXECUTIVE, method="GET", status="200") == sent
    assert value(samples, requests_total, route=EXECUTIVE, method="POST", status="405") == 3
    assert value(samples, requests_total, route="other", method="GET", status="404") == 4
    health = value(samples, requests_total, route="/api/v1/health", method="GET", status="200")
    assert health == health_before + sent  # before: the harness's readiness probe
    assert value(samples, "slakit_workers_alive") == 2

    rows = histogram(samples, EXECUTIVE)
    assert [le for le, _ in rows] == [ms / 1000 for ms in DEFAULT_BUCKETS_MS] + [math.inf]
    counts = [n for _, n in rows]
    assert counts == sorted(counts), "buckets must be cumulative"
    assert counts[-1] == value(samples, f"{DURATION}_count", route=EXECUTIVE, method="GET") == sent
    assert value(samples, f"{DURATION}_sum", route=EXECUTIVE, method="GET") > 0

    # the cache figures are the ones /api/v1/performance/stats sums: one lookup per request
    def cache(tier: str, result: str) -> float:
        return value(samples, "slakit_cache_requests_total", tier=tier, result=result)

    assert cache("L0", "hit") + cache("L0", "miss") == sent
    assert cache("L0", "miss") == cache("L1", "hit") + cache("L1", "miss")
    assert cache("L1", "miss") == cache("L2", "hit") + cache("L2", "miss")
    assert cache("L0", "hit") >= 1 and cache("L2", "miss") >= 1  # computed once, then served
    cache_stats = service.stats()["cache"]
    assert cache_stats["l0"]["hits"] == cache("L0", "hit")
    assert cache_stats["l1"]["misses"] == cache("L1", "miss")
    for instance in ("cache", "persist"):
        assert value(samples, "slakit_redis_errors_total", instance=instance) == 0


def test_a_known_latency_lands_in_its_bucket(start_service) -> None:
    # every request waits 30 ms in the drill layer, which the timing includes
    service = start_service(
        None, None, workers=3, SLAKIT_DRILL_DELAY_MS="30", SLAKIT_METRICS_BUCKETS_MS="5,25,3000"
    )
    for _ in range(9):  # /health: the harness probes only /api/v1/health
        assert requests.get(service.base + "/health", timeout=5).status_code == 200
    samples = settled(service, "/health", "GET", 9, workers=3)
    rows = histogram(samples, "/health")
    assert rows == [(0.005, 0), (0.025, 0), (3.0, 9), (math.inf, 9)]
    assert value(samples, f"{DURATION}_sum", route="/health", method="GET") >= 9 * 0.030
    assert value(samples, "slakit_workers_alive") == 3


def test_redis_errors_then_tier_skips(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    # L0 expires after 1 ms, so nearly every lookup reads L1 (one that comes within 1 ms of a
    # fill hits L0: counted from the service's own L0 misses, not assumed); a failure pauses
    # L1 for a minute
    service = start_service(
        l1, l2, workers=2, SLAKIT_L0_TTL_SECONDS="0.001", SLAKIT_REDIS_RETRY_SECONDS="60"
    )
    wait_until(lambda: service.stats()["workers"] == 2, "both workers to start", timeout=60)
    assert requests.get(service.base + EXECUTIVE, timeout=5).status_code == 200  # fills L1, L2
    before = settled(service, EXECUTIVE, "GET", 1, workers=2)
    l1.stop()
    for _ in range(20):
        assert requests.get(service.base + EXECUTIVE, timeout=5).status_code == 200
    samples = settled(service, EXECUTIVE, "GET", 21, workers=2)
    l0_miss = {"name": "slakit_cache_requests_total", "tier": "L0", "result": "miss"}
    lookups = value(samples, **l0_miss) - value(before, **l0_miss)  # reads of L1 after the stop
    errors = value(samples, "slakit_redis_errors_total", instance="cache")
    skips = value(samples, "slakit_redis_tier_skips_total", tier="L1")
    print(f"\nafter the stop: {lookups:.0f} L1 lookups, {errors:.0f} errors, {skips:.0f} skips")
    assert lookups >= 10  # most of the 20 requests read L1: the test measures something
    # one failed call per worker that read L1 after the stop; every later call is skipped
    assert 1 <= errors <= 2
    assert errors + skips == 2 * lookups  # each lookup: a GET of L1, then (L2 hit) a SET of L1
    assert value(samples, "slakit_redis_errors_total", instance="persist") == 0
    assert value(samples, "slakit_redis_tier_skips_total", tier="L2") == 0
    l1_errors = service.stats()["cache"]["l1"]["errors"]  # lookups the failing tier missed
    assert l1_errors == lookups


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", DEFAULT_BUCKETS_MS),
        ("1, 2.5,10", (1.0, 2.5, 10.0)),
        ("1,1,2", DEFAULT_BUCKETS_MS),
        ("5,2", DEFAULT_BUCKETS_MS),
        ("0,1", DEFAULT_BUCKETS_MS),
        ("1,inf", DEFAULT_BUCKETS_MS),
        ("1,x", DEFAULT_BUCKETS_MS),
    ],
)
def test_bucket_setting(raw: str, expected: tuple[float, ...]) -> None:
    buckets, problem = parse_buckets_ms(raw)
    assert buckets == expected
    assert bool(problem) == (raw != "" and expected == DEFAULT_BUCKETS_MS)


def test_default_buckets_hold_every_sla_target() -> None:
    """Each endpoint's target and, at the default target, every objective's threshold (15 ms,
    22.5 ms, 250 ms in sla/spec.yml) is a bucket bound: a rule reads it without interpolation."""
    spec = load_spec()
    wanted = set()
    for story in spec.stories:
        for endpoint in story.endpoints:
            wanted.add(endpoint.target_ms)
            if endpoint.target_ms == spec.target_ms:
                wanted.update(endpoint.thresholds_ms(story))
    assert {15.0, 22.5, 250.0} <= wanted
    assert wanted <= set(DEFAULT_BUCKETS_MS)


def test_only_loopback_and_the_scrapers_read_metrics(start_service) -> None:
    """A request the load balancer forwards counts as its client's (X-Forwarded-For, trusted
    from loopback here as from the load balancers in a deploy): /metrics is 404 for everyone
    but loopback and SLAKIT_METRICS_CLIENTS."""
    service = start_service(None, None, workers=1, SLAKIT_METRICS_CLIENTS="198.51.100.0/24, x")
    url = service.base + "/metrics"
    assert requests.get(url, timeout=5).status_code == 200  # loopback itself
    scraper = requests.get(url, headers={"X-Forwarded-For": "198.51.100.7"}, timeout=5)
    assert scraper.status_code == 200 and "slakit_workers_alive" in scraper.text
    stranger = requests.get(url, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)
    assert stranger.status_code == 404 and stranger.json()["error"] == "not_found"
    assert "slakit_" not in stranger.text

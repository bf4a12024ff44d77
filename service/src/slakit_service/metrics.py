"""`GET /metrics`: the Prometheus text format (0.0.4), rendered from the shared stats files.

Every figure is read from the counters the workers already share (stats.py), summed over the
server's workers at scrape time, so nothing is counted twice and any worker answers for all.
Why not prometheus_client's multiprocess mode: measured per request (`invoke bench --only
metrics`, service/README.md "Metrics"), its histogram + counter updates cost several times what
the shared counters' updates cost, and the cache and Redis figures would be counted twice.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from .series import DECLARED, SERIES, STATUS_LABELS, series_labels
from .stats import CACHE_BASE, HTTP_BASE, Cache, WorkerStats, read_group

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION = "slakit_http_request_duration_seconds"


def _family(name: str, kind: str, help_text: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


def _seconds(ns: int) -> str:
    return repr(ns / 1e9)


def _http(stats: WorkerStats, snapshots: list[array]) -> tuple[list[str], list[str]]:
    """(histogram lines, request counter lines) of every series with requests, or declared."""
    width = stats.series_slots
    les = [repr(ms / 1000) for ms in stats.buckets_ms] + ["+Inf"]
    histogram: list[str] = []
    counters: list[str] = []
    for series in range(SERIES):
        base = HTTP_BASE + series * width
        count = sum(snap[base] for snap in snapshots)
        if not count and series not in DECLARED:
            continue
        block = [sum(col) for col in zip(*(s[base : base + width] for s in snapshots), strict=True)]
        route, method = series_labels(series)
        labels = f'route="{route}",method="{method}"'
        cumulative = 0
        for le, n in zip(les, block[2 : stats.status_offset], strict=True):
            cumulative += n
            histogram.append(f'{DURATION}_bucket{{{labels},le="{le}"}} {cumulative}')
        histogram.append(f"{DURATION}_sum{{{labels}}} {_seconds(block[1])}")
        histogram.append(f"{DURATION}_count{{{labels}}} {count}")
        for status, n in zip(STATUS_LABELS, block[stats.status_offset :], strict=True):
            if n:
                counters.append(f'slakit_http_requests_total{{{labels},status="{status}"}} {n}')
    return histogram, counters


def render(stats: WorkerStats) -> bytes:
    snapshots, alive = read_group(stats)

    def total(counter: Cache) -> int:
        return sum(snap[CACHE_BASE + counter] for snap in snapshots)

    histogram, requests = _http(stats, snapshots)
    lines = [
        *_family(DURATION, "histogram", "Request duration by route template and method."),
        *histogram,
        *_family("slakit_http_requests_total", "counter", "Finished HTTP requests by status."),
        *requests,
        *_family(
            "slakit_cache_requests_total",
            "counter",
            "Cache lookups by tier and result (an L0 miss is one L1 lookup, an L1 miss one L2).",
        ),
    ]
    for tier, hits, misses in (
        ("L0", Cache.L0_HITS, Cache.L0_MISSES),
        ("L1", Cache.L1_HITS, Cache.L1_MISSES),
        ("L2", Cache.L2_HITS, Cache.L2_MISSES),
    ):
        lines.append(f'slakit_cache_requests_total{{tier="{tier}",result="hit"}} {total(hits)}')
        lines.append(f'slakit_cache_requests_total{{tier="{tier}",result="miss"}} {total(misses)}')
    lines += _family("slakit_redis_errors_total", "counter", "Redis calls that failed.")
    lines.append(f'slakit_redis_errors_total{{instance="cache"}} {total(Cache.L1_CALL_ERRORS)}')
    lines.append(f'slakit_redis_errors_total{{instance="persist"}} {total(Cache.L2_CALL_ERRORS)}')
    lines += _family(
        "slakit_redis_tier_skips_total",
        "counter",
        "Redis calls not made: the tier was in its retry pause after a failure.",
    )
    lines.append(f'slakit_redis_tier_skips_total{{tier="L1"}} {total(Cache.L1_SKIPS)}')
    lines.append(f'slakit_redis_tier_skips_total{{tier="L2"}} {total(Cache.L2_SKIPS)}')
    lines += _family("slakit_workers_alive", "gauge", "Live workers of this server.")
    lines.append(f"slakit_workers_alive {alive}")
    return ("\n".join(lines) + "\n").encode()

"""Per-worker counters in a shared-memory file, summed across the workers of a server.

Each worker owns one file `<stats_dir>/<group>/<pid>.stats`, mmapped and updated in place
(single writer, no locks, no flushing), so any worker can read every sibling's live
figures at once. `<group>` names the server process (the gunicorn or uvicorn master, or
the worker itself when it runs alone) and its start time, so a restarted server starts
from zero and groups of dead servers are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import mmap
import multiprocessing
import os
import shutil
import sys
import time
from array import array
from bisect import bisect_left
from enum import IntEnum
from pathlib import Path

from .endpoints import ROUTES
from .series import DEFAULT_BUCKETS_MS, SERIES, STATUS_LABELS, series_of, status_slot

log = logging.getLogger("slakit_service.stats")

ROUTE_INDEX = {route: index for index, route in enumerate(ROUTES)}
OTHER_ROUTE = ROUTE_INDEX["other"]


class Cache(IntEnum):
    L0_HITS = 0
    L0_MISSES = 1
    L1_HITS = 2
    L1_MISSES = 3
    L1_ERRORS = 4
    L2_HITS = 5
    L2_MISSES = 6
    L2_ERRORS = 7
    COMPUTES = 8
    COALESCED = 9
    WARM_RUNS = 10
    WARM_COMPUTES = 11
    # Redis calls of any kind (RedisTier.run), not only cache lookups
    L1_CALL_ERRORS = 12
    L2_CALL_ERRORS = 13
    L1_SKIPS = 14  # calls not made: the tier is in its retry pause after a failure
    L2_SKIPS = 15


# Response-time histogram: exact below 16 us, then 8 buckets per power of two (<= 12.5% wide).
EXACT = 16
SUB = 8
BUCKETS = EXACT + SUB * 27  # up to 2**31 us (~36 min)


def bucket_of(us: int) -> int:
    if us < EXACT:
        return us
    exponent = us.bit_length()
    index = EXACT + (exponent - 5) * SUB + ((us >> (exponent - 4)) & (SUB - 1))
    return min(index, BUCKETS - 1)


def bucket_upper_us(index: int) -> int:
    if index < EXACT:
        return index
    k = index - EXACT
    shift = k // SUB + 1
    return ((SUB + k % SUB + 1) << shift) - 1


HEADER_SLOTS, CACHE_SLOTS, STATUS_SLOTS = 8, 16, 8
ROUTE_SLOTS = 3 + BUCKETS  # count, sum_us, max_us, histogram
CACHE_BASE = HEADER_SLOTS
STATUS_BASE = CACHE_BASE + CACHE_SLOTS  # 1xx..5xx, then fast-path count at +5
FAST_PATH_SLOT = STATUS_BASE + 5
ROUTE_BASE = STATUS_BASE + STATUS_SLOTS
# Then the Prometheus request series (series.py), each: count, sum_ns, one slot per histogram
# bucket (+Inf last; not cumulative), one per status label. Their size follows the buckets.
HTTP_BASE = ROUTE_BASE + ROUTE_SLOTS * len(ROUTES)
MAGIC = 0x534C414B49545354  # "SLAKITST"
# ROUTE_SERIES[route]: the request series of a declared route (its path, its method)
ROUTE_SERIES = tuple(series_of(*(r.split(" ", 1) if r != "other" else (r, r))) for r in ROUTES)
# header slots
H_MAGIC, H_LAYOUT, H_PID, H_STARTTIME, H_CREATED, H_RETIRED = range(6)


def process_starttime(pid: int) -> int:
    """Kernel start time of `pid` in clock ticks, 0 when unknown (tells reused pids apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, starttime: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return starttime == 0 or process_starttime(pid) in (0, starttime)


def group_leader() -> int:
    """The server process whose workers share figures: the master when there is one."""
    if "gunicorn.arbiter" in sys.modules or multiprocessing.parent_process() is not None:
        return os.getppid()
    return os.getpid()


class WorkerStats:
    """This worker's counters; in plain memory until `share()` maps them to a file."""

    def __init__(self, buckets_ms: tuple[float, ...] = DEFAULT_BUCKETS_MS) -> None:
        self.buckets_ms = buckets_ms
        self.bounds_ns = tuple(round(ms * 1_000_000) for ms in buckets_ms)
        self.status_offset = 2 + len(buckets_ms) + 1
        self.series_slots = self.status_offset + len(STATUS_LABELS)
        self.total_slots = HTTP_BASE + SERIES * self.series_slots
        # workers of one server share it; a file of another layout is never summed
        shape = f"{ROUTES}{BUCKETS}{HTTP_BASE}{SERIES}{self.bounds_ns}{STATUS_LABELS}"
        self.layout = int.from_bytes(hashlib.sha256(shape.encode()).digest()[:7], "little")
        self._buffer: mmap.mmap | bytearray = bytearray(self.total_slots * 8)
        self._slots = memoryview(self._buffer).cast("Q")
        self.path: Path | None = None
        self.group_dir: Path | None = None
        self._init_header()

    def _init_header(self) -> None:
        pid = os.getpid()
        self._slots[H_MAGIC] = MAGIC
        self._slots[H_LAYOUT] = self.layout
        self._slots[H_PID] = pid
        self._slots[H_STARTTIME] = process_starttime(pid)
        self._slots[H_CREATED] = int(time.time())

    def share(self, stats_dir: Path) -> None:
        """Move the counters into `<stats_dir>/<group>/<pid>.stats` (kept on failure)."""
        leader = group_leader()
        group_dir = stats_dir / f"{leader}-{process_starttime(leader)}"
        try:
            group_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _remove_dead_groups(stats_dir, keep=group_dir)
            path = group_dir / f"{os.getpid()}.stats"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.ftruncate(fd, self.total_slots * 8)
                shared = mmap.mmap(fd, self.total_slots * 8)
            finally:
                os.close(fd)
        except OSError as err:
            log.warning("stats stay per-worker, cannot share them in %s: %s", stats_dir, err)
            return
        shared[:] = bytes(self._buffer)
        self._slots.release()
        self._buffer = shared
        self._slots = memoryview(shared).cast("Q")
        self._init_header()
        self.path, self.group_dir = path, group_dir

    def retire(self) -> None:
        self._slots[H_RETIRED] = 1

    def count(self, counter: Cache, n: int = 1) -> None:
        self._slots[CACHE_BASE + counter] += n

    def record(
        self, route: int, status: int, elapsed_ns: int, fast_path: bool = False, series: int = -1
    ) -> None:
        """One finished request; `series` defaults to the declared route's (path, method)."""
        slots = self._slots
        us = elapsed_ns // 1000
        slots[STATUS_BASE + min(max(status // 100, 1), 5) - 1] += 1
        if fast_path:
            slots[FAST_PATH_SLOT] += 1
        base = ROUTE_BASE + route * ROUTE_SLOTS
        slots[base] += 1
        slots[base + 1] += us
        if us > slots[base + 2]:
            slots[base + 2] = us
        slots[base + 3 + bucket_of(us)] += 1
        if series < 0:
            series = ROUTE_SERIES[route]
        base = HTTP_BASE + series * self.series_slots
        slots[base] += 1
        slots[base + 1] += elapsed_ns
        slots[base + 2 + bisect_left(self.bounds_ns, elapsed_ns)] += 1  # le: upper bound included
        slots[base + self.status_offset + status_slot(status)] += 1

    def snapshot(self) -> array:
        return array("Q", self._slots.tobytes())


def _remove_dead_groups(stats_dir: Path, keep: Path) -> None:
    for entry in stats_dir.iterdir():
        pid, _, start = entry.name.partition("-")
        if entry == keep or not (pid.isdigit() and start.isdigit()):
            continue
        if not process_alive(int(pid), int(start)):
            shutil.rmtree(entry, ignore_errors=True)


def live_workers(own: WorkerStats) -> int:
    """How many workers of our group are alive (reads only the files' headers)."""
    if own.group_dir is None:
        return 1
    alive = 1
    for path in own.group_dir.glob("*.stats"):
        if path == own.path:
            continue
        with contextlib.suppress(OSError), path.open("rb") as f:
            head = array("Q", f.read(HEADER_SLOTS * 8))
            if len(head) < HEADER_SLOTS or head[H_MAGIC] != MAGIC:
                continue
            if head[H_LAYOUT] == own.layout:
                alive += not head[H_RETIRED] and process_alive(head[H_PID], head[H_STARTTIME])
    return alive


def read_group(own: WorkerStats) -> tuple[list[array], int]:
    """Snapshots of every worker in our group (own first) and how many of them are alive."""
    snapshots, alive = [own.snapshot()], 1
    if own.group_dir is None:
        return snapshots, alive
    for path in own.group_dir.glob("*.stats"):
        if path == own.path:
            continue
        with contextlib.suppress(OSError):
            raw = path.read_bytes()
            if len(raw) != own.total_slots * 8:
                continue
            snap = array("Q", raw)
            if snap[H_MAGIC] != MAGIC or snap[H_LAYOUT] != own.layout:
                continue
            snapshots.append(snap)
            if not snap[H_RETIRED] and process_alive(snap[H_PID], snap[H_STARTTIME]):
                alive += 1
    return snapshots, alive


def _rate(hits: int, misses: int) -> float:
    return round(hits / (hits + misses), 6) if hits + misses else 0.0


def _percentile_ms(histogram: list[int], total: int, q: float, max_us: int) -> float:
    if not total:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return round(min(bucket_upper_us(index), max_us) / 1000, 3)
    return round(max_us / 1000, 3)


def _timing(count: int, sum_us: int, max_us: int, histogram: list[int]) -> dict[str, float]:
    return {
        "mean": round(sum_us / count / 1000, 3) if count else 0.0,
        "p50": _percentile_ms(histogram, count, 0.50, max_us),
        "p90": _percentile_ms(histogram, count, 0.90, max_us),
        "p99": _percentile_ms(histogram, count, 0.99, max_us),
        "max": round(max_us / 1000, 3),
    }


def aggregate(own: WorkerStats) -> dict:
    """The figures of all workers of this server, as served by /api/v1/performance/stats."""
    snapshots, alive = read_group(own)
    total = [sum(column) for column in zip(*(s[:HTTP_BASE] for s in snapshots), strict=True)]
    max_us = [
        max(snap[ROUTE_BASE + r * ROUTE_SLOTS + 2] for snap in snapshots)
        for r in range(len(ROUTES))
    ]

    def c(counter: Cache) -> int:
        return total[CACHE_BASE + counter]

    tiers = {}
    for tier, hits, misses, errors in (
        ("l0", Cache.L0_HITS, Cache.L0_MISSES, None),
        ("l1", Cache.L1_HITS, Cache.L1_MISSES, Cache.L1_ERRORS),
        ("l2", Cache.L2_HITS, Cache.L2_MISSES, Cache.L2_ERRORS),
    ):
        tiers[tier] = {"hits": c(hits), "misses": c(misses), "hit_rate": _rate(c(hits), c(misses))}
        if errors is not None:
            tiers[tier]["errors"] = c(errors)
    lookups = c(Cache.L0_HITS) + c(Cache.L0_MISSES)
    answered = c(Cache.L0_HITS) + c(Cache.L1_HITS) + c(Cache.L2_HITS)

    all_hist = [0] * BUCKETS
    endpoints = {}
    for r, route in enumerate(ROUTES):
        base = ROUTE_BASE + r * ROUTE_SLOTS
        count = total[base]
        if not count:
            continue
        histogram = total[base + 3 : base + 3 + BUCKETS]
        for i, n in enumerate(histogram):
            all_hist[i] += n
        endpoints[route] = {"count": count, **_timing(count, total[base + 1], max_us[r], histogram)}
    by_status = {f"{k + 1}xx": total[STATUS_BASE + k] for k in range(5)}
    requests_total = sum(by_status.values())
    sum_all = sum(total[ROUTE_BASE + r * ROUTE_SLOTS + 1] for r in range(len(ROUTES)))
    started = min(snap[H_CREATED] for snap in snapshots)
    return {
        "cache": {
            **tiers,
            "lookups": lookups,
            "answered_from_cache": answered,
            "computes": c(Cache.COMPUTES),
            "coalesced": c(Cache.COALESCED),
            "warm_runs": c(Cache.WARM_RUNS),
            "warm_computes": c(Cache.WARM_COMPUTES),
            "overall_hit_rate": _rate(answered, lookups - answered),
        },
        "workers": alive,
        "workers_retired": len(snapshots) - alive,
        "requests": {
            "total": requests_total,
            "fast_path": total[FAST_PATH_SLOT],
            "by_status": by_status,
            "response_time_ms": _timing(requests_total, sum_all, max(max_us), all_hist),
            "by_endpoint": endpoints,
        },
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "scope": "server" if own.group_dir is not None else "this worker only",
    }

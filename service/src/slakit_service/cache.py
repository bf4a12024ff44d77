"""The tiered cache: L0 memory -> L1 Redis cache -> L2 Redis persist -> compute.

A value is computed once, encoded once (compact JSON bytes) and the same bytes go to every
tier. A miss fills the tiers above the one that answered. Concurrent misses of one key in
a worker wait for a single computation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from .l0 import MemoryTier
from .redis_tier import RedisTier, TierUnavailable
from .stats import Cache, WorkerStats

Compute = Callable[[], dict]


@dataclass(frozen=True, slots=True)
class Cached:
    body: bytes
    tier: str  # "L0", "L1", "L2" or "MISS" (computed now)


def encode(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class TieredCache:
    def __init__(
        self,
        l0: MemoryTier,
        l1: RedisTier,
        l2: RedisTier,
        stats: WorkerStats,
        namespace: str,
        l1_ttl: int,
        l2_ttl: int,
    ) -> None:
        self.l0, self.l1, self.l2 = l0, l1, l2
        self.stats = stats
        self.namespace = namespace
        self.ttl = {"l1": l1_ttl, "l2": l2_ttl}
        self._inflight: dict[str, asyncio.Future[Cached]] = {}
        self._warm_lock = asyncio.Lock()

    def redis_key(self, name: str) -> str:
        return f"slakit:{self.namespace}:{name}"

    async def get_or_compute(self, name: str, compute: Compute) -> Cached:
        entry = self.l0.get(name)
        if entry is not None:
            self.stats.count(Cache.L0_HITS)
            return Cached(entry.body, "L0")
        self.stats.count(Cache.L0_MISSES)
        pending = self._inflight.get(name)
        if pending is not None:
            result = await asyncio.shield(pending)
            self.stats.count(Cache.COALESCED)
            self._count_path(result.tier)
            return result
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        self._inflight[name] = future
        try:
            result = await self._fill(name, compute)
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._inflight[name]

    def _count_path(self, tier: str) -> None:
        """Count a lookup that missed L0 and was answered by `tier`."""
        if tier == "L1":
            self.stats.count(Cache.L1_HITS)
            return
        self.stats.count(Cache.L1_MISSES)
        self.stats.count(Cache.L2_HITS if tier == "L2" else Cache.L2_MISSES)

    async def _fill(self, name: str, compute: Compute) -> Cached:
        key = self.redis_key(name)
        body = await self._get(self.l1, key, Cache.L1_HITS, Cache.L1_MISSES, Cache.L1_ERRORS)
        if body is not None:
            self.l0.put(name, body)
            return Cached(body, "L1")
        body = await self._get(self.l2, key, Cache.L2_HITS, Cache.L2_MISSES, Cache.L2_ERRORS)
        if body is not None:
            self.l0.put(name, body)
            await self._set(self.l1, key, body)
            return Cached(body, "L2")
        body = await self.compute(compute)
        self.l0.put(name, body)
        await asyncio.gather(self._set(self.l1, key, body), self._set(self.l2, key, body))
        return Cached(body, "MISS")

    async def compute(self, compute: Compute, counter: Cache = Cache.COMPUTES) -> bytes:
        """Run a computation off the event loop and encode its result with provenance."""
        self.stats.count(counter)

        def run() -> bytes:
            start = time.perf_counter()
            value = compute()
            value["generated_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            value["compute_ms"] = round((time.perf_counter() - start) * 1000, 2)
            return encode(value)

        return await asyncio.to_thread(run)

    async def _get(
        self, tier: RedisTier, key: str, hit: Cache, miss: Cache, error: Cache
    ) -> bytes | None:
        try:
            body = await tier.run(lambda r: r.get(key))
        except TierUnavailable:
            self.stats.count(miss)
            if tier.configured:
                self.stats.count(error)
            return None
        self.stats.count(hit if body is not None else miss)
        return body

    async def _set(self, tier: RedisTier, key: str, body: bytes) -> bool:
        ttl = self.ttl[tier.name]
        try:
            await tier.run(lambda r: r.set(key, body, ex=ttl))
        except TierUnavailable:
            return False
        return True

    async def _pttls(self, tier: RedisTier, keys: list[str]) -> list[int] | None:
        """Remaining milliseconds per key (-2 absent), or None when the tier is unavailable."""

        async def pttls(r: Redis) -> list[int]:
            async with r.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.pttl(key)
                return await pipe.execute()

        try:
            return await tier.run(pttls)
        except TierUnavailable:
            return None

    async def warm(self, entries: Mapping[str, Compute], force: bool = False) -> dict:
        """Make every entry present and at least half-fresh in every reachable tier.

        Fresh entries cost nothing but one pipelined PTTL per Redis tier; an entry missing
        from some tier is copied from a tier that has it; only an entry that no tier holds
        (or every entry, with `force`) is computed.
        """
        async with self._warm_lock:
            self.stats.count(Cache.WARM_RUNS)
            start = time.perf_counter()
            names = list(entries)
            keys = [self.redis_key(n) for n in names]
            pttls = await asyncio.gather(self._pttls(self.l1, keys), self._pttls(self.l2, keys))
            remaining = dict(zip(("l1", "l2"), pttls, strict=True))
            report, counts = [], {"fresh": 0, "filled": 0, "computed": 0}
            for i, (name, key) in enumerate(zip(names, keys, strict=True)):
                states = {"l0": self._l0_state(name)}
                for tier in ("l1", "l2"):
                    states[tier] = self._redis_state(remaining[tier], i, self.ttl[tier])
                outcome = await self._warm_one(name, key, entries[name], states, force)
                counts[outcome] += 1
                report.append({"name": name, "outcome": outcome, "tiers": states})
            unavailable = sorted(
                {t for e in report for t, s in e["tiers"].items() if s == "unavailable"}
            )
            return {
                "status": "degraded" if unavailable else "ok",
                "complete": not unavailable,
                "entries": report,
                "summary": counts,
                "tiers_unavailable": unavailable,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
            }

    def _l0_state(self, name: str) -> str:
        left = self.l0.remaining(name)
        return "fresh" if left >= self.l0.ttl / 2 else "stale" if left else "missing"

    @staticmethod
    def _redis_state(pttls: list[int] | None, index: int, ttl: int) -> str:
        if pttls is None:
            return "unavailable"
        left = pttls[index]
        if left == -2:
            return "missing"
        return "fresh" if left == -1 or left >= ttl * 500 else "stale"

    async def _warm_one(
        self, name: str, key: str, compute: Compute, states: dict[str, str], force: bool
    ) -> str:
        needs = [t for t, s in states.items() if s in ("missing", "stale")]
        if force:
            needs = [t for t, s in states.items() if s != "unavailable"]
        if not needs:
            return "fresh"
        body: bytes | None = None
        if not force:
            entry = self.l0.get(name)
            body = entry.body if entry else None
            for tier in (self.l1, self.l2):
                if body is None and states[tier.name] in ("fresh", "stale"):
                    try:
                        body = await tier.run(lambda r, k=key: r.get(k))
                    except TierUnavailable:
                        states[tier.name] = "unavailable"
                        needs = [t for t in needs if t != tier.name]
        outcome = "filled"
        if body is None:
            body = await self.compute(compute, Cache.WARM_COMPUTES)
            outcome = "computed"
        for tier_name in needs:
            if tier_name == "l0":
                self.l0.put(name, body)
                states["l0"] = outcome
                continue
            tier = self.l1 if tier_name == "l1" else self.l2
            states[tier_name] = outcome if await self._set(tier, key, body) else "unavailable"
        return outcome

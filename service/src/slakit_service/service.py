"""The service's parts, built from settings; started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from . import __version__, stats
from .auth import Authenticator
from .cache import Compute, TieredCache, encode
from .catalog import VIEWS
from .config import Settings
from .conversations import Conversations
from .dataset import SalesData, generate
from .fresh import Fresh
from .l0 import MemoryTier
from .redis_tier import RedisTier
from .replication import ReplicationProbe
from .scaling import Scaler

log = logging.getLogger("slakit_service")


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.version = __version__
        self.stats = stats.WorkerStats(settings.metrics_buckets_ms)
        self.l0 = MemoryTier(settings.l0_max_entries, settings.l0_ttl)
        tier = (settings.redis_timeout, settings.redis_retry_after, settings.redis_health_check)
        self.l1 = RedisTier("l1", settings.redis_url, *tier, stats=self.stats)
        self.l2 = RedisTier(
            "l2",
            settings.redis_persist_url,
            *tier,
            stats=self.stats,
            sentinel=settings.persist_sentinel,
            min_replicas=settings.persist_min_replicas,
            wait_ms=settings.persist_wait_timeout_ms,
            recheck_seconds=settings.persist_probe_seconds,
        )
        # the persist tier's primary and replication in the health: with Sentinel or WAIT only
        self.replication = (
            ReplicationProbe(self.l2, settings.persist_probe_seconds)
            if settings.persist_sentinel or settings.persist_min_replicas
            else None
        )
        self.cache = TieredCache(
            self.l0, self.l1, self.l2, self.stats, "pending", settings.l1_ttl, settings.l2_ttl
        )
        self.auth = Authenticator(settings.token_secret, settings.users_json, settings.token_ttl)
        self.scaler = Scaler(settings, self.l2)
        self.conversations = Conversations(
            self.l2,
            settings.conversation_max_turns,
            settings.conversation_max_sessions,
            settings.conversation_ttl,
        )
        self._data: SalesData | None = None
        self.started = time.time()
        # summing every worker's counters costs a millisecond or more: once per window
        self._stats = Fresh[bytes](settings.stats_refresh_seconds)
        self._workers = Fresh[int](settings.stats_refresh_seconds)

    @property
    def data(self) -> SalesData:
        if self._data is None:
            raise RuntimeError("the service has not started")
        return self._data

    async def start(self) -> None:
        s = self.settings
        self._data = await asyncio.to_thread(generate, s.dataset_orders, s.dataset_seed)
        # a different dataset (seed, size, generator) must never read another's cached values
        self.cache.namespace = f"v1:{self._data.fingerprint}"
        self.stats.share(s.stats_dir)
        if s.metrics_buckets_problem:
            log.warning("SLAKIT_METRICS_BUCKETS_MS ignored, %s", s.metrics_buckets_problem)
        if self.auth.problem:
            log.warning("auth endpoints answer 503: %s", self.auth.problem)
        l2 = "on" if self.l2.configured else "off"
        if s.persist_sentinel is not None:
            l2 = f"on ({s.persist_sentinel.describe()})"  # addresses only, no credential
        if s.persist_min_replicas:
            l2 += f", durable writes WAIT {s.persist_min_replicas} {s.persist_wait_timeout_ms} ms"
        log.info(
            "slakit-service %s pid %d: %d orders (%s), L1 %s, L2 %s, fast path %s",
            self.version,
            os.getpid(),
            self._data.orders,
            self._data.fingerprint,
            "on" if self.l1.configured else "off",
            l2,
            "on" if s.l0_fastpath else "off",
        )

    async def stop(self) -> None:
        self.stats.retire()
        if self.replication is not None:
            await self.replication.close()
        await asyncio.gather(self.l1.close(), self.l2.close(), return_exceptions=True)

    def view_computations(self) -> dict[str, Compute]:
        data = self.data
        return {view.name: (lambda v=view: v.compute(data)) for view in VIEWS}

    def aggregate_stats(self) -> bytes:
        """The figures of every worker as a JSON object, at most SLAKIT_STATS_REFRESH_SECONDS
        old."""
        return self._stats.get(lambda: encode(stats.aggregate(self.stats)))

    def stats_body(self) -> bytes:
        """GET /api/v1/performance/stats: every worker's figures, then this worker's."""
        this_worker = encode({"pid": os.getpid(), "l0_entries": len(self.l0)})
        # the shared figures are encoded once per refresh; this worker's are spliced in
        return self.aggregate_stats()[:-1] + b',"this_worker":' + this_worker + b"}"

    def live_workers(self) -> int:
        return self._workers.get(lambda: stats.live_workers(self.stats))

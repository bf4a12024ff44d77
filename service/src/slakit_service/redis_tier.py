"""A Redis tier (L1 cache or L2 persist) that fails fast and comes back by itself.

Every call has a short timeout. After a failure the tier is skipped for `retry_after`
seconds, so a dead Redis costs one timeout per worker per interval, not one per request;
the next call after that reconnects (idle pooled connections are dropped on failure).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .stats import Cache, WorkerStats

T = TypeVar("T")
log = logging.getLogger("slakit_service.redis")


class TierUnavailable(Exception):
    """The tier is not configured, is in its retry pause, or the call just failed."""


# (failed calls, skipped calls) per tier name: every call, cache lookups or not
_COUNTERS = {
    "l1": (Cache.L1_CALL_ERRORS, Cache.L1_SKIPS),
    "l2": (Cache.L2_CALL_ERRORS, Cache.L2_SKIPS),
}


class RedisTier:
    def __init__(
        self,
        name: str,
        url: str,
        timeout: float,
        retry_after: float,
        health_check: float = 0.0,
        stats: WorkerStats | None = None,
    ) -> None:
        self.name = name
        self.stats = stats
        self.url = url
        self.timeout = timeout
        self.retry_after = retry_after
        # Redis closes connections idle for its `timeout`: one idle this long is PINGed first.
        self.health_check = health_check
        self.last_error = "" if url else "not configured"
        self._client: Redis | None = None
        self._down_until = 0.0

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def available(self) -> bool:
        return self.configured and time.monotonic() >= self._down_until

    def _connect(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=self.health_check,
            )
        return self._client

    async def run(self, operation: Callable[[Redis], Awaitable[T]], *, probe: bool = False) -> T:
        """Run `operation` against the tier; `probe` ignores the retry pause (health checks)."""
        if not self.configured or not (probe or self.available):
            if self.configured and self.stats is not None:
                self.stats.count(_COUNTERS[self.name][1])
            raise TierUnavailable(self.last_error or "unavailable")
        client = self._connect()
        try:
            async with asyncio.timeout(self.timeout * 3):
                result = await operation(client)
        except (RedisError, OSError, TimeoutError) as err:
            await self._mark_down(err)
            raise TierUnavailable(self.last_error) from err
        if self._down_until:
            log.warning("redis tier %s is back", self.name)
            self._down_until = 0.0
            self.last_error = ""
        return result

    async def _mark_down(self, err: BaseException) -> None:
        if self.stats is not None:
            self.stats.count(_COUNTERS[self.name][0])
        was_up = not self._down_until
        self._down_until = time.monotonic() + self.retry_after
        self.last_error = f"{type(err).__name__}: {err}".strip().rstrip(":") or "error"
        if was_up:
            log.warning("redis tier %s unavailable: %s", self.name, self.last_error)
        if self._client is not None:
            try:
                await self._client.connection_pool.disconnect(inuse_connections=False)
            except Exception:  # the pool is being dropped anyway
                log.debug("disconnect after failure failed", exc_info=True)

    async def ping_ms(self) -> float:
        start = time.perf_counter()
        await self.run(lambda r: r.ping(), probe=True)
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

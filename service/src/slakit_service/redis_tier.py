"""A Redis tier (L1 cache or L2 persist) that fails fast and comes back by itself.

Every call has a short timeout. After a failure the tier is skipped for `retry_after`
seconds, so a dead Redis costs one timeout per worker per interval, not one per request;
the next call after that reconnects (idle pooled connections are dropped on failure).

The persist tier may be found through Sentinel instead of a URL (redis-py's `master_for`):
every new connection asks the Sentinels for the primary's address, so a reconnection after a
failure (the primary died, or answered READONLY because it was demoted: redis-py turns that
into a connection error) reaches the primary Sentinel promoted. A primary that was demoted but
is still up breaks no connection (and accepts writes until Sentinel reconfigures it, seconds
later), so the tier also asks Sentinel for the primary in the background, at most every
`recheck_seconds` and at once after a durable write found no replica; when the answer changes
it takes a new pool and closes the old one after the calls in flight on it.

Durable writes (`transaction(..., durable=True)`) run MULTI/EXEC and then, on the same
connection, `WAIT min_replicas wait_ms`; fewer acknowledging replicas raise NotReplicated
(the write is on the primary but not known to be on a replica: the caller must not
acknowledge it). That is not a failure of the tier: it is not paused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .config import SentinelTarget
from .stats import Cache, WorkerStats

T = TypeVar("T")
Command = tuple[str | int | float | bytes, ...]
log = logging.getLogger("slakit_service.redis")


class TierUnavailable(Exception):
    """The tier is not configured, is in its retry pause, or the call just failed."""


class NotReplicated(Exception):
    """A durable write reached the primary, but fewer replicas than required acknowledged it."""

    def __init__(self, acked: int, required: int, wait_ms: int) -> None:
        super().__init__(
            f"acknowledged by {acked} of the {required} replica(s) required within {wait_ms} ms"
        )
        self.acked, self.required = acked, required


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
        *,
        sentinel: SentinelTarget | None = None,
        min_replicas: int = 0,
        wait_ms: int = 500,
        recheck_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self.stats = stats
        self.url = url
        self.sentinel = sentinel  # found through Sentinel (then `url` is empty)
        self.timeout = timeout
        self.retry_after = retry_after
        # Redis closes connections idle for its `timeout`: one idle this long is PINGed first.
        self.health_check = health_check
        self.min_replicas = min_replicas  # durable writes WAIT for this many; 0 = no WAIT
        self.wait_ms = wait_ms
        # A call's budget: connect + command; with Sentinel, also asking each Sentinel in turn.
        self.call_budget = timeout * (3 + (len(sentinel.addresses) if sentinel else 0))
        self.last_error = "" if self.configured else "not configured"
        self._client: Redis | None = None
        self._sentinels: Sentinel | None = None
        self._down_until = 0.0
        # Sentinel: the primary is asked for at most every `recheck_seconds`, in the background
        self.recheck_seconds = recheck_seconds
        self._primary: tuple[str, int] | None = None
        self._recheck_at = 0.0
        self._asking = False
        self._background: set[asyncio.Task[None]] = set()
        self._retired: list[Redis] = []  # pools of a former primary, closed a little later

    @property
    def configured(self) -> bool:
        return bool(self.url or self.sentinel)

    @property
    def available(self) -> bool:
        return self.configured and time.monotonic() >= self._down_until

    def _connect(self) -> Redis:
        if self._client is None:
            fail_fast: dict[str, Any] = {
                "socket_timeout": self.timeout,
                "socket_connect_timeout": self.timeout,
                "retry": Retry(NoBackoff(), 0),
            }
            target = self.sentinel
            if target is None:
                self._client = Redis.from_url(
                    self.url, health_check_interval=self.health_check, **fail_fast
                )
            else:
                if self._sentinels is None:
                    self._sentinels = Sentinel(
                        target.addresses,
                        sentinel_kwargs={
                            **fail_fast,
                            "username": target.sentinel_username or None,
                            "password": target.sentinel_password or None,
                        },
                    )
                self._client = self._sentinels.master_for(
                    target.master,
                    username=target.username or None,
                    password=target.password or None,
                    db=target.db,
                    health_check_interval=self.health_check,
                    **fail_fast,
                )
        return self._client

    async def run(
        self,
        operation: Callable[[Redis], Awaitable[T]],
        *,
        probe: bool = False,
        extra_seconds: float = 0.0,
    ) -> T:
        """Run `operation` against the tier; `probe` ignores the retry pause (health checks);
        `extra_seconds` adds to the call's budget (a WAIT's timeout)."""
        if not self.configured or not (probe or self.available):
            if self.configured and self.stats is not None:
                self.stats.count(_COUNTERS[self.name][1])
            raise TierUnavailable(self.last_error or "unavailable")
        client = self._connect()
        if self.sentinel is not None:
            self._recheck_primary()
        try:
            async with asyncio.timeout(self.call_budget + extra_seconds):
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

    async def transaction(
        self, commands: Sequence[Command], *, durable: bool = False, read_timeout: float = 0.0
    ) -> list[Any]:
        """EXEC's replies to `commands` run in one MULTI/EXEC. `durable` then WAITs on the same
        connection for `min_replicas` replicas (none: no WAIT) and raises NotReplicated when
        fewer acknowledged within `wait_ms`. `read_timeout` above the tier's timeout gives a
        large reply longer to arrive."""
        wait = durable and self.min_replicas > 0
        sent: list[Command] = [("MULTI",), *commands, ("EXEC",)]
        if wait:
            sent.append(("WAIT", self.min_replicas, self.wait_ms))
        read_s = max(self.timeout, read_timeout)
        # Redis ends a blocked WAIT on its next event-loop tick after the timeout (up to 1/hz
        # late, 100 ms by default): the reply gets the call's whole budget on top
        wait_s = self.wait_ms / 1000 + self.call_budget if wait else 0.0

        async def reply(conn: Any, timeout: float) -> Any:
            # with an explicit timeout redis-py returns None instead of raising
            answer = await conn.read_response(timeout=timeout)
            if answer is None:
                raise RedisTimeoutError(f"no reply from Redis within {timeout:.3f} s")
            return answer

        async def on_one_connection(r: Redis) -> list[Any]:
            pool = r.connection_pool
            conn = await pool.get_connection()
            try:
                await conn.send_packed_command(conn.pack_commands(sent))
                replies = [await reply(conn, read_s) for _ in sent[:-1]]
                replies.append(await reply(conn, read_s + wait_s))
            except BaseException:
                await conn.disconnect()  # replies may be left unread: never reuse it
                raise
            finally:
                await pool.release(conn)
            results = replies[len(commands) + 1]
            failed = [r for r in results if isinstance(r, ResponseError)]
            if failed:
                raise failed[0]
            return replies

        replies = await self.run(on_one_connection, extra_seconds=read_s - self.timeout + wait_s)
        if wait and int(replies[-1]) < self.min_replicas:
            if self.sentinel is not None:  # a primary Sentinel demoted has no replicas: ask now
                self._recheck_primary(now=True)
            raise NotReplicated(int(replies[-1]), self.min_replicas, self.wait_ms)
        return replies[len(commands) + 1]

    async def replication(self) -> dict[str, Any]:
        """The primary's address (from Sentinel, else the URL's) and its `INFO replication`."""

        async def read(r: Redis) -> dict[str, Any]:
            pool = r.connection_pool
            if self.sentinel is not None:
                # asks Sentinel; a changed address also drops idle connections to the old one
                host, port = await pool.get_master_address()  # type: ignore[attr-defined]
            else:
                host, port = pool.connection_kwargs.get("host"), pool.connection_kwargs.get("port")
            info = await r.info("replication")
            return {"primary": f"{host}:{port}", "info": info}

        return await self.run(read, probe=True)

    def _recheck_primary(self, now: bool = False) -> None:
        """Ask Sentinel for the primary in the background, at most every `recheck_seconds`
        (`now`: at once). A demoted primary that is still up keeps the pool's connections (no
        error breaks them), and until Sentinel reconfigures it (seconds later) it even accepts
        writes that its new role will discard."""
        clock = time.monotonic()
        if (not now and clock < self._recheck_at) or self._asking:
            return
        self._recheck_at = clock + self.recheck_seconds
        self._asking = True
        self._in_background(self._follow_primary())

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _follow_primary(self) -> None:
        """When Sentinel names another primary, the tier takes a new pool: the next calls
        connect to the new primary; the old pool is closed once the calls in flight on it are
        over (their budget)."""
        if self._sentinels is None or self.sentinel is None:
            return
        try:
            async with asyncio.timeout(self.call_budget):
                found = await self._sentinels.discover_master(self.sentinel.master)
        except (RedisError, OSError, TimeoutError):
            return  # the calls themselves fail and pause the tier
        finally:
            self._asking = False  # one question in flight at a time
        address = (str(found[0]), int(found[1]))
        moved = self._primary is not None and address != self._primary
        self._primary = address
        if moved and self._client is not None:
            log.warning("redis tier %s: the primary is now %s:%d", self.name, *address)
            self._retired.append(self._client)
            self._client = None
            self._in_background(self._close_retired(self.call_budget + self.wait_ms / 1000 + 1))

    async def _close_retired(self, after: float = 0.0) -> None:
        await asyncio.sleep(after)
        while self._retired:
            try:
                await self._retired.pop().aclose()
            except Exception:  # a pool of a primary that is gone
                log.debug("closing a former primary's pool failed", exc_info=True)

    async def ping_ms(self) -> float:
        start = time.perf_counter()
        await self.run(lambda r: r.ping(), probe=True)
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._close_retired()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._sentinels is not None:
            await self._sentinels.aclose()
            self._sentinels = None

"""The failover drill's ledger: ids a client appends with a durable write, read back later.

A drill (slakit's `invoke drill.failover`, its e2e test) sends a stream of unique ids under one
run id, stops the persist primary, and then checks that every id the service acknowledged is
held by the primary Sentinel promoted. An id is acknowledged (200) only after MULTI/EXEC and,
with REDIS_PERSIST_MIN_REPLICAS above 0, WAIT saw that many replicas have it.

Bounds: a run holds at most `max_ids` ids (each at most 64 characters: under 2 MiB with the
default 20 000), and expires `TTL` after its last write, so a drill leaves nothing behind.
"""

from __future__ import annotations

from enum import Enum

from .redis_tier import RedisTier

TTL_SECONDS = 86400  # a run's ids expire a day after its last write


class Added(Enum):
    NEW = "new"
    AGAIN = "again"  # the run already held this id (a client's retry): acknowledged again
    FULL = "full"  # the run holds max_ids already: refused, the id is not kept


class Ledger:
    def __init__(self, persist: RedisTier, max_ids: int) -> None:
        self.persist = persist
        self.max_ids = max_ids

    @staticmethod
    def key(run: str) -> str:
        return f"slakit:drill:ledger:{run}"

    async def add(self, run: str, entry: str) -> tuple[Added, int]:
        """(outcome, ids in the run). Raises TierUnavailable, or NotReplicated when fewer
        replicas than required acknowledged the write: then the id must not be acknowledged."""
        key = self.key(run)
        added, count, _ = await self.persist.transaction(
            [("SADD", key, entry), ("SCARD", key), ("EXPIRE", key, TTL_SECONDS)], durable=True
        )
        if int(count) > self.max_ids and int(added):
            await self.persist.transaction([("SREM", key, entry)])
            return Added.FULL, int(count) - 1
        return (Added.NEW if int(added) else Added.AGAIN), int(count)

    async def read(self, run: str) -> list[str]:
        """Every id of the run, sorted (up to max_ids: a larger reply gets a second to arrive)."""
        (members,) = await self.persist.transaction([("SMEMBERS", self.key(run))], read_timeout=1.0)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

"""The persist tier's replication, for the comprehensive health: where the primary is and how
far behind its replicas are, read at most once per freshness window per worker.

The figures come from `INFO replication` of the server the service writes to (the primary
Sentinel names, or the URL's) and, with Sentinel, the address Sentinel gives. A request finding
them older than the window gets them as they are (their `age_seconds` says how old) and starts
one refresh in the background, so the health endpoint never waits for Sentinel or INFO except
on a worker's first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from .redis_tier import RedisTier, TierUnavailable


def summarize(primary: str, info: dict[str, Any], min_replicas: int) -> dict[str, Any]:
    """The health's view of `INFO replication` (redis-py's parsed dict)."""
    offset = int(info.get("master_repl_offset", 0))
    replicas = []
    for index in range(int(info.get("connected_slaves", 0))):
        replica = info.get(f"slave{index}")
        if not isinstance(replica, dict):
            continue
        replicas.append(
            {
                "address": f"{replica.get('ip')}:{replica.get('port')}",
                "state": replica.get("state"),
                "offset_lag_bytes": max(0, offset - int(replica.get("offset", 0))),
                "lag_seconds": int(replica.get("lag", 0)),
            }
        )
    online = [r for r in replicas if r["state"] == "online"]
    role = info.get("role", "unknown")
    if role != "master":
        status = "not_primary"  # the service's connection reached a replica
    elif len(online) < min_replicas:
        status = "insufficient_replicas"  # durable writes are refused (503)
    else:
        status = "ok"
    return {
        "status": status,
        "primary": primary,
        "role": role,
        "connected_replicas": len(online),
        "min_replicas": min_replicas,
        "max_offset_lag_bytes": max((r["offset_lag_bytes"] for r in online), default=None),
        "max_lag_seconds": max((r["lag_seconds"] for r in online), default=None),
        "replicas": replicas,
    }


class ReplicationProbe:
    def __init__(self, tier: RedisTier, freshness: float) -> None:
        self.tier = tier
        self.freshness = freshness
        self.via = "sentinel" if tier.sentinel is not None else "url"
        self._report: dict[str, Any] | None = None
        self._read_at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            found = await self.tier.replication()
            report = summarize(found["primary"], found["info"], self.tier.min_replicas)
        except TierUnavailable as err:
            report = {"status": "unknown", "error": str(err)}
            report["min_replicas"] = self.tier.min_replicas
        report["found_via"] = self.via
        report["checked_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._report, self._read_at = report, time.monotonic()

    async def report(self) -> dict[str, Any]:
        if self._report is None:
            await self._read()
        elif time.monotonic() - self._read_at >= self.freshness and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.create_task(self._read())
        assert self._report is not None
        return {**self._report, "age_seconds": round(time.monotonic() - self._read_at, 3)}

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

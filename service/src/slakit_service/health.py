"""Liveness and the comprehensive health: the documents both the routes and the fast path
(precomputed.py) send."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime

from .fresh import Fresh
from .redis_tier import RedisTier, TierUnavailable
from .service import Service


async def probe(tier: RedisTier) -> dict:
    if not tier.configured:
        return {"status": "not_configured"}
    try:
        return {"status": "up", "latency_ms": round(await tier.ping_ms(), 3)}
    except TierUnavailable as err:
        return {"status": "down", "error": str(err)}


class Health:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        # the PINGs of the last SLAKIT_HEALTH_PROBE_SECONDS answer every request in between
        self.probes = Fresh[tuple[dict, dict]](svc.settings.health_probe_seconds)

    def liveness(self) -> dict:
        return {
            "status": "ok",
            "service": "slakit-service",
            "version": self.svc.version,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.svc.started, 1),
        }

    async def _probe_tiers(self) -> tuple[dict, dict]:
        l1, l2 = await asyncio.gather(probe(self.svc.l1), probe(self.svc.l2))
        return l1, l2

    async def comprehensive(self) -> dict:
        svc = self.svc
        l1, l2 = (dict(t) for t in await self.probes.aget(self._probe_tiers))  # l2 gets more
        degraded = [name for name, t in (("l1", l1), ("l2", l2)) if t["status"] != "up"]
        if svc.replication is not None:  # Sentinel or WAIT: the primary and its replicas
            l2["replication"] = replication = await svc.replication.report()
            l2["primary"] = replication.get("primary")
            if replication["status"] != "ok" and "l2" not in degraded:
                degraded.append("l2")
        return {
            "status": "degraded" if degraded else "healthy",
            "degraded_tiers": degraded,
            "tiers": {
                "l0": {
                    "status": "up",
                    "entries": len(svc.l0),
                    "max_entries": svc.l0.max_entries,
                    "ttl_seconds": svc.l0.ttl,
                    "fast_path": svc.settings.l0_fastpath,
                },
                "l1": l1,
                "l2": l2,
            },
            "dataset": {"orders": svc.data.orders, "fingerprint": svc.data.fingerprint},
            "auth": svc.auth.status,
            "workers": svc.live_workers(),
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - svc.started, 1),
            "checked_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }

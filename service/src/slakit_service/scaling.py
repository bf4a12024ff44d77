"""Scaling status and a bounded, repeat-safe scaling trigger.

The trigger records a desired worker count (per app host, shared by the fleet through the
persist tier) within [min, max], at most one change per cooldown. With SLAKIT_SCALE_SIGNAL=1
under gunicorn it also sends the master one TTIN (+1 worker) or TTOU (-1 worker) per
applied change, which gunicorn honours immediately; otherwise it only records the intent.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from datetime import UTC, datetime

from redis.asyncio import Redis

from .config import Settings
from .redis_tier import NotReplicated, RedisTier, TierUnavailable

DESIRED_KEY = "slakit:scale:desired_workers"
EVENTS_KEY = "slakit:scale:events"
COOLDOWN_KEY = "slakit:scale:cooldown"
EVENTS_KEPT = 50


def server_kind() -> str:
    if "gunicorn.arbiter" in sys.modules:
        return "gunicorn"
    return "uvicorn-workers" if multiprocessing.parent_process() is not None else "uvicorn"


def recommend(workers: int, load_1m: float, cpus: int, low: int, high: int) -> tuple[str, str]:
    per_core = load_1m / max(cpus, 1)
    if per_core > 0.85 and workers < high:
        return "up", f"load {per_core:.2f} per core is above 0.85"
    if per_core < 0.25 and workers > low:
        return "down", f"load {per_core:.2f} per core is below 0.25"
    return "hold", f"load {per_core:.2f} per core, {workers} workers within [{low}, {high}]"


def _whole(raw: bytes | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


class Scaler:
    def __init__(self, settings: Settings, persist: RedisTier) -> None:
        self.low, self.high = settings.scale_min_workers, settings.scale_max_workers
        self.cooldown = settings.scale_cooldown
        self.signals = settings.scale_signal
        self.persist = persist
        self._local_cooldown_until = 0.0
        self._local_desired: int | None = None

    async def _desired(self) -> int | None:
        try:
            raw = await self.persist.run(lambda r: r.get(DESIRED_KEY))
        except TierUnavailable:
            return self._local_desired
        return _whole(raw)

    async def status(self, workers: int) -> dict:
        load = os.getloadavg()[0]
        cpus = os.cpu_count() or 1
        action, why = recommend(workers, load, cpus, self.low, self.high)

        async def read(r: Redis) -> list:
            async with r.pipeline(transaction=False) as pipe:  # one round trip for both
                pipe.get(DESIRED_KEY)
                pipe.lrange(EVENTS_KEY, 0, 9)
                return await pipe.execute()

        events: list[dict] = []
        try:
            raw_desired, raw_events = await self.persist.run(read)
            desired, persisted = _whole(raw_desired), True
            events = [json.loads(item) for item in raw_events]
        except TierUnavailable:
            desired, persisted = self._local_desired, False
        return {
            "server": server_kind(),
            "master_pid": os.getppid() if server_kind() != "uvicorn" else None,
            "workers": workers,
            "desired_workers": desired,
            "bounds": {"min": self.low, "max": self.high},
            "cooldown_seconds": self.cooldown,
            "signals_enabled": self.signals,
            "load": {"loadavg_1m": round(load, 2), "cpus": cpus},
            "recommendation": {"action": action, "reason": why},
            "recent_events": events,
            "events_source": "persist" if persisted else "unavailable",
        }

    async def trigger(self, action: str, reason: str, actor: str, workers: int) -> dict:
        before = await self._desired() or workers
        if action == "auto":
            action, why = recommend(
                workers, os.getloadavg()[0], os.cpu_count() or 1, self.low, self.high
            )
            reason = reason or why
        step = {"up": 1, "down": -1}.get(action, 0)
        target = min(self.high, max(self.low, before + step))
        result = {"action": action, "previous_desired": before, "desired_workers": target}
        if target == before:
            bound = " (at bound)" if step else ""
            return {**result, "applied": False, "reason": f"no change{bound}: {reason}"}
        wait = await self._take_cooldown(actor)
        if wait:
            return {
                **result,
                "desired_workers": before,
                "applied": False,
                "reason": "cooldown",
                "retry_after_seconds": round(wait, 1),
            }
        event = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "actor": actor,
            "action": action,
            "from": before,
            "to": target,
            "reason": reason,
            "pid": os.getpid(),
        }
        persisted = await self._record(target, event)
        sent = self._signal(step, workers) if self.signals else None
        return {**result, "applied": True, "persisted": persisted, "signal": sent, "event": event}

    async def _take_cooldown(self, actor: str) -> float:
        """0 when this call may change the target, else seconds until one may."""
        if self.cooldown <= 0:
            return 0.0
        ms = int(self.cooldown * 1000)

        async def take(r: Redis) -> float:
            if await r.set(COOLDOWN_KEY, actor, nx=True, px=ms):
                return 0.0
            return max(await r.pttl(COOLDOWN_KEY), 1) / 1000

        try:
            return await self.persist.run(take)
        except TierUnavailable:
            now = time.monotonic()
            if now < self._local_cooldown_until:
                return self._local_cooldown_until - now
            self._local_cooldown_until = now + self.cooldown
            return 0.0

    async def _record(self, target: int, event: dict) -> bool:
        """Whether the change is recorded durably: in L2 and, with REDIS_PERSIST_MIN_REPLICAS,
        on that many replicas (else `persisted: false`, as with L2 down)."""
        self._local_desired = target
        commands = [
            ("SET", DESIRED_KEY, target),
            ("LPUSH", EVENTS_KEY, json.dumps(event)),
            ("LTRIM", EVENTS_KEY, 0, EVENTS_KEPT - 1),
        ]
        try:
            await self.persist.transaction(commands, durable=True)
        except (TierUnavailable, NotReplicated):
            return False
        return True

    def _signal(self, step: int, workers: int) -> str | None:
        if server_kind() != "gunicorn" or not step:
            return None
        if (step > 0 and workers >= self.high) or (step < 0 and workers <= self.low):
            return None
        sig = signal.SIGTTIN if step > 0 else signal.SIGTTOU
        os.kill(os.getppid(), sig)
        return sig.name

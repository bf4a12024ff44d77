"""AI conversation history: per session, newest first, in the persist tier.

Each worker also keeps a small in-memory copy, which answers while the persist tier is
down (then only with what this worker saw).
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque

from redis.asyncio import Redis

from .redis_tier import RedisTier, TierUnavailable

KEPT = 50
TTL_SECONDS = 7 * 86400
LOCAL_SESSIONS = 256


class Conversations:
    def __init__(self, persist: RedisTier) -> None:
        self.persist = persist
        self._local: OrderedDict[str, deque[dict]] = OrderedDict()

    @staticmethod
    def key(session: str) -> str:
        return f"slakit:conversation:{session}"

    async def append(self, session: str, turn: dict) -> bool:
        local = self._local.setdefault(session, deque(maxlen=KEPT))
        local.appendleft(turn)
        self._local.move_to_end(session)
        while len(self._local) > LOCAL_SESSIONS:
            self._local.popitem(last=False)
        key = self.key(session)

        async def push(r: Redis) -> None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.lpush(key, json.dumps(turn, separators=(",", ":")))
                pipe.ltrim(key, 0, KEPT - 1)
                pipe.expire(key, TTL_SECONDS)
                await pipe.execute()

        try:
            await self.persist.run(push)
        except TierUnavailable:
            return False
        return True

    async def history(self, session: str, limit: int) -> tuple[list[dict], str]:
        """(turns newest first, source) where source is "persist" or "memory"."""
        try:
            raw = await self.persist.run(lambda r: r.lrange(self.key(session), 0, limit - 1))
        except TierUnavailable:
            return list(self._local.get(session, ()))[:limit], "memory"
        return [json.loads(item) for item in raw], "persist"

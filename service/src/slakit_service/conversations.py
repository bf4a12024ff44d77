"""AI conversation history: sessions the server issues, their turns newest first, in the
persist tier.

Sessions. The server issues every session id (`secrets.token_urlsafe`, 192 random bits) on a
query that brings none. A query naming a session is recorded only if the store knows that
session (LPUSHX never creates a list), so a client cannot open a session under an id of its
choosing, and history is readable only with the id (unknown ids: 404).

Bounds. The persist instance runs with `noeviction`: nothing there goes away unless the app
removes it or it expires, so the store bounds itself.
- Each session keeps its newest `max_turns` turns (LTRIM) and expires `ttl` seconds after its
  last turn (EXPIRE on every write).
- A registry (sorted set: session id -> expiry time) holds at most `max_sessions` ids. A new
  session that takes it over the cap evicts the sessions closest to expiry (the least
  recently used) with their turns; expired ids leave it whenever a session is created, and
  the registry itself expires when no session was written for `ttl` seconds.
- A turn is at most about 5 KiB (a query is at most 1000 characters, stored as UTF-8).
So the store holds at most max_sessions x max_turns turns: about max_sessions x max_turns x
5 KiB in the worst case (20 x 2000 x 5 KiB = 200 MB with the defaults; a typical turn is
under 1 KiB).

Each worker also keeps a small in-memory copy of the sessions it issued or saw confirmed by
the store, which answers while the persist tier is down (then only with what this worker
saw). An id this worker does not know cannot be checked while the tier is down: the query is
answered but not recorded.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict, deque
from enum import Enum

from redis.asyncio import Redis

from .redis_tier import RedisTier, TierUnavailable

LOCAL_SESSIONS = 256  # sessions each worker keeps in memory
REGISTRY = "slakit:chat:sessions"


class Recorded(Enum):
    PERSIST = "persist"  # in the store (and this worker's memory)
    MEMORY = "memory"  # store down: only in this worker's memory
    NOT_RECORDED = "not_recorded"  # store down and the session unknown to this worker
    UNKNOWN = "unknown"  # the store does not know the session


class Conversations:
    def __init__(self, persist: RedisTier, max_turns: int, max_sessions: int, ttl: int) -> None:
        self.persist = persist
        self.max_turns = max_turns
        self.max_sessions = max_sessions
        self.ttl = ttl
        self._local: OrderedDict[str, deque[dict]] = OrderedDict()

    @staticmethod
    def key(session: str) -> str:
        return f"slakit:chat:{session}"

    @staticmethod
    def _encode(turn: dict) -> str:
        return json.dumps(turn, separators=(",", ":"), ensure_ascii=False)

    def _remember(self, session: str, turn: dict) -> None:
        local = self._local.get(session)
        if local is None:
            local = self._local[session] = deque(maxlen=self.max_turns)
        local.appendleft(turn)
        self._local.move_to_end(session)
        while len(self._local) > LOCAL_SESSIONS:
            self._local.popitem(last=False)

    async def start(self, turn: dict) -> tuple[str, bool]:
        """A new session holding `turn`: (its id, whether the store has it)."""
        session = secrets.token_urlsafe(24)
        key = self.key(session)

        async def create(r: Redis) -> None:
            now = time.time()
            async with r.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(REGISTRY, "-inf", now)
                pipe.zadd(REGISTRY, {session: now + self.ttl})
                pipe.lpush(key, self._encode(turn))
                pipe.expire(key, self.ttl)
                pipe.expire(REGISTRY, self.ttl)
                pipe.zcard(REGISTRY)
                count = (await pipe.execute())[-1]
            over = int(count) - self.max_sessions
            if over <= 0:
                return
            evicted = [m.decode() for m, _ in await r.zpopmin(REGISTRY, over)]
            if session in evicted:  # only with clocks far apart between hosts: keep ours
                evicted.remove(session)
                await r.zadd(REGISTRY, {session: now + self.ttl})
            if evicted:
                await r.delete(*(self.key(s) for s in evicted))

        self._remember(session, turn)
        try:
            await self.persist.run(create)
        except TierUnavailable:
            return session, False
        return session, True

    async def append(self, session: str, turn: dict) -> Recorded:
        key = self.key(session)

        async def push(r: Redis) -> int:
            async with r.pipeline(transaction=True) as pipe:
                pipe.lpushx(key, self._encode(turn))  # never creates a session
                pipe.ltrim(key, 0, self.max_turns - 1)
                pipe.expire(key, self.ttl)
                pipe.zadd(REGISTRY, {session: time.time() + self.ttl}, xx=True)
                pipe.expire(REGISTRY, self.ttl)
                return int((await pipe.execute())[0])

        try:
            length = await self.persist.run(push)
        except TierUnavailable:
            if session in self._local:
                self._remember(session, turn)
                return Recorded.MEMORY
            return Recorded.NOT_RECORDED
        if not length:
            self._local.pop(session, None)
            return Recorded.UNKNOWN
        self._remember(session, turn)
        return Recorded.PERSIST

    async def history(self, session: str, limit: int) -> tuple[list[dict], str] | None:
        """(turns newest first, "persist" or "memory"); None when the session is unknown.

        Raises TierUnavailable when the store is down and this worker does not know the
        session (it may exist: that is not a 404)."""
        limit = min(limit, self.max_turns)

        async def read(r: Redis) -> tuple[float | None, list[bytes]]:
            async with r.pipeline(transaction=True) as pipe:
                pipe.zscore(REGISTRY, session)
                pipe.lrange(self.key(session), 0, limit - 1)
                expires, raw = await pipe.execute()
            return expires, raw

        try:
            expires, raw = await self.persist.run(read)
        except TierUnavailable:
            if session in self._local:
                return list(self._local[session])[:limit], "memory"
            raise
        if expires is None or float(expires) < time.time() or not raw:
            self._local.pop(session, None)
            return None
        return [json.loads(item) for item in raw], "persist"

"""L0: a bounded, TTL'd in-process cache of encoded bodies and their prebuilt ASGI messages."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class L0Entry:
    body: bytes
    expires_at: float
    headers: list[tuple[bytes, bytes]]  # as sent on an L0 hit, content-length included


class MemoryTier:
    def __init__(
        self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, L0Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> L0Entry | None:
        entry = self._entries.get(name)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[name]
            return None
        self._entries.move_to_end(name)
        return entry

    def remaining(self, name: str) -> float:
        """Seconds of life left for `name` (0 when absent or expired)."""
        entry = self._entries.get(name)
        return max(0.0, entry.expires_at - self._clock()) if entry else 0.0

    def put(self, name: str, body: bytes) -> L0Entry:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-cache", b"L0"),
        ]
        entry = L0Entry(body, self._clock() + self.ttl, headers)
        self._entries[name] = entry
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        self._entries.clear()

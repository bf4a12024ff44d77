"""A value recomputed at most once per freshness window, for figures that many requests
read but that need not be exact to the millisecond (aggregated statistics, Redis probes)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Fresh(Generic[T]):
    """Holds the last computed value for `seconds` (0: recomputed on every read)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._value: T | None = None
        self._at = 0.0
        self._held = False

    def _current(self) -> bool:
        return self._held and self.clock() - self._at < self.seconds

    def age(self) -> float:
        """Seconds since the value held was computed (0 when none is held)."""
        return max(0.0, self.clock() - self._at) if self._held else 0.0

    def _keep(self, value: T, at: float) -> T:
        self._value, self._at, self._held = value, at, True
        return value

    def get(self, compute: Callable[[], T]) -> T:
        if self._current():
            return self._value  # type: ignore[return-value]
        at = self.clock()
        return self._keep(compute(), at)

    async def aget(self, compute: Callable[[], Awaitable[T]]) -> T:
        """As `get`; concurrent reads of a stale value may each compute it (none waits)."""
        if self._current():
            return self._value  # type: ignore[return-value]
        at = self.clock()
        return self._keep(await compute(), at)

"""Drills only: an injected slowdown (`SLAKIT_DRILL_DELAY_MS`), off by default.

A release built with it answers every HTTP request that many milliseconds late (health checks
included), as a release that is slower but still correct would: what slakit's canary drill
(tests/e2e/test_11_canary.py) must stop before the other hosts switch. Never set it in an
environment that serves users. The delay is part of the request's measured time (the service's
statistics and /metrics), as a slow release's own slowness would be.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

START_NS = "slakit.start_ns"  # scope key: when the request reached the drill layer


class Delayed:
    """Waits `delay_ms` before handing each HTTP request to `app`; other scopes pass through."""

    def __init__(self, app: Any, delay_ms: float) -> None:
        self.app = app
        self.delay_s = delay_ms / 1000.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope[START_NS] = time.perf_counter_ns()
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)


def with_delay(app: Any, delay_ms: float) -> Any:
    """`app` itself when the delay is 0 (the default), else `app` behind a `Delayed`."""
    return Delayed(app, delay_ms) if delay_ms > 0 else app

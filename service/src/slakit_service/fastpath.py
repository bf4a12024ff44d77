"""The outermost ASGI layer: answers warm GETs of cacheable views straight from L0.

A hit costs a dict lookup and two `send`s, before any routing, middleware or validation;
everything else goes to the FastAPI app. Every HTTP request is timed and counted here.
"""

from __future__ import annotations

import time
from typing import Any

from .catalog import fast_path_table
from .l0 import MemoryTier
from .stats import OTHER_ROUTE, ROUTE_INDEX, Cache, WorkerStats

Scope = dict[str, Any]


class FastPath:
    def __init__(self, app: Any, l0: MemoryTier, stats: WorkerStats, enabled: bool) -> None:
        self.app = app
        self.l0 = l0
        self.stats = stats
        self.enabled = enabled
        self.views = fast_path_table() if enabled else {}
        self.routes = {tuple(route.split(" ", 1)): i for route, i in ROUTE_INDEX.items()}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter_ns()
        method, path = scope["method"], scope["path"]
        route = self.routes.get((method, path), OTHER_ROUTE)
        if method == "GET" and (name := self.views.get((path, scope["query_string"]))):
            entry = self.l0.get(name)
            if entry is not None:
                self.stats.count(Cache.L0_HITS)
                await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
                await send({"type": "http.response.body", "body": entry.body})
                self.stats.record(route, 200, time.perf_counter_ns() - start, fast_path=True)
                return
        status = 500  # what the server sends if the app fails before starting a response

        async def send_and_note_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.stats.record(route, status, time.perf_counter_ns() - start)

"""The outermost ASGI layer: answers warm GETs of cacheable views straight from L0, and the
GETs of precomputed.py without a query string from their precomputed bytes.

A hit costs a dict lookup and two `send`s, before any routing, middleware or validation;
everything else goes to the FastAPI app. Every HTTP request is timed and counted here
(from the drill layer's start, when a drill delays requests: drill.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .catalog import fast_path_table
from .drill import START_NS
from .l0 import MemoryTier
from .series import METHODS, PATHS, series_of
from .stats import OTHER_ROUTE, ROUTE_INDEX, Cache, WorkerStats

Scope = dict[str, Any]
JSON = [(b"content-type", b"application/json")]


class FastPath:
    def __init__(
        self,
        app: Any,
        l0: MemoryTier,
        stats: WorkerStats,
        enabled: bool,
        answers: Mapping[str, Callable[[], Awaitable[bytes]]] | None = None,
    ) -> None:
        self.app = app
        self.l0 = l0
        self.stats = stats
        self.enabled = enabled
        self.views = fast_path_table() if enabled else {}
        self.answers = dict(answers or {}) if enabled else {}
        # (method, path) -> (stats route, request series), for every known path and method
        self.routes = {
            (m, p): (ROUTE_INDEX.get(f"{m} {p}", OTHER_ROUTE), series_of(m, p))
            for p in PATHS
            for m in METHODS
        }

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = scope.get(START_NS) or time.perf_counter_ns()
        method, path = scope["method"], scope["path"]
        route, series = self.routes.get((method, path)) or (OTHER_ROUTE, series_of(method, path))
        if method == "GET" and (name := self.views.get((path, scope["query_string"]))):
            entry = self.l0.get(name)
            if entry is not None:
                self.stats.count(Cache.L0_HITS)
                await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
                await send({"type": "http.response.body", "body": entry.body})
                elapsed = time.perf_counter_ns() - start
                self.stats.record(route, 200, elapsed, fast_path=True, series=series)
                return
        elif method == "GET" and not scope["query_string"] and (answer := self.answers.get(path)):
            body = await self._answer(answer)
            if body is not None:
                headers = [*JSON, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                self.stats.record(route, 200, time.perf_counter_ns() - start, series=series)
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
            self.stats.record(route, status, time.perf_counter_ns() - start, series=series)

    @staticmethod
    async def _answer(answer: Callable[[], Awaitable[bytes]]) -> bytes | None:
        """The answer's bytes; None if it failed: then the app answers (and reports the
        failure its own way)."""
        try:
            return await answer()
        except Exception:
            return None

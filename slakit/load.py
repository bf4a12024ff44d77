"""Open-loop load for the drills that count what failed: requests are sent on schedule whether or
not earlier ones have answered (a stalled server cannot slow the client down and hide its stall),
at a fixed rate, bounded in time and in count, and each request's send time and outcome are kept.

`OpenLoopLoad` runs on its own thread (an asyncio loop with aiohttp) while the caller does the
drill; `with` starts it, and leaving the block stops sending and waits for the requests still in
flight (each bounded by `timeout`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tag: str = ""  # the caller's name for it (e.g. the id it writes)


@dataclass(frozen=True)
class Sample:
    sent: float  # time.monotonic() when the request was due and sent
    tag: str
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    error: str  # "" for a 200; the body's "error" code, else "HTTP <status>"; the exception's name

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def transport(self) -> bool:
        return self.status == 0


def error_code(status: int, body: bytes) -> str:
    """What a non-200 answer says went wrong: the API's `error` field, else the status."""
    if status == 200:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"]:
        return data["error"]
    return f"HTTP {status}"


def verifying(url: str, ca_file: str | None) -> ssl.SSLContext | bool:
    """aiohttp's `ssl` argument for `url`: HTTPS verified against `ca_file` (None: the system
    trust store)."""
    if not url.startswith("https:"):
        return True
    return ssl.create_default_context(cafile=ca_file)


class OpenLoopLoad:
    """Requests `make(i)` (i = 0, 1, …) to `base_url` at `rate` per second until stopped, after
    `max_seconds`, or after `max_requests`, whichever comes first."""

    def __init__(
        self,
        base_url: str,
        tls: ssl.SSLContext | bool,
        make: Callable[[int], Request],
        *,
        rate: float,
        max_seconds: float,
        max_requests: int,
        timeout: float = 5.0,
        connections: int = 64,
    ) -> None:
        if rate <= 0 or max_seconds <= 0 or max_requests <= 0:
            raise ValueError("rate, max_seconds and max_requests must be above 0")
        self.base_url, self.tls, self.make = base_url.rstrip("/"), tls, make
        self.rate, self.max_seconds, self.max_requests = rate, max_seconds, max_requests
        self.timeout, self.connections = timeout, connections
        self.samples: list[Sample] = []  # appended by the load's thread, in answer order
        self.sent = 0
        self.started = 0.0  # time.monotonic() of the first request
        self.seconds = 0.0  # from the first request to the last answer
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> OpenLoopLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight (at most `timeout` + a margin)."""
        self._stop.set()
        self._thread.join(self.max_seconds + self.timeout + 30)

    @property
    def sending(self) -> bool:
        """Still sending: neither stopped nor past one of its bounds."""
        return self._thread.is_alive() and not self._done.is_set()

    def snapshot(self) -> list[Sample]:
        return list(self.samples)

    def record(self, request: Request, sample: Sample, body: bytes) -> None:
        """Keeps every sample; a subclass may look at the body too."""
        self.samples.append(sample)

    async def _one(self, session: aiohttp.ClientSession, request: Request, sent: float) -> None:
        body = b""
        try:
            async with session.request(
                request.method,
                self.base_url + request.path,
                json=request.json,
                headers=dict(request.headers),
                ssl=self.tls,
            ) as resp:
                body = await resp.read()
                status, error = resp.status, error_code(resp.status, body)
        except Exception as err:  # every failure counts, whatever its kind
            status, error = 0, type(err).__name__
        self.record(request, Sample(sent, request.tag, status, error), body)

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        connector = aiohttp.TCPConnector(limit=self.connections)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            start = time.monotonic()
            tasks: set[asyncio.Task[None]] = set()
            i = 0
            while (
                not self._stop.is_set()
                and i < self.max_requests
                and time.monotonic() - start < self.max_seconds
            ):
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(self._one(session, self.make(i), time.monotonic()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
                self.sent = i
            self._done.set()
            await asyncio.gather(*tasks)
            self.seconds = time.monotonic() - start

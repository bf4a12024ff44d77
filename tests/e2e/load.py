"""Open-loop load through the first load balancer, for the drills that count failed requests.

Requests are sent on schedule whether or not earlier ones have answered, only to the first
load balancer (its published URL, HTTPS verified against the CA the roles published), bounded
in rate and time. Each request's send time and outcome are kept.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from dataclasses import dataclass, field

import aiohttp

from slakit import envs, stack

HEALTH = "/api/v1/health"  # its answer names the version that served it
TIMEOUT = 5.0  # per request


def lb_target() -> tuple[str, ssl.SSLContext | bool]:
    """(the first load balancer's URL, aiohttp's `ssl`: verifying with the published CA)."""
    deployed = stack.load(envs.resolve("lab"))
    url = next(iter(deployed.lb_urls().values()))
    if not url.startswith("https:"):
        return url, True
    return url, ssl.create_default_context(cafile=deployed.lb_ca_file())


@dataclass
class LoadResult:
    sent: int = 0
    samples: list[tuple[float, bool]] = field(default_factory=list)  # (send time, answered 200)
    errors: dict[str, int] = field(default_factory=dict)  # failures by kind
    versions: dict[str, int] = field(default_factory=dict)  # 200s of HEALTH by version
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(ok for _, ok in self.samples)

    @property
    def failed(self) -> int:
        return sum(not ok for _, ok in self.samples)

    def outage_seconds(self) -> float:
        """From the first failed request to the first good one sent after the last failure."""
        samples = sorted(self.samples)
        failed = [t for t, ok in samples if not ok]
        if not failed:
            return 0.0
        after = [t for t, ok in samples if ok and t > failed[-1]]
        return (after[0] if after else samples[-1][0]) - failed[0]


class OpenLoopLoad:
    """GETs of `paths` in turn at `rate` per second until stopped, or `max_seconds`."""

    def __init__(
        self, rate: int = 100, paths: tuple[str, ...] = (HEALTH, "/health", "/"),
        max_seconds: float = 420,
    ) -> None:  # fmt: skip
        self.rate, self.paths, self.max_seconds = rate, paths, max_seconds
        self.result = LoadResult()
        self.base, self.ssl = lb_target()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> OpenLoopLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.max_seconds + 30)

    async def _one(self, session: aiohttp.ClientSession, path: str, sent: float) -> None:
        r = self.result
        try:
            async with session.get(self.base + path, ssl=self.ssl) as resp:
                body = await resp.read()
                key = "" if resp.status == 200 else f"HTTP {resp.status}"
                if not key and path == HEALTH:
                    v = re.search(rb'"version":"([^"]+)"', body)
                    version = v.group(1).decode() if v else "?"
                    r.versions[version] = r.versions.get(version, 0) + 1
        except Exception as err:  # every failure counts, whatever its kind
            key = type(err).__name__
        r.samples.append((sent, not key))
        if key:
            r.errors[key] = r.errors.get(key, 0) + 1

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            start = time.monotonic()
            tasks: set[asyncio.Task] = set()
            i = 0
            while not self._stop.is_set() and time.monotonic() - start < self.max_seconds:
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                path = self.paths[i % len(self.paths)]
                task = asyncio.create_task(self._one(session, path, time.monotonic()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
                self.result.sent = i
            await asyncio.gather(*tasks)
            self.result.seconds = time.monotonic() - start

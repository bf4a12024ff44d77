"""Open-loop load through the first load balancer, for the drills that count failed requests.

Requests are sent on schedule whether or not earlier ones have answered, only to the first
load balancer (its published URL, HTTPS verified against the CA the roles published), bounded
in rate and time (slakit/load.py). Each request's send time and outcome are kept.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field

from slakit import envs, load, stack

HEALTH = "/api/v1/health"  # its answer names the version that served it
TIMEOUT = 5.0  # per request


def lb_target() -> tuple[str, ssl.SSLContext | bool]:
    """(the first load balancer's URL, aiohttp's `ssl`: verifying with the published CA)."""
    deployed = stack.load(envs.resolve("lab"))
    url = next(iter(deployed.lb_urls().values()))
    return url, load.verifying(url, deployed.lb_ca_file())


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


class OpenLoopLoad(load.OpenLoopLoad):
    """GETs of `paths` in turn at `rate` per second until stopped, or `max_seconds`."""

    def __init__(
        self, rate: int = 100, paths: tuple[str, ...] = (HEALTH, "/health", "/"),
        max_seconds: float = 420,
    ) -> None:  # fmt: skip
        self.result = LoadResult()
        base, tls = lb_target()
        super().__init__(
            base, tls, lambda i: load.Request("GET", paths[i % len(paths)]),
            rate=rate, max_seconds=max_seconds, max_requests=int(rate * max_seconds) + 1,
            timeout=TIMEOUT,
        )  # fmt: skip

    def record(self, request: load.Request, sample: load.Sample, body: bytes) -> None:
        super().record(request, sample, body)
        r = self.result
        key = sample.error if sample.transport else "" if sample.ok else f"HTTP {sample.status}"
        if sample.ok and request.path == HEALTH:
            v = re.search(rb'"version":"([^"]+)"', body)
            version = v.group(1).decode() if v else "?"
            r.versions[version] = r.versions.get(version, 0) + 1
        r.samples.append((sample.sent, not key))
        if key:
            r.errors[key] = r.errors.get(key, 0) + 1

    def stop(self) -> None:
        super().stop()
        self.result.sent, self.result.seconds = self.sent, self.seconds

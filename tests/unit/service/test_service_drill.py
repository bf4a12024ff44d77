"""The drill slowdown (SLAKIT_DRILL_DELAY_MS): off by default, else every request that late."""

from __future__ import annotations

import time

from slakit_service.config import Settings
from slakit_service.drill import Delayed, with_delay

DELAY_MS = 60.0


def test_off_by_default(monkeypatch) -> None:
    monkeypatch.delenv("SLAKIT_DRILL_DELAY_MS", raising=False)
    assert Settings.from_env().drill_delay_ms == 0.0
    app = object()
    assert with_delay(app, 0.0) is app  # nothing wraps the app unless a drill asks
    monkeypatch.setenv("SLAKIT_DRILL_DELAY_MS", "20")
    assert Settings.from_env().drill_delay_ms == 20.0
    assert isinstance(with_delay(app, 20.0), Delayed)


def test_every_request_is_that_late(redis_pair, start_service) -> None:
    service = start_service(*redis_pair, SLAKIT_DRILL_DELAY_MS=str(DELAY_MS))
    seconds = []
    for path in (
        "/api/v1/health",
        "/",
        "/api/v1/dashboard/executive",
        "/api/v1/dashboard/executive",
    ):
        began = time.perf_counter()
        reply = service.get(path)
        seconds.append(time.perf_counter() - began)
        assert reply.status_code == 200, (path, reply.text)
    print(f"\nwith +{DELAY_MS:g} ms: {', '.join(f'{s * 1000:.1f}' for s in seconds)} ms")
    # the last one is a warm L0 hit (the fast path): late all the same
    assert min(seconds) >= DELAY_MS / 1000

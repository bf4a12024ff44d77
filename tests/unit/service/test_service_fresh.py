"""Freshness windows (fresh.py): aggregated statistics, live workers and the comprehensive
health's Redis probes are reused within their window and recomputed after it (a fake clock,
no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from slakit_service.config import Settings
from slakit_service.fresh import Fresh


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counter() -> tuple[list[int], Callable[[], int]]:
    calls: list[int] = []

    def compute() -> int:
        calls.append(len(calls) + 1)
        return len(calls)

    return calls, compute


def test_a_value_is_reused_within_its_window_then_recomputed() -> None:
    clock = FakeClock()
    fresh = Fresh[int](1.0, clock)
    calls, compute = counter()
    assert fresh.get(compute) == 1 and fresh.age() == 0.0
    clock.now += 0.999
    assert fresh.get(compute) == 1 and fresh.age() == pytest.approx(0.999)
    clock.now += 0.001
    assert fresh.get(compute) == 2 and fresh.age() == 0.0
    assert calls == [1, 2]


def test_a_zero_window_recomputes_on_every_read() -> None:
    fresh = Fresh[int](0.0, FakeClock())
    _, compute = counter()
    assert [fresh.get(compute) for _ in range(3)] == [1, 2, 3]


def test_the_async_form_holds_the_awaited_value() -> None:
    clock = FakeClock()
    fresh = Fresh[str](2.0, clock)
    probes: list[str] = []

    async def probe() -> str:
        probes.append("PING")
        return f"probe {len(probes)}"

    async def reads() -> list[str]:
        seen = [await fresh.aget(probe)]
        clock.now += 1.5
        seen.append(await fresh.aget(probe))
        clock.now += 0.5
        seen.append(await fresh.aget(probe))
        return seen

    assert asyncio.run(reads()) == ["probe 1", "probe 1", "probe 2"]


def test_the_windows_are_settings_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLAKIT_STATS_REFRESH_SECONDS", raising=False)
    monkeypatch.delenv("SLAKIT_HEALTH_PROBE_SECONDS", raising=False)
    settings = Settings.from_env()
    assert settings.stats_refresh_seconds == 1.0 and settings.health_probe_seconds == 1.0
    monkeypatch.setenv("SLAKIT_STATS_REFRESH_SECONDS", "0")
    monkeypatch.setenv("SLAKIT_HEALTH_PROBE_SECONDS", "2.5")
    settings = Settings.from_env()
    assert settings.stats_refresh_seconds == 0.0 and settings.health_probe_seconds == 2.5
    monkeypatch.setenv("SLAKIT_HEALTH_PROBE_SECONDS", "-3")  # below 0: 0, as the other knobs
    assert Settings.from_env().health_probe_seconds == 0.0

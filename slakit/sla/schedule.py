"""Open-loop arrival schedules and the dispatcher that keeps them.

Request k of an endpoint at rate r is *intended* at start + offset + k / r whatever
happened to earlier requests. The dispatcher sleeps until the next intended time and
hands the request over with its intended time and its schedule lag (how late the
dispatcher woke). When it falls behind it sends every overdue request at once, still
stamped with its intended time: a slow server cannot thin out the schedule
(no coordinated omission). With several processes, process i of n takes every n-th slot.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator

from slakit.sla.timer import Clock


def arrival_times(
    start: float, rate: float, count: int, offset: float = 0.0, index: int = 0, stride: int = 1
) -> Iterator[float]:
    """Intended send times of slots index, index+stride, ... below count."""
    interval = 1.0 / rate
    for k in range(index, count, stride):
        yield start + offset + k * interval


def merged_schedule(streams: list[Iterable[float]]) -> Iterator[tuple[float, int]]:
    """(intended time, stream number) of several schedules in time order."""
    return heapq.merge(*(_tag(stream, i) for i, stream in enumerate(streams)))


def _tag(stream: Iterable[float], number: int) -> Iterator[tuple[float, int]]:
    for intended in stream:
        yield intended, number


async def dispatch_open_loop(
    schedule: Iterable[tuple[float, int]],
    clock: Clock,
    send: Callable[[float, int, float], None],
) -> int:
    """Call send(intended, stream, lag) for every slot, at its intended time or ASAP.

    Returns the number of slots dispatched. Never sleeps while behind schedule.
    """
    dispatched = 0
    for intended, stream in schedule:
        now = clock.now()
        if intended > now:
            await clock.sleep_until(intended)
            now = clock.now()
        send(intended, stream, max(0.0, now - intended))
        dispatched += 1
    return dispatched

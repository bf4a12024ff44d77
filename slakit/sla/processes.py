"""Run a story's load in this process or, when one cannot keep the schedule, in several.

Each child warms its own connections, reports ready, waits for a common start time
(CLOCK_MONOTONIC is shared by all processes of a machine), takes every n-th slot of
each schedule and sends back its histograms, which the parent merges.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from slakit.errors import SlakitError
from slakit.sla.http import Target
from slakit.sla.loop import run_loop
from slakit.sla.measure import EndpointPlan, StoryMeasurement, measure_story_async
from slakit.sla.model import EXIT_INTERNAL, EXIT_INVALID

START_MARGIN_S = 0.2
READY_TIMEOUT_S = 60.0
DEADLINE_MARGIN_S = 5.0


@dataclass(frozen=True)
class Share:
    """This machine's part of a story's load when several machines share it (distributed.py):
    every `count`-th slot of each schedule from slot `index`; the whole load by default."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise SlakitError(f"share {self.index + 1}/{self.count}: needs 1 <= I <= N")

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


WHOLE = Share()


def process_count(
    plans: list[EndpointPlan],
    requested: int | None,
    max_rate_per_process: float,
    share: Share = WHOLE,
) -> int:
    """`requested` (--processes), else enough for this machine's share of the open-loop
    rate, at most one per CPU."""
    if requested is not None:
        if requested < 1:
            raise SlakitError(f"--processes must be >= 1 (got {requested})")
        return requested
    rate = sum(p.rate for p in plans if p.mode == "open") / share.count
    wanted = math.ceil(rate / max_rate_per_process) if rate else 1
    return max(1, min(wanted, os.cpu_count() or 1))


async def measure_plans(
    plans: list[EndpointPlan],
    target: Target,
    requested: int | None,
    max_rate_per_process: float,
    share: Share = WHOLE,
    start_at: float | None = None,
) -> StoryMeasurement:
    """Measure the plans at once, in as many processes as `process_count` says: this
    machine's `share` of the slots, from CLOCK_MONOTONIC instant `start_at` (None: as soon
    as the connections are warm)."""
    count = process_count(plans, requested, max_rate_per_process, share)
    if count <= 1 and share == WHOLE and start_at is None:
        return await measure_story_async(plans, target)
    if count <= 1:
        return await measure_story_async(
            plans,
            target,
            process_index=share.index,
            process_count=share.count,
            wait_for_start=_at(start_at),
        )
    run_time = max(p.run_time_s for p in plans) + max(p.timeout_s for p in plans)
    return await measure_in_processes(
        plans, target, count, run_time + DEADLINE_MARGIN_S, share, start_at
    )


def _at(start_at: float | None) -> Callable[[], Awaitable[float]]:
    async def start() -> float:
        return start_at if start_at is not None else time.monotonic() + START_MARGIN_S

    return start


def _child(
    conn: Connection, plans: list[EndpointPlan], target: Target, index: int, count: int
) -> None:
    async def wait_for_start() -> float:
        conn.send(("ready", None))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, conn.recv)

    async def main() -> StoryMeasurement:
        return await measure_story_async(
            plans, target, process_index=index, process_count=count, wait_for_start=wait_for_start
        )

    try:
        measurement = run_loop(main())
        conn.send(("result", measurement.to_wire()))
    except SlakitError as err:
        conn.send(("error", (str(err), err.exit_code)))
    except Exception as err:  # a child must always answer, never hang the parent
        conn.send(("error", (f"load process failed: {type(err).__name__}: {err}", EXIT_INTERNAL)))
    finally:
        conn.close()


async def measure_in_processes(
    plans: list[EndpointPlan],
    target: Target,
    count: int,
    deadline_s: float,
    share: Share = WHOLE,
    start_at: float | None = None,
) -> StoryMeasurement:
    """Run the story's load (this machine's share of it) split over `count` processes;
    merge what they measured. Process j of this machine takes every (N * count)-th slot
    from slot share.index + N * j, so the machines' processes cover every slot once."""
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    pipes = []
    procs = []
    for index in range(count):
        parent, child = context.Pipe()
        proc = context.Process(
            target=_child,
            args=(child, plans, target, share.index + share.count * index, share.count * count),
            daemon=True,
        )
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)

    async def receive(conn: Connection, timeout: float) -> tuple[str, Any]:
        ready = await loop.run_in_executor(None, conn.poll, timeout)
        if not ready:
            raise SlakitError("a load process did not answer in time", exit_code=EXIT_INVALID)
        try:
            return await loop.run_in_executor(None, conn.recv)
        except EOFError:
            raise SlakitError(
                "a load process exited without a result", exit_code=EXIT_INVALID
            ) from None

    try:
        for conn in pipes:
            kind, payload = await receive(conn, READY_TIMEOUT_S)
            if kind == "error":
                raise SlakitError(payload[0], exit_code=payload[1])
        start = await _at(start_at)()
        for conn in pipes:
            conn.send(start)
        parts = []
        for conn in pipes:
            kind, payload = await receive(conn, deadline_s + READY_TIMEOUT_S)
            if kind == "error":
                raise SlakitError(payload[0], exit_code=payload[1])
            parts.append(StoryMeasurement.from_wire(payload))
        return StoryMeasurement.combine(parts)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in pipes:
            conn.close()

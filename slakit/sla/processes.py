"""Several load processes for one story when one cannot keep the schedule.

Each child warms its own connections, reports ready, waits for a common start time
(CLOCK_MONOTONIC is shared by all processes of a machine), takes every n-th slot of
each schedule and sends back its histograms, which the parent merges.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from slakit.errors import SlakitError
from slakit.sla.http import Target
from slakit.sla.measure import EndpointPlan, StoryMeasurement, measure_story_async

START_MARGIN_S = 0.2
READY_TIMEOUT_S = 60.0


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


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
        measurement = _run_loop(main())
        conn.send(("result", measurement.to_wire()))
    except SlakitError as err:
        conn.send(("error", (str(err), err.exit_code)))
    except Exception as err:  # a child must always answer, never hang the parent
        conn.send(("error", (f"load process failed: {type(err).__name__}: {err}", 3)))
    finally:
        conn.close()


async def measure_in_processes(
    plans: list[EndpointPlan], target: Target, count: int, deadline_s: float
) -> StoryMeasurement:
    """Run the story's load split over `count` processes; merge what they measured."""
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    pipes = []
    procs = []
    for index in range(count):
        parent, child = context.Pipe()
        proc = context.Process(
            target=_child, args=(child, plans, target, index, count), daemon=True
        )
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)

    async def receive(conn: Connection, timeout: float) -> tuple[str, Any]:
        ready = await loop.run_in_executor(None, conn.poll, timeout)
        if not ready:
            raise SlakitError("a load process did not answer in time", exit_code=3)
        try:
            return await loop.run_in_executor(None, conn.recv)
        except EOFError:
            raise SlakitError("a load process exited without a result", exit_code=3) from None

    try:
        for conn in pipes:
            kind, payload = await receive(conn, READY_TIMEOUT_S)
            if kind == "error":
                raise SlakitError(payload[0], exit_code=payload[1])
        start = time.monotonic() + START_MARGIN_S
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

"""Drive one story's endpoints with the lean client and record every request.

Per request three figures are kept (microseconds): latency from the intended send
time (what objectives use), service time from the actual send, time to first byte;
plus the dispatcher's schedule lag and, for every connection the run opened (warm-up
included: that is where keep-alive connections are made), the TCP connect time and, over
HTTPS, the TLS handshake time. Raw values go into arrays during the run (an append is
cheap) and into HdrHistograms afterwards, so histogram bookkeeping never delays a timestamp.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from slakit.errors import SlakitError
from slakit.sla import histogram as hist
from slakit.sla.http import ConnectionPool, Exchange, PreparedRequest, Target, monotonic
from slakit.sla.schedule import arrival_times, dispatch_open_loop, merged_schedule
from slakit.sla.timer import precise_clock

TICK_S = 0.1
WARMUP_TIMEOUT_S = 30.0
HISTOGRAMS = ("latency", "service", "ttfb", "connect", "tls", "lag")


@dataclass(frozen=True)
class EndpointPlan:
    """Everything a (possibly separate) process needs to load one endpoint."""

    key: str
    request: PreparedRequest
    expect_status: tuple[int, ...]
    mode: str  # "open" | "closed"
    rate: float
    concurrency: int
    requests: int | None
    duration_s: float | None
    connections: int
    warmup_requests: int
    timeout_s: float
    target_us: int
    thresholds_us: tuple[int, ...]

    @property
    def slots(self) -> int:
        """Open loop: number of scheduled requests."""
        if self.requests is not None:
            return self.requests
        return math.floor(self.rate * float(self.duration_s or 0) + 1e-9)

    @property
    def run_time_s(self) -> float:
        if self.mode == "open":
            return self.slots / self.rate
        return float(self.duration_s or 0.0)


@dataclass
class EndpointMeasurement:
    key: str
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    exceed: dict[int, int] = field(default_factory=dict)  # threshold us -> ok above it
    credit: float = 0.0
    connections_made: int = 0
    latency: HdrHistogram = field(default_factory=hist.new_histogram)
    service: HdrHistogram = field(default_factory=hist.new_histogram)
    ttfb: HdrHistogram = field(default_factory=hist.new_histogram)
    connect: HdrHistogram = field(default_factory=hist.new_histogram)
    tls: HdrHistogram = field(default_factory=hist.new_histogram)  # handshakes (HTTPS)
    lag: HdrHistogram = field(default_factory=hist.new_histogram)

    def merge(self, other: EndpointMeasurement) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.credit += other.credit
        self.connections_made += other.connections_made
        for reason, count in other.errors.items():
            self.errors[reason] = self.errors.get(reason, 0) + count
        for threshold, count in other.exceed.items():
            self.exceed[threshold] = self.exceed.get(threshold, 0) + count
        for name in HISTOGRAMS:
            theirs = getattr(other, name)
            if theirs.get_total_count():
                getattr(self, name).add(theirs)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("key", "sent", "ok", "errors", "exceed", "credit", "connections_made")
        }
        for name in HISTOGRAMS:
            out[name] = hist.encode(getattr(self, name))
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> EndpointMeasurement:
        m = cls(
            key=data["key"],
            sent=data["sent"],
            ok=data["ok"],
            errors=dict(data["errors"]),
            exceed={int(k): v for k, v in data["exceed"].items()},
            credit=data["credit"],
            connections_made=data["connections_made"],
        )
        for name in HISTOGRAMS:
            setattr(m, name, hist.decode(data[name]))
        return m


@dataclass
class StoryMeasurement:
    endpoints: list[EndpointMeasurement]
    client_cpu: float
    wall_s: float
    processes: int = 1

    @property
    def lag(self) -> HdrHistogram:
        return hist.merge([e.lag for e in self.endpoints])

    def to_wire(self) -> dict[str, Any]:
        return {
            "endpoints": [e.to_wire() for e in self.endpoints],
            "client_cpu": self.client_cpu,
            "wall_s": self.wall_s,
            "processes": self.processes,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StoryMeasurement:
        return cls(
            [EndpointMeasurement.from_wire(e) for e in data["endpoints"]],
            data["client_cpu"],
            data["wall_s"],
            data["processes"],
        )

    @classmethod
    def combine(cls, parts: list[StoryMeasurement]) -> StoryMeasurement:
        first = parts[0]
        for part in parts[1:]:
            for mine, theirs in zip(first.endpoints, part.endpoints, strict=True):
                mine.merge(theirs)
        first.client_cpu = max(p.client_cpu for p in parts)
        first.wall_s = max(p.wall_s for p in parts)
        first.processes = len(parts)
        return first


class _Recorder:
    """Raw per-request values of one endpoint during a run."""

    def __init__(self, plan: EndpointPlan) -> None:
        self.plan = plan
        self.expect = frozenset(plan.expect_status)
        self.latency = array("d")  # seconds; to microseconds after the run
        self.service = array("d")
        self.ttfb = array("d")
        self.connect = array("q")
        self.tls = array("q")
        self.lag = array("q")
        self.errors: Counter[str] = Counter()
        self.sent = 0

    def record(self, ex: Exchange) -> None:
        if ex.error is not None:
            self.errors[ex.error] += 1
        elif ex.status not in self.expect:
            self.errors[f"HTTP {ex.status}"] += 1
        else:
            self.latency.append(ex.t_done - ex.intended)
            self.service.append(ex.t_done - ex.t_send)
            self.ttfb.append(ex.t_first - ex.t_send)
        if ex.connect_s >= 0:
            self.phases(ex)

    def phases(self, ex: Exchange) -> None:
        """The connect (and TLS handshake) time of a request that opened its connection."""
        if ex.connect_s >= 0:
            self.connect.append(round(ex.connect_s * 1e6))
            if ex.tls_s >= 0:
                self.tls.append(round(ex.tls_s * 1e6))

    def finish(self, connections_made: int) -> EndpointMeasurement:
        m = EndpointMeasurement(key=self.plan.key, sent=self.sent, errors=dict(self.errors))
        m.connections_made = connections_made
        out_of_range = 0
        target = self.plan.target_us
        credit = 0.0
        kept = []
        for seconds in self.latency:
            value = round(seconds * 1e6)
            if value > hist.HIGHEST_US or not m.latency.record_value(max(0, value)):
                out_of_range += 1
                continue
            kept.append(value)
            credit += 1.0 if value <= target else max(0.0, 2.0 - value / target)
        if out_of_range:
            m.errors["latency out of range (> 60 s)"] = out_of_range
        m.ok = len(kept)
        m.credit = credit
        for threshold in self.plan.thresholds_us:
            m.exceed[threshold] = sum(1 for v in kept if v > threshold)
        for name in ("service", "ttfb", "connect", "tls", "lag"):
            target_histogram = getattr(m, name)
            scale = 1e6 if name in ("service", "ttfb") else 1
            for value in getattr(self, name):
                target_histogram.record_value(min(max(0, round(value * scale)), hist.HIGHEST_US))
        return m


async def _warm_up(
    pool: ConnectionPool, plan: EndpointPlan, base_url: str, recorder: _Recorder
) -> None:
    """Open the connections (their phases go to `recorder`) and check the endpoint
    answers as the spec expects."""
    count = max(plan.warmup_requests, pool.limit)
    if count == 0:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    outcomes: list[Exchange] = []

    def on_done(ex: Exchange) -> None:
        outcomes.append(ex)
        if len(outcomes) == count and not done.done():
            done.set_result(None)

    pool.on_done = on_done
    now = monotonic()
    for _ in range(count):
        pool.submit(Exchange(plan.request, now))
    try:
        await asyncio.wait_for(done, WARMUP_TIMEOUT_S)
    except TimeoutError:
        pool.fail_outstanding("timeout")
    for ex in outcomes:
        recorder.phases(ex)
    for ex in outcomes:
        if ex.error and ex.error.startswith("connect"):
            raise SlakitError(f"cannot reach {base_url}: {ex.error.removeprefix('connect: ')}")
    for ex in outcomes:
        if ex.error:
            raise SlakitError(f"{plan.key} failed during warm-up: {ex.error}")
        if ex.status not in plan.expect_status:
            expected = "/".join(str(s) for s in plan.expect_status)
            hint = "check --base-url, the spec's path and credentials"
            if 300 <= ex.status < 400 and base_url.startswith("http:"):
                hint = "a redirect: does the server want HTTPS (an https --base-url, --cacert)?"
            raise SlakitError(
                f"{plan.key} answered HTTP {ex.status} during warm-up (expected {expected}); "
                + hint
            )


async def measure_story_async(
    plans: list[EndpointPlan],
    target: Target,
    *,
    process_index: int = 0,
    process_count: int = 1,
    wait_for_start: Callable[[], Awaitable[float]] | None = None,
) -> StoryMeasurement:
    """Warm up, then run every endpoint's load at once; this process's share of it."""
    recorders = [_Recorder(p) for p in plans]
    pools = [
        ConnectionPool(
            target,
            max(
                1, math.ceil((p.connections if p.mode == "open" else p.concurrency) / process_count)
            ),
            recorders[i].record,
            timeout_s=p.timeout_s,
        )
        for i, p in enumerate(plans)
    ]
    try:
        await asyncio.gather(
            *(
                _warm_up(pool, p, target.url, r)
                for pool, p, r in zip(pools, plans, recorders, strict=True)
            )
        )
        made_before = [pool.connections_made for pool in pools]
        for pool, recorder in zip(pools, recorders, strict=True):
            pool.on_done = recorder.record
        start = await wait_for_start() if wait_for_start else monotonic() + 0.02
        return await _run(plans, pools, recorders, start, process_index, process_count, made_before)
    finally:
        for pool in pools:
            pool.close()


async def _run(
    plans: list[EndpointPlan],
    pools: list[ConnectionPool],
    recorders: list[_Recorder],
    start: float,
    process_index: int,
    process_count: int,
    made_before: list[int],
) -> StoryMeasurement:
    loop = asyncio.get_running_loop()
    clock = precise_clock(loop)
    open_ids = [i for i, p in enumerate(plans) if p.mode == "open"]
    streams = [
        arrival_times(
            start,
            plans[i].rate,
            plans[i].slots,
            offset=n / (plans[i].rate * max(1, len(open_ids))),
            index=process_index,
            stride=process_count,
        )
        for n, i in enumerate(open_ids)
    ]
    run_time = max(p.run_time_s for p in plans)
    closed_end = {i: start + p.run_time_s for i, p in enumerate(plans) if p.mode == "closed"}
    closed_left = {
        i: (math.ceil(p.requests / process_count) if p.requests is not None else None)
        for i, p in enumerate(plans)
        if p.mode == "closed"
    }

    def send_open(intended: float, stream: int, lag: float) -> None:
        i = open_ids[stream]
        recorder = recorders[i]
        recorder.sent += 1
        recorder.lag.append(round(lag * 1e6))
        ex = Exchange(plans[i].request, intended, i)
        ex.lag = lag
        pools[i].submit(ex)

    def next_closed(i: int) -> None:
        left = closed_left[i]
        if monotonic() >= closed_end[i] and left is None:
            return
        if left is not None:
            if left <= 0:
                return
            closed_left[i] = left - 1
        recorders[i].sent += 1
        pools[i].submit(Exchange(plans[i].request, monotonic(), i))

    for i in closed_end:
        recorder, pool = recorders[i], pools[i]

        def on_done(ex: Exchange, recorder: _Recorder = recorder, i: int = i) -> None:
            recorder.record(ex)
            next_closed(i)

        pool.on_done = on_done

    cpu_before = time.process_time()
    await clock.sleep_until(start)
    wall_start = monotonic()
    for i in closed_end:
        for _ in range(pools[i].limit):
            next_closed(i)

    stop = False

    async def ticker() -> None:
        while not stop:
            now = monotonic()
            for pool in pools:
                pool.sweep(now)
            await asyncio.sleep(TICK_S)

    tick_task = loop.create_task(ticker())
    try:
        await dispatch_open_loop(merged_schedule(streams), clock, send_open)
        max_timeout = max(p.timeout_s for p in plans)
        deadline = start + run_time + max_timeout + 1.0
        while any(pool.outstanding for pool in pools) or any(
            monotonic() < end for end in closed_end.values()
        ):
            if monotonic() > deadline:
                for pool in pools:
                    pool.fail_outstanding("no response before the run's deadline")
                break
            await asyncio.sleep(0.01)
    finally:
        stop = True
        await tick_task
        clock.close()
    wall = monotonic() - wall_start
    cpu = time.process_time() - cpu_before
    endpoints = [
        r.finish(pool.connections_made - before)
        for r, pool, before in zip(recorders, pools, made_before, strict=True)
    ]
    return StoryMeasurement(endpoints, client_cpu=cpu / wall if wall > 0 else 0.0, wall_s=wall)

"""--load-test: ramp a story's arrival rate to find its capacity at SLA.

Steps multiply every rate-scaled endpoint's nominal rate by start_multiplier,
x growth, ... up to max_multiplier or max_steps. Each step lasts step_duration_s, or
longer when the objectives need more samples at that rate (capped at 60 s). The ramp
stops at the first step that fails or is invalid. Capacity at SLA is the highest
total rate whose objectives all passed. The load test passes when the first step
(the nominal rate, multiplier 1 by default) passes.
"""

from __future__ import annotations

import math
from dataclasses import replace

from slakit.sla import stats
from slakit.sla.evaluate import story_result
from slakit.sla.http import Target
from slakit.sla.measure import EndpointPlan
from slakit.sla.model import LoadTestResult, LoadTestStep
from slakit.sla.prepare import PreparedStory
from slakit.sla.processes import measure_plans
from slakit.sla.progress import Progress
from slakit.sla.spec import Spec, Story
from slakit.status import Status

MAX_STEP_S = 60.0


def step_multipliers(spec: Spec) -> list[float]:
    cfg = spec.load_test
    out, m = [], cfg.start_multiplier
    while len(out) < cfg.max_steps and m <= cfg.max_multiplier + 1e-9:
        out.append(round(m, 6))
        m *= cfg.growth
    return out


def step_duration(spec: Spec, story: Story, plans: list[EndpointPlan], multiplier: float) -> float:
    """Long enough for every objective's minimum sample count at this rate."""
    duration = spec.load_test.step_duration_s
    by_key = {e.key: e for e in story.endpoints}
    total = sum(p.rate * multiplier for p in plans)
    pooled = [*story.objectives]
    for plan in plans:
        for objective in by_key[plan.key].objectives:
            need = stats.minimum_samples(objective.allowed, spec.confidence, spec.bound)
            duration = max(duration, (need + 1) / (plan.rate * multiplier))
    allowed = [o.allowed for o in pooled] + [round(1.0 - story.compliance, 12)]
    for a in allowed:
        need = stats.minimum_samples(a, spec.confidence, spec.bound)
        duration = max(duration, (need + 1) / total)
    return min(MAX_STEP_S, math.ceil(duration * 10) / 10)


async def ramp_story(
    spec: Spec,
    prepared: PreparedStory,
    target: Target,
    processes: int | None,
    progress: Progress,
) -> LoadTestResult:
    story = prepared.story
    scalable = {e.key for e in story.endpoints if e.scale_in_load_test and e.load.mode == "open"}
    plans = [p for p in prepared.plans if p.key in scalable]
    measured = [e for e in prepared.measured if e.key in scalable]
    nominal = sum(p.rate for p in plans)
    if not plans:
        return LoadTestResult(
            story.id, 0.0, None, Status.SKIPPED, note="no open-loop endpoint to ramp"
        )
    sub_story = replace(story, endpoints=tuple(measured))
    steps: list[LoadTestStep] = []
    capacity: float | None = None
    note = ""
    for multiplier in step_multipliers(spec):
        duration = step_duration(spec, sub_story, plans, multiplier)
        step_plans = [
            replace(p, rate=p.rate * multiplier, duration_s=duration, requests=None) for p in plans
        ]
        rate = nominal * multiplier
        with progress.track(f"story {story.id} ramp {rate:.0f} req/s", duration):
            measurement = await measure_plans(
                step_plans, target, processes, spec.validity.max_rate_per_process
            )
        planned = {p.key: p.slots for p in step_plans}
        result = story_result(spec, sub_story, measurement, measured, {}, planned)
        problems = [o.message for o in result.objectives if o.status != Status.PASS and o.message]
        steps.append(
            LoadTestStep(
                multiplier=multiplier,
                rate_rps=rate,
                duration_s=duration,
                status=result.status,
                samples=result.samples,
                p50_ms=result.p50_ms,
                p95_ms=result.p95_ms,
                p99_ms=result.p99_ms,
                compliance=result.compliance,
                note="; ".join(result.validity.problems or problems[:2]),
            )
        )
        if result.status != Status.PASS:
            if result.status == Status.INVALID and capacity is not None:
                note = f"client limit reached at {rate:.0f} req/s: capacity is at least this"
            break
        capacity = rate
    else:
        note = "ramp ceiling reached: capacity is at least the last rate"
    first = steps[0].status
    status = first if first in (Status.PASS, Status.INVALID) else Status.FAIL
    return LoadTestResult(story.id, nominal, capacity, status, steps, note)

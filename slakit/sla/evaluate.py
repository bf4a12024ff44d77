"""Turn measurements into verdicts: objectives, compliance, score, validity.

All formulas are in sla/README.md. In short, for an objective "pN <= T" on n requests
of which k exceeded T or failed, U = one-sided upper confidence bound on k/n; pass iff
n >= minimum_samples and U <= 1 - N/100.
"""

from __future__ import annotations

from collections.abc import Callable

from slakit.sla import histogram as hist
from slakit.sla import stats
from slakit.sla.histogram import us
from slakit.sla.measure import EndpointMeasurement, StoryMeasurement
from slakit.sla.model import EndpointResult, ObjectiveResult, StoryResult, Validity
from slakit.sla.spec import Endpoint, Objective, Spec, Story
from slakit.status import Status


def _objective(
    spec: Spec,
    story: Story,
    objective: Objective,
    samples: int,
    exceedances: int,
    endpoint: str | None,
    threshold_ms: float | None,
    kind: str = "percentile",
    name: str | None = None,
) -> ObjectiveResult:
    allowed = objective.allowed
    need = stats.minimum_samples(allowed, spec.confidence, spec.bound)
    if samples <= 0:
        return ObjectiveResult(
            story.id, objective.scope, endpoint, name or _name(objective, threshold_ms), kind,
            threshold_ms, allowed, 0, 0, None, need, None, Status.INVALID, "no requests measured",
        )  # fmt: skip
    upper = stats.upper_bound(exceedances, samples, spec.confidence, spec.bound)
    level = stats.confidence_level(exceedances, samples, allowed)
    if samples < need:
        status, message = Status.INVALID, f"only {samples} requests, {need} needed"
    elif upper <= allowed:
        status, message = Status.PASS, ""
    else:
        status = Status.FAIL
        message = f"{exceedances}/{samples} over: upper bound {upper:.2%} > allowed {allowed:.2%}"
    return ObjectiveResult(
        story.id, objective.scope, endpoint, name or _name(objective, threshold_ms), kind,
        threshold_ms, allowed, samples, exceedances, upper, need, level, status, message,
    )  # fmt: skip


def combined(objectives: list[ObjectiveResult]) -> Status:
    """A failure for certain decides; else an undecided objective; else pass."""
    statuses = {o.status for o in objectives}
    if Status.FAIL in statuses:
        return Status.FAIL
    return Status.INVALID if Status.INVALID in statuses else Status.PASS


def _name(objective: Objective, threshold_ms: float | None) -> str:
    if threshold_ms is None:
        return objective.label()
    return f"p{objective.percentile:g} <= {threshold_ms:g} ms"


def _failures(m: EndpointMeasurement) -> int:
    return m.sent - m.ok


Recount = Callable[[float], int]


def _recount(parts: list[tuple[EndpointMeasurement, float]], extra_ms: float) -> int:
    """Exceedances if every request is credited extra_ms (HdrHistogram resolution)."""
    return sum(
        hist.count_above(m.latency, us(threshold + extra_ms)) + _failures(m)
        for m, threshold in parts
    )


def endpoint_result(
    spec: Spec,
    story: Story,
    endpoint: Endpoint,
    m: EndpointMeasurement,
    planned: int,
    recounts: dict[int, Recount],
) -> tuple[EndpointResult, list[ObjectiveResult]]:
    objectives = []
    for objective in endpoint.objectives:
        threshold = objective.threshold_ms(endpoint.target_ms)
        k = m.exceed[us(threshold)] + _failures(m)
        objectives.append(_objective(spec, story, objective, m.sent, k, endpoint.key, threshold))
        recounts[id(objectives[-1])] = lambda extra, t=threshold: _recount([(m, t)], extra)
    status = combined(objectives)
    connect = hist.summary_ms(m.connect)
    result = EndpointResult(
        key=endpoint.key,
        method=endpoint.method,
        path=endpoint.path,
        name=endpoint.name,
        target_ms=endpoint.target_ms,
        status=status,
        planned=planned,
        sent=m.sent,
        ok=m.ok,
        within_target=m.ok - m.exceed[us(endpoint.target_ms)],
        errors=dict(sorted(m.errors.items())),
        latency=hist.summary_ms(m.latency),
        service=hist.summary_ms(m.service),
        ttfb=hist.summary_ms(m.ttfb),
        connect=connect,
        tls=hist.summary_ms(m.tls),
        lag=hist.summary_ms(m.lag),
        connections_made=m.connections_made,
        score=100.0 * m.credit / m.sent if m.sent else None,
        curve=[[p, v] for p, v in hist.curve_ms(m.latency)],
        histogram=hist.encode(m.latency),
    )
    return result, objectives


def skipped_endpoint(endpoint: Endpoint, reason: str) -> EndpointResult:
    return EndpointResult(
        key=endpoint.key,
        method=endpoint.method,
        path=endpoint.path,
        name=endpoint.name,
        target_ms=endpoint.target_ms,
        status=Status.SKIPPED,
        skip_reason=reason,
    )


def validity_of(spec: Spec, measurement: StoryMeasurement, open_loop: bool) -> Validity:
    limits = spec.validity
    problems = []
    lag_p99 = hist.percentile_ms(measurement.lag, 99.0) if open_loop else None
    if lag_p99 is not None and lag_p99 > limits.max_schedule_lag_p99_ms:
        problems.append(
            f"schedule lag p99 {lag_p99:.2f} ms > {limits.max_schedule_lag_p99_ms:g} ms"
        )
    if measurement.client_cpu > limits.max_client_cpu:
        problems.append(
            f"client CPU {measurement.client_cpu:.0%} of a core > {limits.max_client_cpu:.0%}"
        )
    return Validity(
        valid=not problems,
        problems=problems,
        lag_p99_ms=lag_p99,
        client_cpu=measurement.client_cpu,
        processes=measurement.processes,
    )


def story_result(
    spec: Spec,
    story: Story,
    measurement: StoryMeasurement | None,
    measured: list[Endpoint],
    skipped: dict[str, str],
    planned: dict[str, int],
) -> StoryResult:
    """Verdict of one story from the measurement of its non-skipped endpoints."""
    result = StoryResult(
        id=story.id,
        name=story.name,
        priority=story.priority,
        status=Status.SKIPPED,
        compliance_threshold=story.compliance,
    )
    by_key = {m.key: m for m in measurement.endpoints} if measurement else {}
    results: dict[str, EndpointResult] = {}
    objectives: list[ObjectiveResult] = []
    recounts: dict[int, Recount] = {}
    for endpoint in measured:
        m = by_key[endpoint.key]
        er, eo = endpoint_result(spec, story, endpoint, m, planned[endpoint.key], recounts)
        results[endpoint.key] = er
        objectives += eo
    for endpoint in story.endpoints:
        if endpoint.key in skipped:
            results[endpoint.key] = skipped_endpoint(endpoint, skipped[endpoint.key])
    result.endpoints = [results[e.key] for e in story.endpoints]
    if measurement is None or not measured:
        result.skip_reason = "; ".join(sorted(set(skipped.values()))) or "nothing to measure"
        return result

    pairs = [(e, by_key[e.key]) for e in measured]
    n = sum(m.sent for _, m in pairs)
    within = sum(results[e.key].within_target for e, _ in pairs)
    compliance_objective = Objective(percentile=story.compliance * 100.0, scope="story")
    objectives.append(
        _objective(
            spec,
            story,
            compliance_objective,
            n,
            n - within,
            None,
            None,
            kind="compliance",
            name=f"SLA compliance >= {story.compliance:.0%} (within target)",
        )
    )
    compliance_result = objectives[-1]
    recounts[id(compliance_result)] = lambda extra: _recount(
        [(m, e.target_ms) for e, m in pairs], extra
    )
    for objective in story.objectives:
        k = sum(m.exceed[us(objective.threshold_ms(e.target_ms))] + _failures(m) for e, m in pairs)
        thresholds = {objective.threshold_ms(e.target_ms) for e, _ in pairs}
        threshold = thresholds.pop() if len(thresholds) == 1 else None
        objectives.append(_objective(spec, story, objective, n, k, None, threshold))
        recounts[id(objectives[-1])] = lambda extra, o=objective: _recount(
            [(m, o.threshold_ms(e.target_ms)) for e, m in pairs], extra
        )

    pooled = hist.merge([m.latency for _, m in pairs])
    result.samples = n
    result.within_target = within
    result.compliance = within / n if n else None
    result.compliance_lower = (
        1.0 - stats.upper_bound(n - within, n, spec.confidence, spec.bound) if n else None
    )
    result.confidence_level = compliance_result.confidence_level
    result.mean_ms = pooled.get_mean_value() / 1000.0 if pooled.get_total_count() else None
    result.p50_ms = hist.percentile_ms(pooled, 50)
    result.p95_ms = hist.percentile_ms(pooled, 95)
    result.p99_ms = hist.percentile_ms(pooled, 99)
    result.credit = sum(m.credit for _, m in pairs)
    result.score = 100.0 * result.credit / n if n else None
    result.curve = [[p, v] for p, v in hist.curve_ms(pooled)]
    modes = {e.load.mode for e in measured}
    result.mode = modes.pop() if len(modes) == 1 else "mixed"
    open_rates = [e.load.rate for e in measured if e.load.mode == "open"]
    result.rate_rps = sum(open_rates) if open_rates else None
    result.duration_s = measurement.wall_s
    result.validity = validity_of(spec, measurement, bool(open_rates))
    if not result.validity.valid:
        _judge_under_invalid_measurement(spec, result, objectives, recounts, measurement)
    result.objectives = objectives
    result.status = combined(objectives)
    return result


def _judge_under_invalid_measurement(
    spec: Spec,
    result: StoryResult,
    objectives: list[ObjectiveResult],
    recounts: dict[int, Recount],
    measurement: StoryMeasurement,
) -> None:
    """Client delays only ever add to latencies measured from intended send times: a
    pass stays a pass. A failure stays a failure only if it survives crediting every
    request with the worst schedule lag seen (and the client CPU was not saturated);
    otherwise the client may have caused it and it becomes INVALID."""
    lag_only = measurement.client_cpu <= spec.validity.max_client_cpu
    worst_lag_ms = (
        measurement.lag.get_max_value() / 1000.0 if measurement.lag.get_total_count() else 0.0
    )
    for objective in objectives:
        if objective.status != Status.FAIL:
            continue
        if lag_only and objective.samples:
            k = recounts[id(objective)](worst_lag_ms)
            upper = stats.upper_bound(k, objective.samples, spec.confidence, spec.bound)
            if upper > objective.allowed:
                objective.message += (
                    f"; still fails after crediting the worst schedule lag ({worst_lag_ms:.2f} ms)"
                )
                continue
        objective.message += "; measurement invalid, the client may have caused it"
        objective.status = Status.INVALID
    failed = {o.endpoint for o in objectives if o.status == Status.FAIL}
    for er in result.endpoints:
        if er.status == Status.FAIL and er.key not in failed:
            er.status = Status.INVALID

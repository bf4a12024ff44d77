"""Run a spec's stories against a base URL and produce a `Result`."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slakit.errors import SlakitError
from slakit.sla import histogram as hist
from slakit.sla import stats
from slakit.sla.control import MissingCredentials, fetch_cache_stats, fetch_token, substitute
from slakit.sla.evaluate import story_result, us
from slakit.sla.http import Target, parse_base_url, prepare_request
from slakit.sla.measure import EndpointPlan, StoryMeasurement, measure_story_async
from slakit.sla.model import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    FAIL,
    INVALID,
    PASS,
    SKIPPED,
    Platform,
    ReadinessCheck,
    Result,
    StoryResult,
)
from slakit.sla.processes import measure_in_processes
from slakit.sla.spec import Endpoint, Spec, Story, load_spec


@dataclass
class RunOptions:
    """How to run; every field has the CLI's default."""

    stories: list[str] | None = None  # None: every story of the spec
    load_test: bool = False  # also ramp each story's rate to find its capacity at SLA
    validate_production: bool = False  # exit code gates on full readiness
    comprehensive: bool = False  # text report with per-endpoint detail
    baseline: str | Path | None = None  # earlier JSON result to compare with
    skip_missing_credentials: bool = False  # report endpoints lacking env credentials as skipped
    processes: int | None = (
        None  # load processes per story; None: by rate (validity.max_rate_per_process)
    )
    progress: bool | None = None  # rich progress bar; None: only when stderr is a terminal
    env: Mapping[str, str] | None = None  # environment for ${VAR} and credentials (os.environ)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedStory:
    story: Story
    plans: list[EndpointPlan]
    measured: list[Endpoint]
    skipped: dict[str, str]


class _Tokens:
    def __init__(self, spec: Spec, base_url: str, env: Mapping[str, str]) -> None:
        self.spec, self.base_url, self.env = spec, base_url, env
        self.cache: dict[str, str] = {}

    async def get(self, scheme_name: str) -> str:
        if scheme_name not in self.cache:
            scheme = self.spec.auth[scheme_name]
            self.cache[scheme_name] = await fetch_token(self.base_url, scheme, self.env)
        return self.cache[scheme_name]


def make_plan(endpoint: Endpoint, story: Story, target: Target, request: Any) -> EndpointPlan:
    load = endpoint.load
    return EndpointPlan(
        key=endpoint.key,
        request=request,
        expect_status=endpoint.expect_status,
        mode=load.mode,
        rate=load.rate,
        concurrency=load.concurrency,
        requests=load.requests,
        duration_s=load.duration_s,
        connections=load.connections,
        warmup_requests=load.warmup_requests,
        timeout_s=load.timeout_s,
        target_us=us(endpoint.target_ms),
        thresholds_us=tuple(us(t) for t in endpoint.thresholds_ms(story)),
    )


async def prepare_story(
    story: Story, target: Target, env: Mapping[str, str], tokens: _Tokens, skip_missing: bool
) -> PreparedStory:
    plans, measured, skipped = [], [], {}
    for endpoint in story.endpoints:
        try:
            try:
                headers = dict(substitute(endpoint.headers, env))
                body = substitute(endpoint.body, env)
                path = substitute(endpoint.path, env)
                if endpoint.auth:
                    headers["Authorization"] = f"Bearer {await tokens.get(endpoint.auth)}"
            except MissingCredentials as err:
                raise MissingCredentials(f"story {story.id}: {endpoint.key}", err.names) from None
        except MissingCredentials as err:
            if not skip_missing:
                raise
            skipped[endpoint.key] = f"{', '.join(err.names)} not set"
            continue
        request = prepare_request(target, endpoint.method, path, body, headers)
        plans.append(make_plan(endpoint, story, target, request))
        measured.append(endpoint)
    return PreparedStory(story, plans, measured, skipped)


def process_count(plans: list[EndpointPlan], spec: Spec, requested: int | None) -> int:
    if requested is not None:
        if requested < 1:
            raise SlakitError(f"--processes must be >= 1 (got {requested})")
        return requested
    rate = sum(p.rate for p in plans if p.mode == "open")
    wanted = math.ceil(rate / spec.validity.max_rate_per_process) if rate else 1
    return max(1, min(wanted, os.cpu_count() or 1))


async def measure(plans: list[EndpointPlan], target: Target, processes: int) -> StoryMeasurement:
    if processes <= 1:
        return await measure_story_async(plans, target)
    run_time = max(p.run_time_s for p in plans) + max(p.timeout_s for p in plans) + 5.0
    return await measure_in_processes(plans, target, processes, run_time)


class Progress:
    """Time-based progress per story on stderr (rich), or nothing."""

    def __init__(self, enabled: bool | None) -> None:
        import sys

        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def track(self, description: str, seconds: float) -> AbstractContextManager[Any]:
        if self._progress is None:
            return nullcontext()
        return _Track(self._progress, description, seconds)


class _Track:
    def __init__(self, progress: Any, description: str, seconds: float) -> None:
        self.progress, self.description, self.seconds = progress, description, seconds

    async def _tick(self) -> None:
        start = time.monotonic()
        while True:
            self.progress.update(self.task, completed=min(time.monotonic() - start, self.seconds))
            await asyncio.sleep(0.2)

    def __enter__(self) -> _Track:
        self.task = self.progress.add_task(self.description, total=self.seconds)
        self.ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ticker.cancel()
        self.progress.remove_task(self.task)


async def run_checks_async(
    spec: Spec | str | Path | None,
    base_url: str,
    stories: list[str] | None = None,
    *,
    target_sla_ms: float | None = None,
    options: RunOptions | None = None,
) -> Result:
    """Async form of `slakit.sla.run_checks`."""
    options = options or RunOptions()
    if stories is not None:
        options.stories = stories
    if not isinstance(spec, Spec):
        spec = load_spec(spec, target_sla_ms=target_sla_ms)
    elif target_sla_ms is not None:
        raise SlakitError("give target_sla_ms to load_spec() when passing a loaded Spec")
    spec = spec.select(options.stories)
    target = parse_base_url(base_url)
    env = os.environ if options.env is None else options.env
    tokens = _Tokens(spec, target.url, env)
    began = time.monotonic()
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    prepared = [
        await prepare_story(s, target, env, tokens, options.skip_missing_credentials)
        for s in spec.stories
    ]
    story_results: list[StoryResult] = []
    with Progress(options.progress) as progress:
        for item in prepared:
            story_results.append(await run_story(spec, item, target, options.processes, progress))
        cache = await fetch_cache_stats(target.url, spec.stats_path)
        load_tests = []
        if options.load_test:
            from slakit.sla.ramp import ramp_story

            for item in prepared:
                load_tests.append(
                    await ramp_story(spec, item, target, options.processes, progress, measure)
                )

    result = Result(
        generated=generated,
        base_url=target.url,
        spec_source=spec.source,
        target_ms=spec.target_ms,
        confidence=spec.confidence,
        bound=spec.bound,
        status=PASS,
        exit_code=EXIT_PASS,
        stories=story_results,
        cache=cache,
        load_tests=load_tests,
        options={
            "stories": [s.id for s in spec.stories],
            "load_test": options.load_test,
            "validate_production": options.validate_production,
            "comprehensive": options.comprehensive,
            "min_performance_score": spec.readiness.min_performance_score,
            "min_cache_hit_rate": spec.readiness.min_cache_hit_rate,
        },
    )
    if options.baseline:
        from slakit.sla.baseline import compare_with_baseline

        result.regressions = compare_with_baseline(result, Result.load(options.baseline))
        result.baseline_source = str(options.baseline)
    result.platform = platform_summary(result, spec)
    result.readiness = readiness_checks(result, spec)
    result.platform.ready = all(c.status != FAIL for c in result.readiness)
    result.status, result.exit_code = verdict(result, options.validate_production)
    result.duration_s = round(time.monotonic() - began, 3)
    return result


async def run_story(
    spec: Spec, item: PreparedStory, target: Target, processes: int | None, progress: Progress
) -> StoryResult:
    if not item.plans:
        return story_result(spec, item.story, None, [], item.skipped, {})
    count = process_count(item.plans, spec, processes)
    seconds = max(p.run_time_s for p in item.plans)
    with progress.track(f"story {item.story.id}", seconds):
        measurement = await measure(item.plans, target, count)
    planned = {p.key: p.slots if p.mode == "open" else 0 for p in item.plans}
    return story_result(spec, item.story, measurement, item.measured, item.skipped, planned)


def platform_summary(result: Result, spec: Spec) -> Platform:
    measured = [s for s in result.stories if s.status != SKIPPED]
    endpoints = [e for s in result.stories for e in s.endpoints]
    n = sum(s.samples for s in measured)
    within = sum(s.within_target for s in measured)
    pooled = hist.merge([hist.decode(e.histogram) for e in endpoints if e.histogram])
    platform = Platform(
        stories_tested=len(measured),
        stories_ready=sum(1 for s in result.stories if s.production_ready),
        endpoints_tested=sum(1 for e in endpoints if e.status != SKIPPED),
        endpoints_passed=sum(1 for e in endpoints if e.status == PASS),
        endpoints_skipped=sum(1 for e in endpoints if e.status == SKIPPED),
        samples=n,
        compliance_threshold=spec.compliance,
    )
    if n:
        platform.compliance = within / n
        platform.compliance_lower = 1.0 - stats.upper_bound(
            n - within, n, spec.confidence, spec.bound
        )
        platform.confidence_level = stats.confidence_level(n - within, n, 1.0 - spec.compliance)
        platform.mean_ms = pooled.get_mean_value() / 1000.0 if pooled.get_total_count() else None
        platform.score = 100.0 * sum(s.credit for s in measured) / n
    return platform


def _pct(value: float | None) -> str:
    return "not available" if value is None else f"{value:.1%}"


def readiness_checks(result: Result, spec: Spec) -> list[ReadinessCheck]:
    p = result.platform
    checks = []
    statuses = [s.status for s in result.stories]
    objectives_ok = bool(statuses) and all(s in (PASS, SKIPPED) for s in statuses)
    checks.append(
        ReadinessCheck(
            "Platform SLA Compliance",
            f"{_pct(p.compliance)} (lower bound {_pct(p.compliance_lower)})",
            f"lower bound >= {spec.compliance:.0%}",
            PASS
            if p.compliance_lower is not None and p.compliance_lower >= spec.compliance
            else FAIL,
        )
    )
    checks.append(
        ReadinessCheck(
            "SLA Objectives",
            f"{sum(1 for s in result.stories if s.status == PASS)}/{len(statuses)} stories pass",
            "all stories pass",
            PASS if objectives_ok and p.stories_tested else FAIL,
        )
    )
    min_score = spec.readiness.min_performance_score
    checks.append(
        ReadinessCheck(
            "Performance Score",
            "not available" if p.score is None else f"{p.score:.1f}/100",
            f">= {min_score:g}" if min_score is not None else "not gated",
            "info"
            if min_score is None
            else (PASS if p.score is not None and p.score >= min_score else FAIL),
        )
    )
    min_hit = spec.readiness.min_cache_hit_rate
    hit = result.cache.overall if result.cache.available else None
    checks.append(
        ReadinessCheck(
            "Cache Hit Rate",
            _pct(hit) if result.cache.available else f"not available ({result.cache.reason})",
            f">= {min_hit:.0%}" if min_hit is not None else "not gated",
            "info" if min_hit is None else (PASS if hit is not None and hit >= min_hit else FAIL),
        )
    )
    measured = [e for s in result.stories for e in s.endpoints if e.status != SKIPPED]
    slow = [
        e for e in measured if e.latency.get("mean") is None or e.latency["mean"] >= e.target_ms
    ]
    checks.append(
        ReadinessCheck(
            "Response Time",
            "not available" if p.mean_ms is None else f"{p.mean_ms:.1f}ms average",
            f"each endpoint's mean < its target (default {spec.target_ms:g}ms)",
            PASS if measured and not slow else FAIL,
        )
    )
    if result.load_tests:
        passed = all(t.status == PASS for t in result.load_tests)
        checks.append(
            ReadinessCheck(
                "Load Testing",
                "PASSED" if passed else "FAILED",
                "nominal rate sustained",
                PASS if passed else FAIL,
            )
        )
    else:
        checks.append(ReadinessCheck("Load Testing", "not run", "--load-test", "info"))
    if result.baseline_source:
        regressed = [r for r in result.regressions if r.status == FAIL]
        checks.append(
            ReadinessCheck(
                "Regression Tests",
                "PASSED" if not regressed else f"FAILED ({len(regressed)} regressions)",
                "no significant regression",
                FAIL if regressed else PASS,
            )
        )
    else:
        checks.append(ReadinessCheck("Regression Tests", "not run", "--baseline", "info"))
    invalid = [s.id for s in result.stories if any(o.status == INVALID for o in s.objectives)]
    checks.append(
        ReadinessCheck(
            "Measurement Validity",
            "VALID" if not invalid else f"INVALID objectives in story {', '.join(invalid)}",
            "no objective left undecided by schedule lag or client CPU",
            PASS if not invalid else FAIL,
        )
    )
    checks.append(
        ReadinessCheck(
            "Endpoints Measured",
            f"{p.endpoints_tested}/{p.endpoints_tested + p.endpoints_skipped}",
            "none skipped",
            PASS if not p.endpoints_skipped else FAIL,
        )
    )
    return checks


def verdict(result: Result, validate_production: bool) -> tuple[str, int]:
    """Overall status and exit code (0 pass, 1 SLA not met, 3 invalid measurement)."""
    statuses = {s.status for s in result.stories}
    if FAIL in statuses:
        return FAIL, EXIT_FAIL
    if INVALID in statuses:
        return INVALID, EXIT_INVALID
    if any(t.status == INVALID for t in result.load_tests) and not any(
        t.status == FAIL for t in result.load_tests
    ):
        return INVALID, EXIT_INVALID
    if any(t.status == FAIL for t in result.load_tests):
        return FAIL, EXIT_FAIL
    if any(r.status == FAIL for r in result.regressions):
        return FAIL, EXIT_FAIL
    if statuses <= {SKIPPED}:
        return FAIL, EXIT_FAIL
    if validate_production and not result.platform.ready:
        return FAIL, EXIT_FAIL
    return PASS, EXIT_PASS

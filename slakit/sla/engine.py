"""Run a spec's stories against a base URL and produce a `Result`.

The steps, each in its own module: prepare the requests (prepare.py), measure each story
(processes.py, measure.py), judge it (evaluate.py), optionally ramp its rate (ramp.py),
compare with a baseline (baseline.py) and judge the run (verdict.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from slakit.errors import SlakitError
from slakit.sla.baseline import compare_with_baseline
from slakit.sla.control import fetch_cache_stats
from slakit.sla.evaluate import story_result
from slakit.sla.http import Target, client_ssl_context, parse_base_url
from slakit.sla.loop import run_loop
from slakit.sla.model import EXIT_PASS, CacheReport, LoadTestResult, Result, StoryResult
from slakit.sla.prepare import PreparedStory, Tokens, prepare_story
from slakit.sla.processes import measure_plans
from slakit.sla.progress import Progress
from slakit.sla.ramp import ramp_story
from slakit.sla.spec import Spec, load_spec
from slakit.sla.verdict import judge
from slakit.status import Status


@dataclass(frozen=True)
class RunOptions:
    """How to run; every field has the CLI's default. Never modified by a run."""

    stories: list[str] | None = None  # None: every story of the spec
    load_test: bool = False  # also ramp each story's rate to find its capacity at SLA
    validate_production: bool = False  # exit code gates on full readiness
    comprehensive: bool = False  # text report with per-endpoint detail
    baseline: str | Path | None = None  # earlier JSON result to compare with
    skip_missing_credentials: bool = False  # report endpoints lacking env credentials as skipped
    processes: int | None = None  # load processes per story; None: by rate (see processes.py)
    progress: bool | None = None  # rich progress bar; None: only when stderr is a terminal
    env: Mapping[str, str] | None = None  # environment for ${VAR} and credentials (os.environ)
    ca_file: str | Path | None = None  # https: CA bundle to verify with; None = system store


def run_checks(
    spec: Spec | str | Path | None,
    base_url: str,
    stories: list[str] | None = None,
    *,
    target_sla_ms: float | None = None,
    options: RunOptions | None = None,
) -> Result:
    """Measure the spec's stories against base_url and judge them (blocking)."""
    return run_loop(
        run_checks_async(spec, base_url, stories, target_sla_ms=target_sla_ms, options=options)
    )


async def run_checks_async(
    spec: Spec | str | Path | None,
    base_url: str,
    stories: list[str] | None = None,
    *,
    target_sla_ms: float | None = None,
    options: RunOptions | None = None,
) -> Result:
    """Async form of `run_checks`; `stories`, when given, overrides options.stories."""
    options = options or RunOptions()
    if not isinstance(spec, Spec):
        spec = load_spec(spec, target_sla_ms=target_sla_ms)
    elif target_sla_ms is not None:
        raise SlakitError("give target_sla_ms to load_spec() when passing a loaded Spec")
    spec = spec.select(options.stories if stories is None else stories)
    target = parse_base_url(base_url, str(options.ca_file) if options.ca_file else None)
    if target.ca_file or target.scheme == "https":
        client_ssl_context(target.ca_file)  # an unreadable CA file: exit 2 before any request
    env = os.environ if options.env is None else options.env
    tokens = Tokens(spec, target.url, env, target.ca_file)
    began = time.monotonic()
    generated = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    prepared = [
        await prepare_story(s, target, env, tokens, options.skip_missing_credentials)
        for s in spec.stories
    ]
    story_results: list[StoryResult] = []
    load_tests: list[LoadTestResult] = []
    with Progress(options.progress) as progress:
        for item in prepared:
            story_results.append(await run_story(spec, item, target, options.processes, progress))
        cache = await fetch_cache_stats(target.url, spec.stats_path, target.ca_file)
        if options.load_test:
            for item in prepared:
                load_tests.append(await ramp_story(spec, item, target, options.processes, progress))

    result = new_result(spec, target.url, generated, options, story_results, cache, load_tests)
    conclude(result, spec, options)
    result.duration_s = round(time.monotonic() - began, 3)
    return result


def new_result(
    spec: Spec,
    base_url: str,
    generated: str,
    options: RunOptions,
    stories: list[StoryResult],
    cache: CacheReport,
    load_tests: list[LoadTestResult] | None = None,
) -> Result:
    """A run's result before `verdict.judge` (one process or several hosts, distributed.py)."""
    return Result(
        generated=generated,
        base_url=base_url,
        spec_source=spec.source,
        target_ms=spec.target_ms,
        confidence=spec.confidence,
        bound=spec.bound,
        status=Status.PASS,
        exit_code=EXIT_PASS,
        stories=stories,
        cache=cache,
        load_tests=load_tests or [],
        options={
            "stories": [s.id for s in spec.stories],
            "load_test": options.load_test,
            "validate_production": options.validate_production,
            "comprehensive": options.comprehensive,
            "min_performance_score": spec.readiness.min_performance_score,
            "min_cache_hit_rate": spec.readiness.min_cache_hit_rate,
        },
    )


def conclude(result: Result, spec: Spec, options: RunOptions) -> None:
    """Compare with the baseline, if any, and judge the run (status, exit code)."""
    if options.baseline:
        result.regressions = compare_with_baseline(result, Result.load(options.baseline))
        result.baseline_source = str(options.baseline)
    judge(result, spec, options.validate_production)


def run_load_tests(spec: Spec, base_url: str, options: RunOptions) -> list[LoadTestResult]:
    """Only the `--load-test` ramps of the spec's stories, without the nominal measurement
    before them: for `invoke tune`, which compares settings by capacity (blocking)."""

    async def ramps() -> list[LoadTestResult]:
        target = parse_base_url(base_url, str(options.ca_file) if options.ca_file else None)
        env = os.environ if options.env is None else options.env
        tokens = Tokens(spec, target.url, env, target.ca_file)
        out = []
        with Progress(options.progress) as progress:
            for story in spec.select(options.stories).stories:
                item = await prepare_story(story, target, env, tokens, False)
                out.append(await ramp_story(spec, item, target, options.processes, progress))
        return out

    return run_loop(ramps())


async def run_story(
    spec: Spec, item: PreparedStory, target: Target, processes: int | None, progress: Progress
) -> StoryResult:
    """Measure one prepared story at its nominal load and judge it."""
    if not item.plans:
        return story_result(spec, item.story, None, [], item.skipped, {})
    seconds = max(p.run_time_s for p in item.plans)
    with progress.track(f"story {item.story.id}", seconds):
        measurement = await measure_plans(
            item.plans, target, processes, spec.validity.max_rate_per_process
        )
    planned = {p.key: p.slots if p.mode == "open" else 0 for p in item.plans}
    return story_result(spec, item.story, measurement, item.measured, item.skipped, planned)

"""Strict SLA validation of a deployed environment (the seed's pytest entry point).

Each story is measured once per session by slakit.sla (open loop, HdrHistogram,
Clopper-Pearson bounds); tests assert the verdicts of its objectives. A test fails
when an objective fails, when the measurement was INVALID (the checker could not
trust its own numbers), and when an endpoint was not measured at all (the operator's
credentials are missing): none of them counts as a pass.
"""

from __future__ import annotations

import pytest

from slakit.sla.spec import load_spec

_DEFAULT = load_spec()
STORY_MARK = {
    "1.1": pytest.mark.story_1_1,
    "2.2": pytest.mark.story_2_2,
    "4.1": pytest.mark.story_4_1,
    "4.2": pytest.mark.story_4_2,
    "core": pytest.mark.story_core,
}


def _marks(story) -> list:
    marks = [STORY_MARK[story.id]] if story.id in STORY_MARK else []
    return [*marks, pytest.mark.critical] if story.priority == "critical" else marks


def _tag(story_id: str) -> str:
    return "story_" + story_id.replace(".", "_")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    spec_path = metafunc.config.getoption("--sla-spec")
    spec = load_spec(spec_path) if spec_path else _DEFAULT
    if "endpoint_case" in metafunc.fixturenames:
        metafunc.parametrize(
            "endpoint_case",
            [
                pytest.param((s.id, e.key), id=f"{_tag(s.id)}-{e.key}", marks=_marks(s))
                for s in spec.stories
                for e in s.endpoints
            ],
        )
    if "story_id" in metafunc.fixturenames:
        metafunc.parametrize(
            "story_id", [pytest.param(s.id, id=_tag(s.id), marks=_marks(s)) for s in spec.stories]
        )


CREDENTIALS = "the operator's are SLAKIT_SLA_USERNAME and SLAKIT_SLA_PASSWORD"


def _not_measured(endpoints) -> str:
    """Why endpoints were not measured, or "" when every one was."""
    skipped = [e for e in endpoints if e.status == "skipped"]
    if not skipped:
        return ""
    return (
        "not measured, so not met: "
        + "; ".join(f"{e.key} ({e.skip_reason})" for e in skipped)
        + f": credentials missing, set the variables named ({CREDENTIALS})"
    )


def _story(sla_runs, story_id: str):
    result = sla_runs.run(story_id)
    return result, result.stories[0]


def _explain(objectives) -> str:
    return "; ".join(
        f"{o.endpoint or 'story ' + o.story_id} {o.name}: {o.status.upper()}"
        + (f" ({o.message})" if o.message else "")
        for o in objectives
        if o.status != "pass"
    )


def assert_endpoint_meets_sla(sla_runs, story_id: str, key: str) -> None:
    _, story = _story(sla_runs, story_id)
    endpoint = next(e for e in story.endpoints if e.key == key)
    if endpoint.status == "skipped":
        pytest.fail(_not_measured([endpoint]), pytrace=False)
    objectives = [o for o in story.objectives if o.endpoint == key]
    met = bool(objectives) and all(o.status == "pass" for o in objectives)
    assert met, (
        f"{key} (target {endpoint.target_ms:g} ms, p95 {endpoint.latency.get('p95')} ms): "
        + _explain(objectives)
        + (
            "; measurement: " + "; ".join(story.validity.problems)
            if story.validity.problems
            else ""
        )
    )


class TestStrictAPIPerformance:
    @pytest.mark.critical
    @pytest.mark.story_core
    def test_health_endpoint_15ms_sla(self, sla_runs):
        assert_endpoint_meets_sla(sla_runs, "core", "GET /api/v1/health")

    @pytest.mark.critical
    @pytest.mark.story_1_1
    def test_dashboard_executive_15ms_sla(self, sla_runs):
        assert_endpoint_meets_sla(sla_runs, "1.1", "GET /api/v1/dashboard/executive")

    def test_endpoint_sla(self, sla_runs, endpoint_case):
        assert_endpoint_meets_sla(sla_runs, *endpoint_case)

    def test_story_sla(self, sla_runs, story_id):
        _, story = _story(sla_runs, story_id)
        missing = _not_measured(story.endpoints)
        if missing or story.status == "skipped":
            pytest.fail(f"story {story_id}: {missing or story.skip_reason}", pytrace=False)
        met = story.status == "pass" and all(o.status == "pass" for o in story.objectives)
        assert met, f"story {story_id} {story.status.upper()}: " + _explain(story.objectives)


@pytest.mark.story_2_2
class TestStrictCachePerformance:
    def test_cache_operations_15ms_sla(self, sla_runs):
        assert_endpoint_meets_sla(sla_runs, "2.2", "POST /api/v1/cache/warm")

    @pytest.mark.story_1_1
    def test_cached_dashboard_15ms_sla(self, sla_runs):
        assert_endpoint_meets_sla(sla_runs, "1.1", "GET /api/v1/dashboard/revenue")

    def test_cache_hit_rate(self, sla_runs):
        result, _ = _story(sla_runs, "2.2")
        if not result.cache.available:  # not measured: never a verdict either way
            pytest.fail(f"cache hit rates not available: {result.cache.reason}", pytrace=False)
        minimum = sla_runs.spec.readiness.min_cache_hit_rate or 0.95
        assert result.cache.overall is not None and result.cache.overall >= minimum, (
            f"overall cache hit rate {result.cache.overall} < {minimum:.0%}"
        )


@pytest.mark.regression
class TestPerformanceRegression:
    def test_no_regression_against_baseline(self, sla_runs):
        from slakit.sla.baseline import compare_with_baseline
        from slakit.sla.model import Result

        if not sla_runs.baseline:
            pytest.skip("no --baseline given (write one with `python -m slakit.sla --json PATH`)")
        baseline = Result.load(sla_runs.baseline)
        stories = [s.id for s in baseline.stories if s.id in {x.id for x in sla_runs.spec.stories}]
        findings = []
        for story_id in stories:
            findings += compare_with_baseline(sla_runs.run(story_id), baseline)
        regressed = [f for f in findings if f.status == "fail"]
        if not findings:
            pytest.fail("no endpoint in common with the baseline", pytrace=False)
        assert not regressed, "; ".join(f"{f.endpoint}: {f.message}" for f in regressed)

    @pytest.mark.story_1_1
    @pytest.mark.critical
    def test_no_latency_drift_under_sustained_load(self, sla_runs):
        """Story 1.1 measured twice in a row: the second run must not be significantly
        slower than the first (same test as --baseline)."""
        from slakit.sla.baseline import compare_with_baseline

        first = sla_runs.run("1.1")
        second = sla_runs.run("1.1", fresh=True)
        regressed = [f for f in compare_with_baseline(second, first) if f.status == "fail"]
        assert not regressed, "; ".join(f"{f.endpoint}: {f.message}" for f in regressed)

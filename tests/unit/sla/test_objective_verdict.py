"""An objective passes on the confidence bound, never on the raw share of exceedances.

"p95 <= 20 ms" allows 5 % of requests over 20 ms. With k of n over, the checker passes
only if the one-sided 95 % Clopper-Pearson upper bound on the true share is within 5 %,
and only with enough requests for a clean run to be able to pass. The expectations here
come from exact binomial sums in rational arithmetic, written in this file:
U(k, n) <= a  <=>  P(Binomial(n, a) <= k) <= 1 - confidence, the CDF falling in p.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from slakit.sla import stats
from slakit.sla.evaluate import story_result
from slakit.sla.http import Exchange, parse_base_url, prepare_request
from slakit.sla.measure import StoryMeasurement, _Recorder
from slakit.sla.model import ObjectiveResult
from slakit.sla.prepare import make_plan
from slakit.sla.spec import parse_spec
from slakit.status import Status

TARGET_MS = 20.0
ALPHA = Fraction(1, 20)  # 1 - confidence (95 %)


def binomial_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum(
        (math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), start=Fraction(0)
    )


def passes(k: int, n: int, allowed: Fraction) -> bool:
    return binomial_cdf(k, n, allowed) <= ALPHA


def largest_passing_k(n: int, allowed: Fraction) -> int:
    cdf = Fraction(0)
    for i in range(n + 1):
        cdf += math.comb(n, i) * allowed**i * (1 - allowed) ** (n - i)
        if cdf > ALPHA:
            return i - 1
    return n


def first_n_with_clean_pass(allowed: Fraction) -> int:
    n = 1
    while (1 - allowed) ** n > ALPHA:
        n += 1
    return n


def upper_by_bisection(k: int, n: int) -> float:
    """Clopper-Pearson upper bound by bisection on a float binomial sum."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        cdf = math.fsum(math.comb(n, i) * mid**i * (1 - mid) ** (n - i) for i in range(k + 1))
        lo, hi = (mid, hi) if cdf > 0.05 else (lo, mid)
    return (lo + hi) / 2


def endpoint_verdict(n: int, k: int, percentile: float) -> ObjectiveResult:
    """The checker's verdict on one endpoint objective after n requests, k over target."""
    spec = parse_spec(
        {
            "version": 1,
            "defaults": {
                "target_ms": TARGET_MS,
                "compliance": 0.5,  # the story's compliance objective stays out of the way
                "objectives": [{"percentile": percentile}],
                "load": {"rate": 100, "requests": 2000},
            },
            "stories": [{"id": "s", "name": "s", "endpoints": [{"method": "GET", "path": "/x"}]}],
        }
    )
    story = spec.stories[0]
    endpoint = story.endpoints[0]
    target = parse_base_url("http://127.0.0.1:9")
    recorder = _Recorder(make_plan(endpoint, story, prepare_request(target, "GET", "/x")))
    for i in range(n):
        ex = Exchange(recorder.plan.request, intended=0.0)
        ex.status, ex.t_send, ex.t_first = 200, 0.0, 0.001
        ex.t_done = (TARGET_MS * (1.5 if i < k else 0.5)) / 1000.0
        recorder.sent += 1
        recorder.record(ex)
    measurement = StoryMeasurement([recorder.finish(1)], client_cpu=0.1, wall_s=n / 100)
    result = story_result(spec, story, measurement, [endpoint], {}, {endpoint.key: n})
    [objective] = [o for o in result.objectives if o.scope == "endpoint"]
    assert (objective.samples, objective.exceedances) == (n, k)
    return objective


def test_under_the_allowed_share_but_over_the_bound_fails():
    n, k = 200, 8  # 4 % over, 5 % allowed
    assert Fraction(k, n) < Fraction(1, 20)
    assert not passes(k, n, Fraction(1, 20))
    objective = endpoint_verdict(n, k, 95)
    assert objective.status == Status.FAIL, objective
    assert objective.upper_bound > 0.05


def test_too_few_requests_is_invalid_even_with_none_over():
    need = first_n_with_clean_pass(Fraction(1, 20))
    assert need == 59  # 0.95^58 > 0.05 >= 0.95^59
    objective = endpoint_verdict(need - 1, 0, 95)
    assert objective.status == Status.INVALID, objective
    assert objective.min_samples == need


@pytest.mark.parametrize(("allowed", "percentile"), [(Fraction(1, 20), 95), (Fraction(1, 100), 99)])
def test_none_over_with_just_enough_requests_passes(allowed, percentile):
    need = first_n_with_clean_pass(allowed)
    objective = endpoint_verdict(need, 0, percentile)
    assert objective.status == Status.PASS, objective


def test_a_bound_just_under_the_allowance_passes_and_one_more_fails():
    n, allowed = 1000, Fraction(1, 20)
    k = largest_passing_k(n, allowed)
    assert passes(k, n, allowed) and not passes(k + 1, n, allowed)
    assert (k + 1) / n < 0.05  # the raw share would pass both
    assert endpoint_verdict(n, k, 95).status == Status.PASS
    one_more = endpoint_verdict(n, k + 1, 95)
    assert one_more.status == Status.FAIL, one_more
    assert one_more.upper_bound > 0.05


@pytest.mark.parametrize(("k", "n"), [(0, 59), (3, 100), (8, 200), (12, 1000), (40, 400)])
def test_upper_bound_matches_an_independent_bisection(k, n):
    assert stats.upper_bound(k, n, 0.95) == pytest.approx(upper_by_bisection(k, n), abs=1e-9)


@pytest.mark.parametrize("allowed", [Fraction(1, 10), Fraction(1, 20), Fraction(1, 100)])
def test_minimum_samples_is_the_first_n_a_clean_run_can_pass(allowed):
    assert stats.minimum_samples(float(allowed), 0.95) == first_n_with_clean_pass(allowed)

"""--baseline: compare this run with an earlier JSON result, flag significant regressions.

Per endpoint present in both runs and for the baseline's p50 and p95 latency L:
the share of requests slower than L (failures count as slower) must not have grown
significantly (one-sided two-proportion z-test, Bonferroni-corrected alpha 0.05 over
all comparisons) AND the percentile must have grown by more than 10 % and 0.5 ms.
Both conditions: statistically real and large enough to matter.
"""

from __future__ import annotations

from slakit.sla import histogram as hist
from slakit.sla import stats
from slakit.sla.model import EndpointResult, RegressionFinding, Result
from slakit.status import Status

ALPHA = 0.05
REL_TOLERANCE = 0.10
ABS_TOLERANCE_MS = 0.5
# A change smaller than this share of the endpoint's SLA target is noise for the SLA's purpose,
# however significant statistically (a shared machine moves p95 by a few ms from minute to minute).
TARGET_SHARE_TOLERANCE = 0.25
PERCENTILES = (50.0, 95.0)


def _slower_than(e: EndpointResult, value_us: float) -> tuple[int, int]:
    histogram = hist.decode(e.histogram)
    return hist.count_above(histogram, value_us) + (e.sent - e.ok), e.sent


def compare_with_baseline(current: Result, baseline: Result) -> list[RegressionFinding]:
    before = {(s.id, e.key): e for s in baseline.stories for e in s.endpoints if e.histogram}
    pairs = [
        (s.id, e, before[(s.id, e.key)])
        for s in current.stories
        for e in s.endpoints
        if e.histogram and (s.id, e.key) in before and e.sent and before[(s.id, e.key)].sent
    ]
    tests = max(1, len(pairs) * len(PERCENTILES))
    alpha = ALPHA / tests
    findings = []
    for story_id, now, then in pairs:
        then_h, now_h = hist.decode(then.histogram), hist.decode(now.histogram)
        for percentile in PERCENTILES:
            b = hist.percentile_ms(then_h, percentile)
            c = hist.percentile_ms(now_h, percentile)
            if b is None or c is None:
                continue
            k_b, n_b = _slower_than(then, b * 1000)
            k_c, n_c = _slower_than(now, b * 1000)
            p = stats.one_sided_two_proportion_p_value(k_b, n_b, k_c, n_c)
            floor_ms = max(ABS_TOLERANCE_MS, TARGET_SHARE_TOLERANCE * now.target_ms)
            grew = c > b * (1 + REL_TOLERANCE) and c - b > floor_ms
            regressed = p < alpha and grew
            findings.append(
                RegressionFinding(
                    story_id=story_id,
                    endpoint=now.key,
                    metric=f"p{percentile:g}",
                    baseline=b,
                    current=c,
                    p_value=p,
                    status=Status.FAIL if regressed else Status.PASS,
                    message=(
                        f"p{percentile:g} {b:.2f} -> {c:.2f} ms "
                        f"({k_c}/{n_c} slower than {b:.2f} ms vs {k_b}/{n_b}, p={p:.2g})"
                    ),
                )
            )
    return findings

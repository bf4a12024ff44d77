"""Exact binomial statistics for SLA objectives, in plain `math` (no SciPy).

An objective such as "p95 <= 15 ms" is a statement about a proportion: at most 5 % of
requests may exceed 15 ms. With k exceedances in n requests the checker computes a
one-sided upper confidence bound U(k, n) on the true exceedance fraction and the
objective passes only when U <= allowed. Formulas are documented in sla/README.md.
"""

from __future__ import annotations

import math
from statistics import NormalDist

BOUND_METHODS = ("clopper-pearson", "wilson")

_EPS = 1e-15
_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the CDF of the Beta(a, b) distribution at x."""
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be positive")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return regularized_incomplete_beta(n - k, k + 1, 1.0 - p)


def _bisect(func, lo: float, hi: float, iterations: int = 200) -> float:
    """Root of a decreasing function on [lo, hi]."""
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        if func(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2.0


def clopper_pearson_upper(k: int, n: int, confidence: float) -> float:
    """Exact one-sided upper bound on a proportion after k events in n trials."""
    _check(k, n, confidence)
    if k >= n:
        return 1.0
    alpha = 1.0 - confidence
    return _bisect(lambda p: binomial_cdf(k, n, p) - alpha, 0.0, 1.0)


def clopper_pearson_lower(k: int, n: int, confidence: float) -> float:
    """Exact one-sided lower bound on a proportion after k events in n trials."""
    _check(k, n, confidence)
    return 1.0 - clopper_pearson_upper(n - k, n, confidence)


def wilson_upper(k: int, n: int, confidence: float) -> float:
    """Wilson score one-sided upper bound on a proportion."""
    _check(k, n, confidence)
    z = NormalDist().inv_cdf(confidence)
    phat = k / n
    denom = 1.0 + z * z / n
    centre = phat + z * z / (2 * n)
    spread = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / denom)


def wilson_lower(k: int, n: int, confidence: float) -> float:
    _check(k, n, confidence)
    return 1.0 - wilson_upper(n - k, n, confidence)


def upper_bound(k: int, n: int, confidence: float, method: str = "clopper-pearson") -> float:
    if method == "clopper-pearson":
        return clopper_pearson_upper(k, n, confidence)
    if method == "wilson":
        return wilson_upper(k, n, confidence)
    raise ValueError(f"unknown bound method {method!r} (known: {', '.join(BOUND_METHODS)})")


def minimum_samples(allowed: float, confidence: float, method: str = "clopper-pearson") -> int:
    """Smallest n for which a run with zero exceedances can pass `U(0, n) <= allowed`.

    Clopper-Pearson: U(0, n) = 1 - (1 - confidence)^(1/n), so n >= ln(1-c) / ln(1-allowed)
    (299 for p99 at 95 %, 59 for p95). Wilson: U(0, n) = z^2 / (n + z^2).
    """
    if not 0.0 < allowed < 1.0:
        raise ValueError("allowed exceedance fraction must be in (0, 1)")
    if method == "wilson":
        z = NormalDist().inv_cdf(confidence)
        return max(1, math.ceil(z * z * (1.0 - allowed) / allowed - 1e-9))
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(1.0 - allowed) - 1e-9))


def confidence_level(k: int, n: int, allowed: float) -> float:
    """Confidence that the true exceedance fraction is at most `allowed`, given k in n.

    This is 1 - p, with p the exact one-sided binomial test's p-value for H0: the true
    fraction is `allowed` or worse: P(Binomial(n, allowed) > k). It equals the largest
    confidence at which the Clopper-Pearson upper bound still lies within `allowed`.
    """
    if n <= 0:
        return 0.0
    return 1.0 - binomial_cdf(k, n, allowed)


def one_sided_two_proportion_p_value(k_before: int, n_before: int, k_now: int, n_now: int) -> float:
    """p-value of H0: the proportion now is not larger than before (pooled z-test)."""
    if n_before <= 0 or n_now <= 0:
        return 1.0
    p_pool = (k_before + k_now) / (n_before + n_now)
    var = p_pool * (1 - p_pool) * (1 / n_before + 1 / n_now)
    diff = k_now / n_now - k_before / n_before
    if var <= 0:
        return 0.0 if diff > 0 else 1.0
    return 1.0 - NormalDist().cdf(diff / math.sqrt(var))


def _check(k: int, n: int, confidence: float) -> None:
    if n <= 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n and n > 0 (k={k}, n={n})")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")

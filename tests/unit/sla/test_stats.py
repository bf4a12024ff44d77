"""The statistics against values known in closed form or from reference tables."""

import math

import pytest

from slakit.sla import stats


def test_zero_exceedances_in_299_gives_an_upper_bound_just_under_one_percent():
    upper = stats.clopper_pearson_upper(0, 299, 0.95)
    assert upper == pytest.approx(1 - 0.05 ** (1 / 299), rel=1e-9)
    assert 0.0099 < upper < 0.01


def test_298_samples_are_one_too_few_for_p99():
    assert stats.clopper_pearson_upper(0, 298, 0.95) > 0.01
    assert stats.minimum_samples(0.01, 0.95) == 299
    assert stats.minimum_samples(0.05, 0.95) == 59


def test_clopper_pearson_matches_reference_values():
    # R: binom.test(5, 100, alternative = "less")$conf.int[2] = 0.1022534
    assert stats.clopper_pearson_upper(5, 100, 0.95) == pytest.approx(0.1022534, abs=1e-6)
    # R: binom.test(95, 100, alternative = "greater")$conf.int[1] = 0.8977466
    assert stats.clopper_pearson_lower(95, 100, 0.95) == pytest.approx(0.8977466, abs=1e-6)
    assert stats.clopper_pearson_upper(10, 10, 0.95) == 1.0
    assert stats.clopper_pearson_lower(0, 10, 0.95) == 0.0


def test_binomial_cdf_matches_direct_sums():
    for n, p in ((10, 0.5), (40, 0.03), (300, 0.05)):
        for k in (0, 1, 3, 9):
            direct = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))
            assert stats.binomial_cdf(k, n, p) == pytest.approx(direct, rel=1e-9, abs=1e-15)


def test_incomplete_beta_special_cases():
    assert stats.regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)
    assert stats.regularized_incomplete_beta(2, 3, 0.4) == pytest.approx(
        0.5248
    )  # 1-(.6^4+4*.4*.6^3)
    assert stats.regularized_incomplete_beta(2, 2, 0.5) == pytest.approx(0.5)


def test_wilson_bound():
    z = 1.6448536269514722
    assert stats.wilson_upper(0, 299, 0.95) == pytest.approx(z * z / (299 + z * z))
    assert stats.minimum_samples(0.01, 0.95, "wilson") == 268


def test_confidence_level_is_the_exact_test_complement():
    # P(Binomial(299, 0.01) > 0) = 1 - 0.99^299
    assert stats.confidence_level(0, 299, 0.01) == pytest.approx(1 - 0.99**299)
    # the largest confidence at which the upper bound still fits the allowance
    level = stats.confidence_level(3, 400, 0.02)
    assert stats.clopper_pearson_upper(3, 400, level - 1e-6) <= 0.02
    assert stats.clopper_pearson_upper(3, 400, min(level + 1e-3, 0.999999)) > 0.02


def test_two_proportion_test_flags_only_increases():
    assert stats.one_sided_two_proportion_p_value(50, 1000, 120, 1000) < 1e-6
    assert stats.one_sided_two_proportion_p_value(120, 1000, 50, 1000) > 0.99


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        stats.clopper_pearson_upper(5, 3, 0.95)
    with pytest.raises(ValueError):
        stats.upper_bound(0, 10, 0.95, "bayes")

"""Bootstrap CIs, the exact McNemar test and Wilcoxon signed-rank against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.evaluation.stats import bootstrap_ci, mcnemar_exact, wilcoxon_signed_rank


@pytest.mark.parametrize(
    ("only_a", "only_b", "both", "neither", "expected"),
    [
        # 7 discordant pairs, 1 vs 6: P(X <= 1 | Bin(7, 1/2)) = (1 + 7) / 128, two-sided 16/128.
        (1, 6, 10, 3, 0.125),
        (6, 1, 0, 0, 0.125),
        # 0 vs 5: 2 * (1/32).
        (0, 5, 2, 2, 0.0625),
        # 3 vs 3: the two tails overlap, capped at 1.
        (3, 3, 1, 1, 1.0),
        # 2 vs 8: 2 * (1 + 10 + 45) / 1024.
        (2, 8, 0, 0, 112 / 1024),
        # No discordant pairs: no evidence of a difference.
        (0, 0, 4, 4, 1.0),
    ],
)
def test_mcnemar_exact_hand_computed(
    only_a: int, only_b: int, both: int, neither: int, expected: float
) -> None:
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    result = mcnemar_exact(a, b)
    assert (result.n, result.only_a, result.only_b) == (len(a), only_a, only_b)
    assert result.p_value == pytest.approx(expected, abs=1e-12)


def test_mcnemar_large_counts_stay_finite() -> None:
    a = [True] * 600 + [False] * 400
    b = [False] * 600 + [True] * 400
    assert 0.0 < mcnemar_exact(a, b).p_value < 1e-9


def test_mcnemar_rejects_unpaired_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        mcnemar_exact([True, False], [True])


def test_bootstrap_two_points_covers_full_range() -> None:
    # Resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 2.5 % and 97.5 %
    # quantiles are exactly 0 and 1.
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)


def test_bootstrap_constant_values_give_a_point() -> None:
    assert bootstrap_ci([0.7] * 50) == pytest.approx((0.7, 0.7))
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)


def test_bootstrap_matches_normal_approximation() -> None:
    # 1385 items (the paper's test split) at 63.89 % accuracy: the percentile bootstrap of a proportion
    # is close to the Wald interval p ± 1.96 sqrt(p (1 - p) / n) = ± 2.53 points.
    n, k = 1385, 885
    values = [1.0] * k + [0.0] * (n - k)
    p = k / n
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    low, high = bootstrap_ci(values)
    assert low == pytest.approx(p - half, abs=0.002)
    assert high == pytest.approx(p + half, abs=0.002)


def test_bootstrap_is_seeded() -> None:
    values = [float(i % 7) * 1.37 for i in range(40)]
    assert bootstrap_ci(values) == bootstrap_ci(list(values))
    assert bootstrap_ci(values, seed=1) != bootstrap_ci(values, seed=2)


def test_bootstrap_of_token_counts_brackets_the_mean() -> None:
    values = [80, 95, 120, 60, 210, 75, 99, 101]
    low, high = bootstrap_ci(values)
    assert low < sum(values) / len(values) < high
    assert min(values) <= low and high <= max(values)


def test_bootstrap_empty_is_nan() -> None:
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)


def test_bootstrap_is_scipys_percentile_interval() -> None:
    from scipy.stats import bootstrap

    values = [float(i % 5 == 0) for i in range(97)]
    expected = bootstrap(
        (np.asarray(values),), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert bootstrap_ci(values) == (expected.low, expected.high)


def test_statistics_are_byte_stable() -> None:
    values = [float(i % 7) * 1.37 for i in range(300)]
    first = repr((bootstrap_ci(values), wilcoxon_signed_rank(values, values[::-1])))
    assert all(
        repr((bootstrap_ci(values), wilcoxon_signed_rank(values, values[::-1]))) == first for _ in range(3)
    )


@pytest.mark.parametrize(
    ("diff", "statistic", "p_value"),
    [
        # All 5 differences positive: exact P(W- <= 0) = 1/32, two-sided 2/32.
        ([1, 2, 3, 4, 5], 0.0, 0.0625),
        # Rank 2 negative: W- = 2; subsets of {1..5} summing to <= 2: {}, {1}, {2}: 2 * 3/32.
        ([1, -2, 3, 4, 5], 2.0, 0.1875),
    ],
)
def test_wilcoxon_hand_computed(diff: list[int], statistic: float, p_value: float) -> None:
    b = [0.5] * len(diff) + [1.0, 1.0]  # two tied pairs are dropped (zero_method "wilcox")
    a = [0.5 + d for d in diff] + [1.0, 1.0]
    result = wilcoxon_signed_rank(a, b)
    assert (result.n, result.nonzero) == (7, 5)
    assert result.statistic == statistic
    assert result.p_value == pytest.approx(p_value, abs=1e-12)
    assert result.mean_diff == pytest.approx(sum(diff) / 7)


def test_wilcoxon_all_ties_is_no_evidence() -> None:
    result = wilcoxon_signed_rank([1.0, 2.0], [1.0, 2.0])
    assert (result.nonzero, result.p_value) == (0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        wilcoxon_signed_rank([1.0], [1.0, 2.0])

"""Bootstrap CIs, the exact McNemar test and Wilcoxon signed-rank against values worked out by hand; the
image-cluster bootstrap against an enumeration of every cluster draw and a plain reference loop."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from tools.evaluation.stats import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    cluster_bootstrap_replicates,
    mcnemar_exact,
    paired_cluster_bootstrap,
    wilcoxon_signed_rank,
)

# Three images with 1, 2 and 3 questions; A and B answer them as below.
CLUSTERS = ["x", "y", "y", "z", "z", "z"]
A = [True, True, False, True, True, False]
B = [False, True, True, False, True, False]


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


def _exact(values: list[list[float]]) -> dict[tuple[float, ...], float]:
    """Every ordered draw of 3 of the 3 clusters (27, equally likely): the distribution of the means."""
    members = {c: [i for i, k in enumerate(CLUSTERS) if k == c] for c in dict.fromkeys(CLUSTERS)}
    law: dict[tuple[float, ...], float] = {}
    for draw in itertools.product(members, repeat=len(members)):
        items = [i for c in draw for i in members[c]]
        key = tuple(round(sum(v[i] for i in items) / len(items), 12) for v in values)
        law[key] = law.get(key, 0.0) + 1 / 27
    return law


def test_cluster_bootstrap_matches_the_enumerated_distribution() -> None:
    values = [float(x) for x in A]
    exact = _exact([values])
    replicates = cluster_bootstrap_replicates([values], CLUSTERS, n_resamples=40_000, seed=3)[:, 0]
    seen = {(round(float(v), 12),) for v in replicates}
    assert seen <= set(exact)  # only means a whole-cluster draw can give
    for (mean,), probability in exact.items():  # 40,000 draws: binomial sd <= 0.0025
        assert np.mean(np.isclose(replicates, mean)) == pytest.approx(probability, abs=0.012)


def test_paired_cluster_bootstrap_matches_the_enumerated_distribution() -> None:
    a, b = [float(x) for x in A], [float(x) for x in B]
    exact = _exact([a, b])
    below = sum(p for (x, y), p in exact.items() if x - y <= 1e-12)
    above = sum(p for (x, y), p in exact.items() if x - y >= -1e-12)
    result = paired_cluster_bootstrap(A, B, CLUSTERS, n_resamples=40_000, seed=5)
    assert result.diff == pytest.approx((4 - 3) / 6)
    assert (result.n, result.clusters) == (6, 3)
    assert result.p_value == pytest.approx(min(1.0, 2 * min(below, above)), abs=0.025)
    diffs = sorted(x - y for (x, y), p in exact.items() for _ in range(round(p * 27)))
    assert diffs[0] <= result.low <= result.high <= diffs[-1]


def _reference_loop(values: list[list[float]], clusters: list[str], n: int, seed: int) -> np.ndarray:
    """The cluster bootstrap written out plainly: draw C image indices, keep all their questions."""
    order = list(dict.fromkeys(clusters))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        drawn = rng.integers(0, len(order), size=len(order))
        items = [i for c in drawn for i, k in enumerate(clusters) if k == order[c]]
        out.append([sum(v[i] for i in items) / len(items) for v in values])
    return np.array(out)


def test_cluster_bootstrap_is_the_reference_loop_with_the_same_seed() -> None:
    rng = np.random.default_rng(0)
    clusters = [f"img{i}" for i in rng.integers(0, 40, size=90)]
    a = [float(x) for x in rng.random(90) < 0.6]
    b = [float(x) for x in rng.random(90) < 0.5]
    loop = _reference_loop([a, b], clusters, 500, seed=11)
    replicates = cluster_bootstrap_replicates([a, b], clusters, n_resamples=500, seed=11)
    np.testing.assert_allclose(replicates, loop, rtol=0, atol=1e-12)
    low, high = cluster_bootstrap_ci(a, clusters, n_resamples=500, seed=11)
    assert (low, high) == pytest.approx(tuple(np.percentile(loop[:, 0], [2.5, 97.5])))
    a_ok, b_ok = [x > 0 for x in a], [x > 0 for x in b]
    paired = paired_cluster_bootstrap(a_ok, b_ok, clusters, n_resamples=500, seed=11)
    diffs = loop[:, 0] - loop[:, 1]
    assert (paired.low, paired.high) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert paired.p_value == pytest.approx(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))


def test_cluster_bootstrap_edge_cases() -> None:
    assert all(math.isnan(v) for v in cluster_bootstrap_ci([], []))
    same = paired_cluster_bootstrap(A, A, CLUSTERS, n_resamples=200)
    assert (same.diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        cluster_bootstrap_ci([1.0], ["x", "y"])
    # One question per image: the cluster interval is an ordinary item bootstrap of the same width.
    values = [float(i % 3 == 0) for i in range(300)]
    low, high = cluster_bootstrap_ci(values, [str(i) for i in range(300)])
    item_low, item_high = bootstrap_ci(values)
    assert high - low == pytest.approx(item_high - item_low, abs=0.01)

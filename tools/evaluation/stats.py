"""Statistics for evaluation, from ``scipy.stats``: seeded bootstrap CIs, exact McNemar, Wilcoxon signed-rank,
and image-cluster bootstrap CIs and paired tests.

Every result is a pure function of its input (the bootstrap draws from ``numpy.random.default_rng(seed)``),
so a report written twice from the same files is byte-identical.

Image-cluster bootstrap (the authors' 2026 method, ``github:Freddie1946/myr1``
``protocol/final_core_pathmmu_statistics_20260814/cluster_bootstrap_results.json``: "nonparametric
image-cluster bootstrap with paired cluster draws", 10,000 replicates, 95 % intervals): questions about one
image are not independent (test999 has 999 questions on 707 images), so each replicate draws as many images
as there are, with replacement, and keeps every question of each drawn image; accuracy is correct / questions
drawn. Intervals are percentiles of the replicates. A paired test draws the same images for both models and
takes the difference of their accuracies; its two-sided p is ``min(1, 2 · min(P(Δ* ≤ 0), P(Δ* ≥ 0)))`` over
the replicates Δ*. Their files do not spell out the CI type or the p formula; their intervals are asymmetric
around the estimate (percentile-like) and their p of 0.0000 rules out a +1-corrected p, so this is the
reading that fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
_BOOTSTRAP_ELEMENTS = 2_000_000  # resampled values held at once (bounded memory for large n)


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (``scipy.stats.bootstrap``), seeded.

    Empty input gives ``(nan, nan)``; a single value gives the point ``(v, v)``.
    """
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=n_resamples,
        batch=max(1, _BOOTSTRAP_ELEMENTS // data.size),
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def _cluster_totals(values: Sequence[float], clusters: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster (in first-seen order): the sum of ``values`` and the number of items."""
    if len(values) != len(clusters):
        raise ValueError(f"values and clusters differ in length: {len(values)} vs {len(clusters)}")
    index: dict[str, int] = {}
    codes = np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    sums = np.bincount(codes, weights=np.asarray(values, dtype=np.float64), minlength=len(index))
    return sums, np.bincount(codes, minlength=len(index)).astype(np.float64)


def cluster_bootstrap_replicates(
    values: Sequence[Sequence[float]],
    clusters: Sequence[str],
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """Per replicate (rows) and series (columns): the mean of each series of ``values`` over the items of
    ``len(set(clusters))`` clusters drawn with replacement; every series sees the same draws (paired).

    Replicate r draws ``rng.integers(0, C, size=C)`` (row r of one ``(n_resamples, C)`` array, generated in
    row batches to bound memory), clusters numbered in first-seen order.
    """
    totals = [_cluster_totals(series, clusters) for series in values]
    counts = totals[0][1] if totals else np.zeros(0)
    n_clusters = counts.size
    if n_clusters == 0:
        return np.full((n_resamples, len(values)), math.nan)
    sums = np.stack([s for s, _ in totals], axis=1)  # (clusters, series)
    rng = np.random.default_rng(seed)
    batch = max(1, _BOOTSTRAP_ELEMENTS // n_clusters)
    out = np.empty((n_resamples, len(values)))
    for start in range(0, n_resamples, batch):
        rows = min(batch, n_resamples - start)
        drawn = rng.integers(0, n_clusters, size=(rows, n_clusters))
        flat = (drawn + n_clusters * np.arange(rows)[:, None]).ravel()  # times each cluster was drawn
        weights = np.bincount(flat, minlength=rows * n_clusters).reshape(rows, n_clusters).astype(np.float64)
        out[start : start + rows] = (weights @ sums) / (weights @ counts)[:, None]
    return out


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def cluster_bootstrap_ci(
    values: Sequence[float],
    clusters: Sequence[str],
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile image-cluster bootstrap interval of the mean of ``values`` (``clusters[i]``: item i's
    image); empty input gives ``(nan, nan)``."""
    if not values:
        return math.nan, math.nan
    replicates = cluster_bootstrap_replicates([values], clusters, n_resamples, seed)[:, 0]
    return _percentiles(replicates, confidence)


@dataclass(frozen=True)
class PairedClusterResult:
    """Accuracy of A minus B on the same items, its percentile cluster-bootstrap interval and two-sided p."""

    n: int
    clusters: int
    diff: float
    low: float
    high: float
    p_value: float


def paired_cluster_bootstrap(
    a_correct: Sequence[bool],
    b_correct: Sequence[bool],
    clusters: Sequence[str],
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PairedClusterResult:
    """Paired image-cluster bootstrap of accuracy(A) − accuracy(B): both models on the same drawn images."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    if not a_correct:
        return PairedClusterResult(0, 0, math.nan, math.nan, math.nan, math.nan)
    a = [float(x) for x in a_correct]
    b = [float(x) for x in b_correct]
    replicates = cluster_bootstrap_replicates([a, b], clusters, n_resamples, seed)
    diffs = replicates[:, 0] - replicates[:, 1]
    low, high = _percentiles(diffs, confidence)
    diff = (sum(a) - sum(b)) / len(a)
    p_value = min(1.0, 2.0 * min(np.mean(diffs <= 0.0), np.mean(diffs >= 0.0)))  # the module doc's p
    return PairedClusterResult(len(a), len(set(clusters)), diff, low, high, float(p_value))


@dataclass(frozen=True)
class McNemarResult:
    """``only_a``: items A got right and B wrong; ``only_b``: the reverse; ``p_value``: exact two-sided."""

    n: int
    only_a: int
    only_b: int
    p_value: float


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemarResult:
    """Exact McNemar test on paired outcomes: ``scipy.stats.binomtest`` of the discordant pairs at p = 0.5."""
    from scipy.stats import binomtest

    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    only_a = sum(bool(a and not b) for a, b in zip(a_correct, b_correct, strict=True))
    only_b = sum(bool(b and not a) for a, b in zip(a_correct, b_correct, strict=True))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    return McNemarResult(n=len(a_correct), only_a=only_a, only_b=only_b, p_value=p_value)


@dataclass(frozen=True)
class WilcoxonResult:
    """Paired scores of A and B: ``n`` pairs, ``nonzero`` differing pairs, mean of A − B, two-sided p."""

    n: int
    nonzero: int
    mean_diff: float
    statistic: float
    p_value: float


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> WilcoxonResult:
    """``scipy.stats.wilcoxon`` on paired scores (zero differences dropped); p = 1 when all pairs tie."""
    from scipy.stats import wilcoxon

    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} vs {len(b)}")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    nonzero = int(np.count_nonzero(diff))
    mean_diff = float(diff.mean()) if diff.size else math.nan
    if nonzero == 0:
        return WilcoxonResult(len(a), 0, mean_diff, math.nan, 1.0)
    result = wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    return WilcoxonResult(len(a), nonzero, mean_diff, float(result.statistic), float(result.pvalue))

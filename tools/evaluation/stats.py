"""Statistics for evaluation, from ``scipy.stats``: seeded bootstrap CIs, exact McNemar, Wilcoxon signed-rank.

Every result is a pure function of its input (the bootstrap draws from ``numpy.random.default_rng(seed)``),
so a report written twice from the same files is byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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


@dataclass(frozen=True)
class McNemarResult:
    """``only_a``: items A got right and B wrong; ``only_b``: the reverse; ``p_value``: exact two-sided."""

    n: int
    only_a: int
    only_b: int
    p_value: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemarResult:
    """Exact McNemar test on paired outcomes: ``scipy.stats.binomtest`` of the discordant pairs at p = 0.5."""
    from scipy.stats import binomtest

    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    only_a = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(a_correct, b_correct, strict=True) if b and not a)
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

"""pass@k: the chance that at least one of k sampled answers is correct, from n ≥ k samples per item.

``pathvlm eval --samples N [--temperature T]`` (default T = 1, the authors' GRPO rollout temperature) draws
N answers per item, scores each like the greedy evaluation, and its summary carries ``pass_at_k`` for
k in ``KS`` up to N: the mean over items of the unbiased estimator of Chen et al. (2021, "Evaluating Large
Language Models Trained on Code", eq. 1), 1 − C(n−c, k) / C(n, k) with c correct of n, in their
numerically stable product form, with a seeded 95 % bootstrap CI over items. No installed dependency
ships this estimator (checked: transformers, TRL, EasyR1, scipy), hence the three lines below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from tools.evaluation.stats import bootstrap_ci

KS = (1, 2, 4, 8)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``c`` correct among ``n`` samples; ``k > n`` is an error."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per item, got n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def estimate(correct_counts: Sequence[int], n: int, ks: Iterable[int] = KS) -> dict[str, dict[str, Any]]:
    """``{"k": {"value", "ci"}}`` over items for every k in ``ks`` up to ``n`` (larger k are left out)."""
    result = {}
    for k in ks:
        if k > n:
            continue
        per_item = [pass_at_k(n, c, k) for c in correct_counts]
        result[str(k)] = {"value": sum(per_item) / len(per_item), "ci": list(bootstrap_ci(per_item))}
    return result

"""The one paired comparison of two models on the items both answered: exact McNemar and the paired
image-cluster bootstrap (``tools.evaluation.stats``) of their per-item strict correctness."""

from __future__ import annotations

import math
from typing import Any

from tools.evaluation.stats import mcnemar_exact, paired_cluster_bootstrap
from tools.report.load import Evaluation

NO_IMAGES = "n/a (records lack images)"


def paired(a: Evaluation, b: Evaluation, cluster: bool = True) -> dict[str, Any]:
    """A vs B on their shared item ids: ``n``, ``accuracy_a``/``_b`` (%), ``only_a``/``only_b`` (items only
    A / only B got right), McNemar ``p_value``; with ``cluster``, A − B in points with its image-cluster
    95 % CI and p (``diff``, ``cluster_low``, ``cluster_high``, ``cluster_p``; ``NO_IMAGES``: no images)."""
    correct_a, correct_b = a.correct(), b.correct()
    shared = sorted(set(correct_a) & set(correct_b))
    in_a, in_b = [correct_a[i] for i in shared], [correct_b[i] for i in shared]
    test = mcnemar_exact(in_a, in_b)
    row: dict[str, Any] = {
        "n": test.n,
        "accuracy_a": sum(in_a) / test.n * 100 if shared else math.nan,  # type: ignore[arg-type]
        "accuracy_b": sum(in_b) / test.n * 100 if shared else math.nan,  # type: ignore[arg-type]
        "only_a": test.only_a,
        "only_b": test.only_b,
        "p_value": test.p_value,
    }
    if not cluster:
        return row
    images = a.images or b.images
    if images is None or not shared:
        return row | {"diff": None} | dict.fromkeys(("cluster_low", "cluster_high", "cluster_p"), NO_IMAGES)
    boot = paired_cluster_bootstrap(in_a, in_b, [images[i] for i in shared])
    return row | {
        "diff": boot.diff * 100,
        "cluster_low": boot.low * 100,
        "cluster_high": boot.high * 100,
        "cluster_p": boot.p_value,
    }

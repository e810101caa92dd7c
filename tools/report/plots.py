"""The report's PNGs: accuracy and output tokens per model beside the paper's, and GRPO reward curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot():  # noqa: ANN202
    """matplotlib's pyplot on the file backend, imported on first use (start-up time; after wandb)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metric(rows: Sequence[dict[str, Any]], path: Path, xlabel: str, title: str) -> Path:
    """Ours as points with 95 % CI bars, the paper's numbers as markers, one line per model."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    for y, row in enumerate(rows):
        if row["ours"] is not None:
            error = [[row["ours"] - row["ci_low"]], [row["ci_high"] - row["ours"]]]
            axes.errorbar(row["ours"], y, xerr=error, fmt="o", color="tab:blue", capsize=3)
        if row["paper"] is not None:
            axes.plot(float(row["paper"]), y, marker="x", color="tab:red", markersize=8, linestyle="none")
    axes.plot([], [], "o", color="tab:blue", label="ours (95% CI)")
    axes.plot([], [], "x", color="tab:red", label="paper")
    axes.set_yticks(range(len(rows)), [row["model"] for row in rows])
    axes.invert_yaxis()
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    figure.legend(loc="lower center", ncol=2, frameon=False)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_curves(curves: dict[str, dict[str, list[float]]], titles: dict[str, str], path: Path) -> Path | None:
    """Each stage's reward curves (``curves``: stage → reward name → per-step values) side by side, titled
    ``titles[stage]``; None when none logged any."""
    if not any(curves.values()):
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(10, 3.5), sharey=True, squeeze=False)
    for axis, (stage, by_reward) in zip(axes[0], curves.items(), strict=True):
        for name, values in by_reward.items():
            axis.plot(range(1, len(values) + 1), values, label=name)
        axis.set_title(titles[stage], fontsize=9)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("mean reward of the step's samples")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path

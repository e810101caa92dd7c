"""The report's "learning" section: what each stage did, per size with GRPO training logs.

- ``learning_<size>.png``: the per-step reward curves of beta and r1 (``reward/format``, ``reward/accuracy``,
  ``reward/process`` from ``<runs>/<size>/<stage>/metrics.jsonl``, the mean over the step's sampled
  completions), one panel per stage;
- a table per size: strict test accuracy by stage (base, alpha, beta, r1) with its 95 % bootstrap CI, the
  judged process score where ``judge-eval`` ran, the first and last quarter of each reward during the stage,
  and the exact McNemar test against the stage before it (alpha vs base, beta vs alpha, r1 vs beta).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.evaluation.markdown import markdown_table
from tools.evaluation.paper import model_label

IN_DOMAIN = "test"
CHAIN = ("base", "alpha", "beta", "r1")
GRPO_STAGES = ("beta", "r1")
REWARDS = ("format", "accuracy", "process")


def reward_curves(stage_dir: Path) -> dict[str, list[float]]:
    """``reward/<name>`` per logged training step of a GRPO stage (empty without metrics.jsonl)."""
    path = stage_dir / "metrics.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        name: [float(row[f"reward/{name}"]) for row in rows if f"reward/{name}" in row]
        for name in REWARDS
        if any(f"reward/{name}" in row for row in rows)
    }


def quarters(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean of the first and of the last quarter of the values (None for fewer than 2)."""
    if len(values) < 2:
        return None
    k = max(1, len(values) // 4)
    return sum(values[:k]) / k, sum(values[-k:]) / k


def build(results: dict, runs: Path) -> dict[str, list[dict[str, Any]]]:
    """Per size that has a GRPO training log: one row per stage of the chain that was evaluated."""
    from tools.evaluation.report_reasoning import read_judged
    from tools.evaluation.stats import mcnemar_exact

    sizes = sorted(
        {size for size, stage, _ in results if stage in GRPO_STAGES and (runs / size / stage).is_dir()}
    )
    tables: dict[str, list[dict[str, Any]]] = {}
    for size in sizes:
        rows, previous = [], None
        for stage in CHAIN:
            result = results.get((size, stage, IN_DOMAIN))
            if result is None:
                continue
            summary = result.summary
            row: dict[str, Any] = {
                "stage": stage,
                "model": model_label(size, stage),
                "n": summary["n"],
                "accuracy": summary["accuracy"],
                "accuracy_ci": tuple(summary["accuracy_ci"]),
            }
            judged = read_judged(result.items_path.parent, summary["ids_sha256"])
            if judged:
                row["process"] = sum(judged.values()) / len(judged)
            for name, values in reward_curves(runs / size / stage).items():
                row[f"reward_{name}"] = quarters(values)
            if previous is not None:
                a, b = _correct(result.items_path), _correct(previous[1].items_path)
                shared = sorted(set(a) & set(b))
                test = mcnemar_exact([a[i] for i in shared], [b[i] for i in shared])
                row["vs"] = previous[0]
                row["mcnemar"] = {
                    "n": test.n,
                    "only_this": test.only_a,
                    "only_previous": test.only_b,
                    "p": test.p_value,
                }
            rows.append(row)
            previous = (stage, result)
        tables[size] = rows
    return tables


def _correct(path: Path) -> dict[str, bool]:
    from tools.evaluation.eval_files import read_records

    return {id_: record["correct"] for id_, record in read_records(path).items()}


def plot_curves(runs: Path, size: str, path: Path) -> Path | None:
    """The reward curves of beta and r1 side by side; None when neither logged any."""
    curves = {stage: reward_curves(runs / size / stage) for stage in GRPO_STAGES}
    if not any(curves.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(GRPO_STAGES), figsize=(10, 3.5), sharey=True)
    for axis, stage in zip(axes, GRPO_STAGES, strict=True):
        for name, values in curves[stage].items():
            axis.plot(range(1, len(values) + 1), values, label=name)
        axis.set_title(model_label(size, stage), fontsize=9)
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0].set_ylabel("mean reward of the step's samples")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _quarters(value: tuple[float, float] | None) -> str:
    return "" if value is None else f"{value[0]:.3f} → {value[1]:.3f}"


def markdown(size: str, rows: Sequence[dict[str, Any]], plot: Path | None) -> list[str]:
    header = [
        "Stage",
        "n",
        "Accuracy (95% CI)",
        "Process (judged)",
        *(f"reward/{r} (first → last ¼)" for r in REWARDS),
        "vs previous stage (exact McNemar)",
    ]
    body: list[list[str]] = []
    for row in rows:
        low, high = row["accuracy_ci"]
        test = row.get("mcnemar")
        versus = (
            f"vs {row['vs']}: +{test['only_this']} / −{test['only_previous']} items, p = {test['p']:.3g}"
            if test
            else ""
        )
        process = f"{row['process']:.3f}" if "process" in row else ""
        cells = [row["model"], str(row["n"]), f"{row['accuracy']:.3f} ({low:.3f}–{high:.3f})", process]
        cells += [_quarters(row.get(f"reward_{name}")) for name in REWARDS] + [versus]
        body.append(cells)
    out = [f"## Learning: what each stage did ({size})", markdown_table(header, body)]
    if plot is not None:
        out.append(f"![{plot.stem}]({plot.name})")
    return out


def sections(results: dict, runs: Path | None, out: Path) -> list[str]:
    """The markdown sections (and their PNGs, written into ``out``)."""
    if runs is None:
        return []
    parts: list[str] = []
    for size, rows in build(results, runs).items():
        parts += markdown(size, rows, plot_curves(runs, size, out / f"learning_{size}.png"))
    return parts

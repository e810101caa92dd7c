"""The report's "learning" section: what each stage of the chain did, per size with GRPO training logs.

A table per size: strict test accuracy of each stage of the chain (``tools.report.stages``: base, α, β, R1)
with its 95 % bootstrap CI, the judged process score where ``judge-eval`` ran, the first and last quarter of
each reward during the stage (``reward/<name>`` of its ``metrics.jsonl``: the mean over the step's sampled
completions), and the exact McNemar test against the stage before it. ``learning_<size>.png``
(``tools.report.plots``) draws the GRPO stages' reward curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.recipe.run import IN_DOMAIN
from tools.report.load import REWARDS, Results
from tools.report.markdown import markdown_table
from tools.report.paired import paired
from tools.report.paper import model_label
from tools.report.stages import chain, grpo_chain


def quarters(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean of the first and of the last quarter of the values (None for fewer than 2)."""
    if len(values) < 2:
        return None
    k = max(1, len(values) // 4)
    return sum(values[:k]) / k, sum(values[-k:]) / k


def build(results: Results) -> dict[str, list[dict[str, Any]]]:
    """Per size with an evaluated GRPO stage of the chain: one row per evaluated stage of the chain."""
    sizes = sorted({size for size, stage, _ in results if stage in grpo_chain()})
    tables: dict[str, list[dict[str, Any]]] = {}
    for size in sizes:
        rows, previous = [], None
        for stage in chain():
            result = results.get((size, stage, IN_DOMAIN))
            if result is None:
                continue
            summary = result.summary
            row: dict[str, Any] = {"stage": stage, "model": model_label(size, stage), "n": summary["n"]}
            row |= {"accuracy": summary["accuracy"], "accuracy_ci": tuple(summary["accuracy_ci"])}
            if result.judged:
                row["process"] = sum(result.judged.values()) / len(result.judged)
            for name, values in results.curves.get((size, stage), {}).items():
                row[f"reward_{name}"] = quarters(values)
            if previous is not None:
                test = paired(result, previous[1], cluster=False)
                row["vs"] = previous[0]
                row["mcnemar"] = {
                    "n": test["n"],
                    "only_this": test["only_a"],
                    "only_previous": test["only_b"],
                    "p": test["p_value"],
                }
            rows.append(row)
            previous = (stage, result)
        tables[size] = rows
    return tables


def _quarters(value: tuple[float, float] | None) -> str:
    return "" if value is None else f"{value[0]:.3f} → {value[1]:.3f}"


def markdown(size: str, rows: Sequence[dict[str, Any]], plot: str | None) -> list[str]:
    """The section of one size; ``plot``: the name of its curves' PNG beside report.md."""
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
        out.append(f"![{plot.removesuffix('.png')}]({plot})")
    return out

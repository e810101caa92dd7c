"""The report's optional pass@k table: every ``pathvlm eval --samples N`` folder under the runs root.

Per model and dataset: items, samples per item, temperature, and pass@k for k in ``passk.KS`` with 95 %
bootstrap CIs (``k > n`` when the folder has fewer samples than k), recomputed from each record's
``sample_correct`` (``tools.report.load`` checks them against ``summary.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.evaluation.passk import KS, estimate
from tools.report.load import Results
from tools.report.markdown import markdown_table
from tools.report.paper import model_label

TOO_FEW = "k > n"
COLUMNS = (
    "model",
    "size",
    "stage",
    "dataset",
    "n",
    "samples",
    "temperature",
    *(f"pass@{k}" for k in KS),
    *(f"pass@{k}_ci_{side}" for k in KS for side in ("low", "high")),
)


def build(results: Results) -> list[dict[str, Any]]:
    """One row per sampled evaluation folder."""
    rows = []
    for sampled in results.sampled:
        summary = sampled.summary
        row: dict[str, Any] = {
            "model": model_label(sampled.size, sampled.stage),
            "size": sampled.size,
            "stage": sampled.stage,
            "dataset": Path(summary["data"]).stem,
            "n": summary["n"],
            "samples": summary["samples"],
            "temperature": summary["temperature"],
        }
        for k, value in estimate(sampled.counts, summary["samples"]).items():
            row[f"pass@{k}"] = value["value"] * 100
            row[f"pass@{k}_ci_low"], row[f"pass@{k}_ci_high"] = (v * 100 for v in value["ci"])
        rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The section, or nothing when no sampled evaluation exists (the table is optional)."""
    if not rows:
        return []
    header = ["Model", "Dataset", "n", "samples", "T", *(f"pass@{k} % (95% CI)" for k in KS)]
    body: list[list[str]] = []
    for row in rows:
        cells = [row["model"], row["dataset"], str(row["n"]), str(row["samples"]), f"{row['temperature']:g}"]
        for k in KS:
            if f"pass@{k}" not in row:
                cells.append(TOO_FEW)
                continue
            low, high = row[f"pass@{k}_ci_low"], row[f"pass@{k}_ci_high"]
            cells.append(f"{row[f'pass@{k}']:.2f} ({low:.2f}–{high:.2f})")
        body.append(cells)
    return [
        "## pass@k (sampled answers)",
        "Unbiased estimator of Chen et al. (2021), 1 − C(n−c, k)/C(n, k) per item with c correct of n "
        f"samples, averaged over items; `{TOO_FEW}`: fewer samples than k. Made by "
        "`pathvlm eval --samples 8 --temperature 1`.",
        markdown_table(header, body),
    ]

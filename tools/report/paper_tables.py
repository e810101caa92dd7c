"""The paper's Tables 1-3 and its paired comparisons, ours beside its numbers (runs of the paper-style split).

Each row is our number with its 95 % bootstrap CI over items and over images, the paper's number as printed
and the difference; paper rows we have not run say ``missing``; runs the paper lacks are appended (other
OOD datasets join Table 3). The comparisons are each stage's ``compare_with`` pairs (``tools.report.stages``)
per size and dataset: in-domain pairs always (``missing`` when a side is not evaluated), OOD pairs where both
exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.recipe.run import API_SIZE, BASE, IN_DOMAIN, split_name
from tools.report.authors2026 import METRICS as AUTHORS_METRICS
from tools.report.load import PAPER_SPLIT, Evaluation, Results
from tools.report.markdown import MISSING, comparisons_markdown, table_markdown
from tools.report.paired import NO_IMAGES, paired
from tools.report.paper import (
    OOD_SUBSETS,
    TABLE1,
    TABLE2,
    TABLE3,
    PaperRow,
    model_label,
    size_order,
    stage_order,
)
from tools.report.stages import comparisons

CSV_COLUMNS = (
    "model",
    "size",
    "stage",
    "dataset",
    "n",
    "ours",
    "ci_low",
    "ci_high",
    "cluster_ci_low",
    "cluster_ci_high",
    "paper",
    "diff",
)
COMPARISON_COLUMNS = (
    "split",
    "size",
    "dataset",
    "a",
    "b",
    "n",
    "accuracy_a",
    "accuracy_b",
    "only_a",
    "only_b",
    "p_value",
    "diff",
    "cluster_low",
    "cluster_high",
    "cluster_p",
)
# Evaluations that are no out-of-domain test: the in-domain test, the validation split, the authors' other
# benchmarks (their own section); any other evaluation (a user's own OOD set) joins Table 3.
NOT_OOD = {IN_DOMAIN, "validation", *(dataset for dataset, _ in AUTHORS_METRICS.values())}


def stage_rank(key: tuple[str, str]) -> tuple[int, int, str]:
    """Report row order of (size, run): sizes as ``size_order``, stages as ``stage_order``, then by name."""
    size, stage = key
    sizes, stages = size_order(), stage_order()
    size_rank = sizes.index(size) if size in sizes else len(sizes)
    stage_rank = stages.index(stage) if stage in stages else len(stages)
    return size_rank, stage_rank, f"{size}/{stage}"


def cluster_cells(interval: tuple[float, float] | None) -> dict[str, Any]:
    if interval is None:
        return {"cluster_ci_low": NO_IMAGES, "cluster_ci_high": NO_IMAGES}
    return {"cluster_ci_low": interval[0], "cluster_ci_high": interval[1]}


def table_row(
    label: str, size: str | None, stage: str | None, dataset: str, result: Evaluation | None, metric: str,
    paper: str | None,
) -> dict[str, Any]:  # fmt: skip
    """One table row; accuracies as percentages, tokens as they are."""
    scale = 100.0 if metric == "accuracy" else 1.0
    row: dict[str, Any] = {"model": label, "size": size or "", "stage": stage or "", "dataset": dataset}
    row |= {"n": None, "ours": None, "ci_low": None, "ci_high": None, "paper": paper, "diff": None}
    if result is not None:
        low, high = result.summary[f"{metric}_ci"]
        ours = result.summary[metric] * scale
        row.update(n=result.summary["n"], ours=ours, ci_low=low * scale, ci_high=high * scale)
        if metric == "accuracy":
            row.update(cluster_cells(result.cluster_ci))
        if paper is not None:
            row["diff"] = ours - float(paper)
    return row


def build_table(
    results: Results, paper_rows: Sequence[PaperRow], dataset: str, metric: str
) -> list[dict[str, Any]]:
    """The paper's rows (ours filled in or missing), then our runs on ``dataset`` that the paper lacks
    (replicate seeds: their own section)."""
    rows = [
        table_row(
            p.label, p.size, p.stage, dataset, results.get((p.size, p.stage, dataset)) if p.size else None,
            metric, p.value,
        )
        for p in paper_rows
    ]  # fmt: skip
    covered = {(p.size, p.stage) for p in paper_rows}
    runs = {(s, st) for s, st, d in results if d == dataset and split_name(st)[1] is None}
    for s, st in sorted(runs - covered, key=stage_rank):
        rows.append(table_row(model_label(s, st), s, st, dataset, results[(s, st, dataset)], metric, None))
    return rows


def build_tables(results: Results) -> dict[str, list[dict[str, Any]]]:
    """Tables 1-3 of ``results`` (paper-style runs)."""
    ood = list(OOD_SUBSETS) + sorted({d for _, _, d in results} - set(OOD_SUBSETS) - NOT_OOD)
    return {
        "table1_in_domain": build_table(results, TABLE1, IN_DOMAIN, "accuracy"),
        "table2_output_tokens": build_table(results, TABLE2, IN_DOMAIN, "avg_output_tokens"),
        "table3_ood": [row for d in ood for row in build_table(results, TABLE3.get(d, ()), d, "accuracy")],
    }


def build_comparisons(results: Results, split: str = PAPER_SPLIT) -> list[dict[str, Any]]:
    """The stages' paired comparisons among ``results`` (runs of one split) on the items both answered.

    In-domain pairs are always listed (on the authors' split only for the sizes run there); OOD pairs only
    when both sides exist.
    """
    trained = {s for s, stage, _ in results if stage != BASE} - {API_SIZE}
    listed = set(size_order()) if split == PAPER_SPLIT else {s for s, _, _ in results} - {API_SIZE}
    sizes = sorted(trained | listed, key=lambda s: stage_rank((s, "")))
    datasets = [IN_DOMAIN] + sorted({d for _, _, d in results} - {IN_DOMAIN})
    rows = []
    for size in sizes:
        for dataset in datasets:
            for stage_a, stage_b in comparisons():
                a, b = results.get((size, stage_a, dataset)), results.get((size, stage_b, dataset))
                row: dict[str, Any] = {"split": split, "size": size, "dataset": dataset}
                row |= {"a": model_label(size, stage_a), "b": model_label(size, stage_b)}
                row |= {"stage_a": stage_a, "stage_b": stage_b}
                if a is not None and b is not None:
                    rows.append(row | paired(a, b))
                elif dataset == IN_DOMAIN:
                    rows.append(row | {"n": MISSING})
    return rows


def sections(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Tables 1-3 and the paired comparisons as markdown."""
    return [
        f"## Table 1: in-domain accuracy (PathMMU test; {PAPER_SPLIT} split; reference: the paper)",
        table_markdown(tables["table1_in_domain"]),
        f"## Table 2: average output tokens (PathMMU test; {PAPER_SPLIT} split; reference: the paper)",
        table_markdown(tables["table2_output_tokens"], clusters=False),
        f"## Table 3: out-of-domain accuracy (OmniMedVQA; {PAPER_SPLIT} split runs; reference: the paper)",
        table_markdown(tables["table3_ood"], with_dataset=True),
        f"## Paired comparisons ({PAPER_SPLIT} split; exact McNemar, image-cluster bootstrap; shared items)",
        "`A only` / `B only`: items only A / only B answered correctly.",
        comparisons_markdown(tables["comparisons"]),
    ]

"""Report sections about how runs were made: replicate seeds, model selection, split units.

- **Seeds**: runs of one stage with other training seeds (``<stage>-seedN``, ``tools.recipe.run``) are
  grouped with the recipe-seed run: accuracy mean ± sd across seeds next to each seed's bootstrap CI, and
  the paper's pairs per matching seed (both stages trained with that seed): exact McNemar and paired
  image-cluster bootstrap.
- **Model selection**: each ``<runs>/<size>/<run>/selection.json`` (``tools.evaluation.selection``): the
  validation curve, the exported step and the last one.
- **Split unit**: each run's ``run.split_unit`` (``image``: image-disjoint, the default; ``question``: the
  paper's layout, images may be shared between splits). With ``pathvlm report --compare-runs DIR`` (runs
  trained on the other layout), the in-domain accuracy of each stage under both units and their difference
  with a 95 % CI (normal approximation for two independent proportions: the test sets differ).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

from tools.recipe.compose import default_seed
from tools.recipe.run import IN_DOMAIN, split_name
from tools.report.load import Evaluation, Results
from tools.report.markdown import markdown_table, paired_cluster_cells
from tools.report.paired import paired
from tools.report.paper import model_label
from tools.report.stages import comparisons

Z95 = 1.959964


def _by_seed(results: Results) -> dict[tuple[str, str, str], dict[int, Evaluation]]:
    """Evaluations keyed by (size, stage, dataset), then by training seed (``<stage>-seedN`` runs)."""
    groups: dict[tuple[str, str, str], dict[int, Evaluation]] = defaultdict(dict)
    for (size, run, dataset), result in results.items():
        stage, seed = split_name(run)
        groups[(size, stage, dataset)][default_seed() if seed is None else seed] = result
    return groups


def replicate_rows(results: Results) -> list[dict[str, Any]]:
    """Per (size, stage, dataset) with two or more seeds: accuracy mean ± sd (%) and each seed's CI."""
    rows = []
    for (size, stage, dataset), by_seed in sorted(_by_seed(results).items()):
        if len(by_seed) < 2:
            continue
        accuracies = [by_seed[s].summary["accuracy"] * 100 for s in sorted(by_seed)]
        per_seed = []
        for seed, result in sorted(by_seed.items()):
            low, high = (v * 100 for v in result.summary["accuracy_ci"])
            per_seed.append(f"{seed}: {result.summary['accuracy'] * 100:.2f} ({low:.2f}–{high:.2f})")
        rows.append(
            {
                "model": model_label(size, stage),
                "dataset": dataset,
                "seeds": ", ".join(map(str, sorted(by_seed))),
                "mean": statistics.mean(accuracies),
                "sd": statistics.stdev(accuracies),
                "per_seed": ", ".join(per_seed),
            }
        )
    return rows


def seed_comparisons(results: Results) -> list[dict[str, Any]]:
    """The stages' paired comparisons per seed both were trained with (where replicates exist)."""
    by_seed = _by_seed(results)
    rows = []
    for (size, stage_a, dataset), runs_a in sorted(by_seed.items()):
        for first, stage_b in comparisons():
            runs_b = by_seed.get((size, stage_b, dataset), {})
            seeds = sorted(set(runs_a) & set(runs_b))
            if first != stage_a or len(seeds) < 2:
                continue
            for seed in seeds:
                row = {"size": size, "dataset": dataset, "seed": seed}
                row |= {"a": model_label(size, stage_a), "b": model_label(size, stage_b)}
                test = paired(runs_a[seed], runs_b[seed])
                rows.append(row | {k: v for k, v in test.items() if k not in ("accuracy_a", "accuracy_b")})
    return rows


def selection_rows(results: Results) -> list[dict[str, Any]]:
    """Every run's ``selection.json``: exported step, its accuracy, the last step's, the curve."""
    rows = []
    for (size, run), record in results.selections.items():
        accuracy = {p["step"]: p["accuracy"] for p in record["curve"]}
        rows.append(
            {
                "size": size,
                "run": run,
                "best_step": record["best_step"],
                "best_accuracy": accuracy[record["best_step"]] * 100,
                "last_step": record["last_step"],
                "last_accuracy": accuracy[record["last_step"]] * 100,
                "curve": ", ".join(f"{p['step']}: {p['accuracy'] * 100:.1f}" for p in record["curve"]),
            }
        )
    return rows


def split_unit_rows(results: Results, other: Results) -> list[dict[str, Any]]:
    """In-domain accuracy of each run present in both roots, under each root's split unit, and the difference
    (this root minus the other) with a 95 % normal-approximation CI."""
    rows = []
    for (size, run, dataset), mine in sorted(results.items()):
        theirs = other.get((size, run, dataset))
        if dataset != IN_DOMAIN or theirs is None:
            continue
        p1, n1 = mine.summary["accuracy"], mine.summary["n"]
        p2, n2 = theirs.summary["accuracy"], theirs.summary["n"]
        half = Z95 * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) * 100
        diff = (p1 - p2) * 100
        rows.append(
            {
                "model": model_label(size, split_name(run)[0]),
                "run": run,
                "unit_a": results.split_unit(size, run),
                "accuracy_a": p1 * 100,
                "unit_b": other.split_unit(size, run),
                "accuracy_b": p2 * 100,
                "diff": diff,
                "ci_low": diff - half,
                "ci_high": diff + half,
            }
        )
    return rows


def markdown(
    replicates: list[dict[str, Any]],
    per_seed: list[dict[str, Any]],
    selections: list[dict[str, Any]],
    units: list[dict[str, Any]] | None,
) -> list[str]:
    """The report.md sections (headings and tables) of this module."""
    sections = ["## Replicate seeds (strict accuracy %)"]
    if replicates:
        header = ["Model", "Dataset", "Seeds", "Mean ± sd", "Per seed (95% CI)"]
        rows = [
            [r["model"], r["dataset"], r["seeds"], f"{r['mean']:.2f} ± {r['sd']:.2f}", r["per_seed"]]
            for r in replicates
        ]
        sections.append(markdown_table(header, rows))
        if per_seed:
            header = [
                "Size",
                "Dataset",
                "Seed",
                "A",
                "B",
                "n shared",
                "A only",
                "B only",
                "p (exact McNemar)",
                "A − B (image-cluster 95% CI)",
                "p (image-cluster bootstrap)",
            ]
            keys = ("size", "dataset", "seed", "a", "b", "n", "only_a", "only_b")
            rows = [
                [*(r[k] for k in keys), f"{r['p_value']:.4g}", *paired_cluster_cells(r)] for r in per_seed
            ]
            sections += ["Paired tests per matching seed:", markdown_table(header, rows)]
    else:
        sections.append("No stage was trained with more than one seed (`pathvlm run --seed N`).")
    sections.append("## Model selection on the validation split")
    if selections:
        header = [
            "Size",
            "Run",
            "Exported step (val. acc. %)",
            "Last step (val. acc. %)",
            "Curve step: acc. %",
        ]
        rows = [
            [
                r["size"],
                r["run"],
                f"{r['best_step']} ({r['best_accuracy']:.2f})",
                f"{r['last_step']} ({r['last_accuracy']:.2f})",
                r["curve"],
            ]
            for r in selections
        ]
        sections.append(markdown_table(header, rows))
    else:
        sections.append(
            "No run selected a checkpoint (no validation split in its data): each exports its last step."
        )
    if units is not None:
        sections.append("## Split unit: what a shared image buys")
        header = ["Model", "Split unit (these runs)", "Acc. %", "Split unit (--compare-runs)", "Acc. %"]
        rows = [
            [
                r["model"],
                r["unit_a"],
                f"{r['accuracy_a']:.2f}",
                r["unit_b"],
                f"{r['accuracy_b']:.2f}",
                f"{r['diff']:+.2f} ({r['ci_low']:+.2f}–{r['ci_high']:+.2f})",
            ]
            for r in units
        ]
        sections.append(markdown_table([*header, "Δ (95% CI)"], rows))
    return sections

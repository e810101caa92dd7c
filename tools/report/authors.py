"""Report sections for runs on the authors' 2026 split (``authors-v2``), beside the authors' audited numbers.

The reference is ``tools.report.authors2026`` (their ``final_unified_results_tables_20260814.json``):
PathMMU validation (val385) and test (test999) in one table, PathVQA A/B (``pathvqa_closed``, with the parse
and cap rates of its summary beside theirs), OmniMedVQA (our four subset evaluations pooled, all items, scored
each of their two ways beside their number for that scoring) and MMMU non-medical (``mmmu_nonmedical_dev``) in
another; their models without a stage of ours are listed as reference-only rows, our runs they lack are
appended. Every accuracy has its item and image-cluster bootstrap CI; on test999 their own image-cluster CIs
are shown beside. The paired comparisons (McNemar and paired image-cluster bootstrap) carry
their paired result where the same pair exists (R1 − β: their Stage 3 − rule-RL n8, +0.40 pp).
"""

from __future__ import annotations

from typing import Any

from tools.evaluation.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ci
from tools.recipe.run import IN_DOMAIN, split_name
from tools.report import authors2026 as authors
from tools.report.load import Evaluation, Results, pooled_cluster_ci
from tools.report.markdown import comparisons_markdown, table_markdown
from tools.report.paper import OOD_SUBSETS, model_label
from tools.report.paper_tables import CSV_COLUMNS, build_comparisons, cluster_cells, stage_rank, table_row

PATHMMU, BENCHMARKS, COMPARISONS = "authors2026_pathmmu", "authors2026_benchmarks", "authors2026_comparisons"
REFERENCE = ("authors_2026", "Authors 2026")
PATHMMU_KEYS = ("pathmmu_val", "pathmmu_test")
BENCHMARK_KEYS = ("pathvqa_fixed_ab", "omnimed_contract_aligned", "omnimed_official", "mmmu_nonmedical")
COLUMNS = (*CSV_COLUMNS[:-2], "eval_dataset", REFERENCE[0], "diff", "authors_note")  # dataset: their key
METHOD = (
    f"seed {BOOTSTRAP_SEED}, {BOOTSTRAP_RESAMPLES:,} replicates, percentile intervals; paired tests draw the "
    "same images for both models, p = 2·min(P(Δ* ≤ 0), P(Δ* ≥ 0)): the authors' method, "
    f"{authors.STATISTICS_SOURCE}"
)


def _parts(results: Results, size: str, stage: str, dataset: str) -> list[Evaluation]:
    """The evaluations behind one number: for ``omnimedvqa`` the four subsets (all four, or none)."""
    if dataset == authors.OMNIMEDVQA:
        parts = [results.get((size, stage, subset)) for subset in OOD_SUBSETS]
        return [p for p in parts if p is not None] if all(parts) else []
    result = results.get((size, stage, dataset))
    return [result] if result is not None else []


def _field(key: str) -> str:
    """The item record field that scores ``key`` as they did: their scoring's, else our strict ``correct``."""
    return f"{authors.SCORED[key]}_correct" if key in authors.SCORED else "correct"


def _scores(parts: list[Evaluation], field: str) -> list[bool | None]:
    """``field`` of every item of ``parts``, pooled."""
    return [c for p in parts for c in p.correct(field).values()]


def _pooled_row(
    label: str, size: str, stage: str, key: str, parts: list[Evaluation], reference: str | None
) -> dict[str, Any]:
    """A table row over ``parts`` pooled, scored as ``key`` is (one part, strict: its summary's numbers, as
    the paper's tables); no number of ours when records predate the scoring."""
    dataset, field = authors.METRICS[key][0], _field(key)
    single = parts[0] if len(parts) == 1 and field == "correct" else None
    row = table_row(label, size, stage, key, single, "accuracy", reference)
    scored = _scores(parts, field)
    if single is None and scored and None not in scored:
        correct = [float(c) for c in scored]
        low, high = bootstrap_ci(correct)
        row.update(
            n=len(correct), ours=sum(correct) / len(correct) * 100, ci_low=low * 100, ci_high=high * 100
        )
        row.update(cluster_cells(pooled_cluster_ci(parts, field)))
        if reference is not None:
            row["diff"] = row["ours"] - float(reference)
    row[REFERENCE[0]] = row.pop("paper")
    return row | {"eval_dataset": dataset}


def _note(key: str, row: authors.AuthorsRow | None, parts: list[Evaluation]) -> str:
    """Their image-cluster CI on test999; the parse and cap rates beside PathVQA (theirs, and ours from the
    evaluation summary: ``—`` where it has none); why a scored row has no number of ours."""
    if key == "pathmmu_test" and row is not None and row.model in authors.CLUSTER_CI_TEST:
        low, high = authors.CLUSTER_CI_TEST[row.model][2]
        return f"theirs, image-cluster: {low * 100:.2f}–{high * 100:.2f}"
    if key in authors.SCORED and parts and None in _scores(parts, _field(key)):
        return f"ours: records lack `{_field(key)}` (evaluated before it existed; evaluate again)"
    if key != "pathvqa_fixed_ab":
        return ""
    notes = []
    if row is not None:
        rates = [authors.percent(row.values[r]) or "—" for r in authors.RATES]
        notes.append(f"theirs: parse {rates[0]}, cap {rates[1]}")
    if parts:
        rates = [authors.percent(parts[0].summary.get(r)) or "—" for r in ("parse_rate", "cap_rate")]
        notes.append(f"ours: parse {rates[0]}, cap {rates[1]}")
    return "; ".join(notes)


def authors_table(results: Results, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per benchmark: their models (ours beside the mapped ones, 7B), then our runs they lack."""
    rows = []
    mapped = {(authors.SIZE, row.stage) for row in authors.ROWS if row.stage}
    for key in keys:
        dataset = authors.METRICS[key][0]
        for theirs in authors.ROWS:
            reference = authors.percent(theirs.values[key])
            parts = _parts(results, authors.SIZE, theirs.stage, dataset) if theirs.stage else []
            if reference is None and not parts:
                continue
            label = theirs.model
            if theirs.stage:
                label = f"{model_label(authors.SIZE, theirs.stage)} (theirs: {theirs.model})"
            size = authors.SIZE if theirs.stage else ""
            row = _pooled_row(label, size, theirs.stage or "", key, parts, reference)
            rows.append(row | {"authors_note": _note(key, theirs, parts)})
        models = {
            (size, stage)
            for size, stage, _ in results
            if split_name(stage)[1] is None and _parts(results, size, stage, dataset)
        }
        for size, stage in sorted(models - mapped, key=stage_rank):
            parts = _parts(results, size, stage, dataset)
            row = _pooled_row(model_label(size, stage), size, stage, key, parts, None)
            rows.append(row | {"authors_note": _note(key, None, parts)})
    return rows


def _paired_reference(row: dict[str, Any]) -> str | None:
    """Their paired test999 result for the same pair of models (7B, test), as printed in the report."""
    if row["size"] != authors.SIZE or row["dataset"] != IN_DOMAIN:
        return None
    a, b = authors.model_of(row["stage_a"]), authors.model_of(row["stage_b"])
    for (first, second), sign in (((a, b), 1), ((b, a), -1)):
        if (first, second) in authors.PAIRED_TEST:
            diff, (low, high), p = authors.PAIRED_TEST[(first, second)]
            low, high = sorted((sign * low, sign * high))
            return f"{sign * diff * 100:+.2f} ({low * 100:+.2f}–{high * 100:+.2f}), p {p:.3f}"
    return None


def build(results: Results) -> dict[str, list[dict[str, Any]]]:
    """The authors-v2 tables of ``results`` (runs of that split only)."""
    comparisons = build_comparisons(results, authors.SPLIT)
    return {
        PATHMMU: authors_table(results, PATHMMU_KEYS),
        BENCHMARKS: authors_table(results, BENCHMARK_KEYS),
        COMPARISONS: [row | {REFERENCE[0]: _paired_reference(row)} for row in comparisons],
    }


def sections(tables: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The authors-v2 tables and comparisons as markdown."""
    names = {key: label for key, (_, label) in authors.METRICS.items()}
    note = ("authors_note", "Note")
    return [
        f"## PathMMU accuracy ({authors.SPLIT} split; reference: the authors' 2026 results)",
        f"Reference: `{authors.SOURCE}` (single training seed); their models without a stage of ours are "
        "reference-only rows. Our 7B stages stand beside theirs as `tools/report/authors2026.py` says.",
        table_markdown(tables[PATHMMU], with_dataset=True, reference=REFERENCE, datasets=names, extra=note),
        f"## Other benchmarks ({authors.SPLIT} runs; reference: the authors' 2026 results)",
        "OmniMedVQA: all items of the four subsets pooled, our responses scored each of their two ways "
        "(`tools/evaluation/scorings.py`) beside their number for that scoring. PathVQA: parse rate (answers "
        "the parser reads) and cap rate (responses cut by the token limit) in the note, theirs and ours.",
        table_markdown(
            tables[BENCHMARKS], with_dataset=True, reference=REFERENCE, datasets=names, extra=note
        ),
        f"## Paired comparisons ({authors.SPLIT} split; exact McNemar and image-cluster bootstrap on shared "
        "item ids)",
        "`A only` / `B only`: items only A / only B answered correctly. Authors 2026: their paired "
        f"image-cluster bootstrap on test999 ({authors.STATISTICS['replicates']:,} replicates, seed "
        f"{authors.STATISTICS['seed']}), where they tested the same pair.",
        comparisons_markdown(tables[COMPARISONS], extra=(REFERENCE[0], "Authors 2026 (A − B, 95% CI, p)")),
    ]

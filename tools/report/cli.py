"""The paper's tables next to ours, paired significance tests, plots, and W&B logging.

``pathvlm report [--runs runs/] [--out reports/]`` reads every ``<runs>/<size>/<stage>/eval/<dataset>/``
(``summary.json`` + ``items.jsonl``, written by ``pathvlm eval``; ``base`` is the untrained model) and writes
to ``--out``:

- ``report.md``: each run beside the reference of the split it was trained on (its data manifest's
  ``split``: ``config.yaml`` ``run.split`` or ``run.manifest``, else the manifest beside its in-domain eval
  data). Runs on the paper-style split: Table 1 (in-domain accuracy %), Table 2 (average output tokens),
  Table 3 (OOD accuracy % per OmniMedVQA subset), each row our number with its 95 % bootstrap CI over items
  and over images (image-cluster bootstrap, ``tools.evaluation.stats``), the paper's number as printed, and
  the difference; paper rows we have not run say ``missing``; runs the paper lacks are appended. Runs on the
  authors' ``authors-v2`` split: the same beside the authors' audited 2026 numbers
  (``tools.report.authors``). No table or test mixes runs of two splits.
  Then per split exact McNemar tests and paired image-cluster bootstrap tests on shared item ids: each
  stage against its stage file's ``compare_with`` (R1 vs β, β vs α, β vs γ, ε vs δ), per size and dataset;
  then replicate seeds (mean ± sd, McNemar and paired image-cluster
  bootstrap per matching seed), model selection curves and split units
  (``tools.report.runs``; ``--compare-runs DIR`` adds the difference between split units);
  the judged reasoning table (``tools.report.reasoning``); pass@k per model where
  ``pathvlm eval --samples N`` folders exist (``tools.report.passk``, also ``passk.csv``); per size
  with GRPO logs, what each stage did, with ``learning_<size>.png`` (``tools.report.learning``).
  Stand-in sizes (``tiny``) get no paper number or Δ;
- ``table1_in_domain.csv``, ``table2_output_tokens.csv``, ``table3_ood.csv``, ``comparisons.csv`` (with
  each row's split); ``authors2026_pathmmu.csv``, ``authors2026_benchmarks.csv`` when runs on
  ``authors-v2`` exist;
- ``accuracy.png`` (accuracy per model with CIs and paper markers), ``output_tokens.png``;
- W&B (unless ``--no-wandb``): per evaluated size-stage a run in project ``pathvlm-r1``, group = the
  run's experiment, name ``<size>-<stage>``, job_type ``eval``, with ``eval/in_domain/accuracy``,
  ``eval/ood/<subset>/accuracy``, ``eval/avg_output_tokens`` (+ CIs, letter accuracy, failure rates);
  and one ``all-report`` run holding the tables as ``wandb.Table``s and the plots. W&B follows
  ``WANDB_MODE``: with ``WANDB_MODE=offline`` (the Makefile's default, and tests') runs are stored under
  ``<out>/wandb/offline-run-*`` (or ``$WANDB_DIR/wandb``); upload them later with
  ``wandb login && wandb sync <out>/wandb/offline-run-*``. Re-running the report updates the same runs.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.common.errors import UserError
from tools.common.paths import runs_root
from tools.report import authors, learning, paper_tables, passk, reasoning
from tools.report import runs as run_sections
from tools.report.authors2026 import SPLIT as AUTHORS_SPLIT
from tools.report.load import PAPER_SPLIT, Results, load
from tools.report.paper import model_label
from tools.report.plots import plot_curves, plot_metric
from tools.report.stages import grpo_chain
from tools.report.wandb_log import log_report

SUMMARIES = "*/*/eval/*/summary.json"  # every evaluation under a runs root
INTRO = (
    "Accuracy is strict (option letter and text, the paper's metric), in %; intervals are 95 % bootstrap "
    "CIs over items and, beside them, over images (image-cluster bootstrap: all questions of a drawn "
    f"image together; {authors.METHOD}); Δ is ours minus the reference number; `missing` marks "
    "rows we have not evaluated. A model that only stands in for one of the paper's (`tiny (stands in "
    "for …)`) gets no Δ. Each run stands beside the reference of the split it was trained on (its data "
    f"manifest's `split`): `{AUTHORS_SPLIT}` runs beside the authors' 2026 numbers, the others "
    f"({PAPER_SPLIT}) beside the paper's; runs of different splits are never compared."
)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)  # None and absent cells: empty


def build_tables(results: Results, other: Results | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every table of the report (CSV and W&B); ``other``: the ``--compare-runs`` root."""
    paper, theirs = results.only(PAPER_SPLIT), results.only(AUTHORS_SPLIT)
    tables = paper_tables.build_tables(paper)
    tables["comparisons"] = paper_tables.build_comparisons(paper) if paper or not theirs else []
    tables |= authors.build(theirs) if theirs else {}
    tables["replicates"] = run_sections.replicate_rows(results)
    tables["seed_comparisons"] = [
        row for split in results.splits() for row in run_sections.seed_comparisons(results.only(split))
    ]
    tables["selection"] = run_sections.selection_rows(results)
    if other is not None:
        tables["split_units"] = run_sections.split_unit_rows(results, other)
    return tables


def write_report(
    results: Results, out: Path, other: Results | None = None
) -> tuple[dict[str, list[dict[str, Any]]], list[Path]]:
    """Write report.md, the CSVs and the plots; return the tables (comparisons included) and plot paths."""
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(results, other)
    has_paper, has_authors = bool(results.only(PAPER_SPLIT)), bool(results.only(AUTHORS_SPLIT))
    for name in ("table1_in_domain", "table2_output_tokens", "table3_ood"):
        write_csv(out / f"{name}.csv", tables[name], paper_tables.CSV_COLUMNS)
    comparisons = tables["comparisons"] + tables.get(authors.COMPARISONS, [])
    write_csv(out / "comparisons.csv", comparisons, paper_tables.COMPARISON_COLUMNS)
    for name in (authors.PATHMMU, authors.BENCHMARKS):
        if name in tables:
            write_csv(out / f"{name}.csv", tables[name], authors.COLUMNS)
    judged, judged_tests = reasoning.build(results)
    write_csv(out / "reasoning_judged.csv", judged, reasoning.ROW_COLUMNS)
    write_csv(out / "reasoning_tests.csv", judged_tests, reasoning.TEST_COLUMNS)
    sampled = passk.build(results)
    if sampled:
        write_csv(out / "passk.csv", sampled, passk.COLUMNS)
    plots = [
        plot_metric(
            tables["table1_in_domain"], out / "accuracy.png", "accuracy (%)", "In-domain accuracy (PathMMU)"
        ),
        plot_metric(
            tables["table2_output_tokens"], out / "output_tokens.png", "tokens", "Average output tokens"
        ),
    ]
    learning_sections = []
    for size, rows in learning.build(results).items():
        curves = {stage: results.curves.get((size, stage), {}) for stage in grpo_chain()}
        titles = {stage: model_label(size, stage) for stage in curves}
        plot = plot_curves(curves, titles, out / f"learning_{size}.png")
        learning_sections += learning.markdown(size, rows, plot.name if plot else None)
    units = sorted({(s, st, results.split_unit(s, st)) for s, st, _ in results})
    sections = [
        "# PathVLM-R1: our runs next to the paper"
        + (" and the authors' 2026 results" if has_authors else ""),
        INTRO,
        *(paper_tables.sections(tables) if has_paper or not has_authors else []),
        *(authors.sections(tables) if has_authors else []),
        "Split unit of each run (`image`: image-disjoint splits; `question`: the paper's question-level "
        "split, images shared across splits): "
        + (", ".join(f"{s}/{st} {u}" for s, st, u in units) or "none")
        + ".",
        *run_sections.markdown(
            tables["replicates"], tables["seed_comparisons"], tables["selection"], tables.get("split_units")
        ),
        *reasoning.markdown(judged, judged_tests),
        *passk.markdown(sampled),
        *learning_sections,
        "## Plots",
        *(f"![{path.stem}]({path.name})" for path in plots),
    ]
    (out / "report.md").write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return tables, plots


def run_report(args: argparse.Namespace) -> int:
    if not args.no_wandb:
        import wandb  # noqa: F401  (before scipy and matplotlib: tools/common/wandb_first.py says why)
    _check_arguments(args)
    results = load(args.runs)
    if not results:
        print(f"{args.runs}: no evaluations found (run `pathvlm eval` first); writing an empty report")
    other = load(args.compare_runs) if args.compare_runs is not None else None
    tables, plots = write_report(results, args.out, other)
    print(f"report written to {args.out / 'report.md'} ({len(results)} evaluation(s))")
    if not args.no_wandb:
        for path in log_report(results, tables, plots, args.out):
            print(f"W&B run: {path}")
    return 0


def _check_arguments(args: argparse.Namespace) -> None:
    """A mistyped ``--runs`` / ``--compare-runs`` or a file as ``--out``: an error, not empty tables."""
    if not args.runs.is_dir():
        raise UserError(f"--runs {args.runs}: no such folder (the runs root your stages trained into)")
    if args.compare_runs is not None:
        if not args.compare_runs.is_dir():
            raise UserError(f"--compare-runs {args.compare_runs}: no such folder")
        if not any(args.compare_runs.glob(SUMMARIES)):
            raise UserError(f"--compare-runs {args.compare_runs}: no evaluations (run pathvlm eval-all)")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: is a file; pass a folder for the report")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tables 1-3 next to the paper's, McNemar tests, plots, W&B",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--runs", type=Path, default=runs_root(), help="runs root (default: $PATHVLM_RUNS or runs)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("reports"), help="output directory (default: reports)"
    )
    parser.add_argument(
        "--compare-runs",
        type=Path,
        help="a second runs root trained on the other split unit (e.g. `pathvlm data pathmmu --split-unit "
        "question`): the report shows each stage's accuracy difference between the two",
    )
    parser.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    parser.set_defaults(func=run_report)

"""The paper's tables next to ours, paired significance tests, plots, and W&B logging.

``pathvlm report [--runs runs/] [--out reports/]`` reads every ``<runs>/<size>/<stage>/eval/<dataset>/``
(``summary.json`` + ``items.jsonl``, written by ``pathvlm eval``; ``base`` is the untrained model) and writes
to ``--out``:

- ``report.md``: Table 1 (in-domain accuracy %), Table 2 (average output tokens), Table 3 (OOD accuracy %
  per OmniMedVQA subset), each row our number with its 95 % bootstrap CI, the paper's number as printed,
  and the difference; paper rows we have not run say ``missing``; runs the paper lacks are appended.
  Then exact McNemar tests on shared item ids: R1 vs β, β vs α, β vs γ, ε vs δ, per size and dataset;
  then replicate seeds (mean ± sd, McNemar per matching seed), model selection curves and split units
  (``tools.evaluation.report_runs``; ``--compare-runs DIR`` adds the difference between split units);
  the judged reasoning table (``tools.evaluation.report_reasoning``); pass@k per model where
  ``pathvlm eval --samples N`` folders exist (``tools.evaluation.report_passk``, also ``passk.csv``); per size
  with GRPO logs, what each stage did, with ``learning_<size>.png`` (``tools.evaluation.report_learning``).
  Stand-in sizes (``tiny``) get no paper number or Δ;
- ``table1_in_domain.csv``, ``table2_output_tokens.csv``, ``table3_ood.csv``, ``comparisons.csv``;
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
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.common.errors import UserError
from tools.evaluation.markdown import markdown_table
from tools.evaluation.paper import (
    API_SIZE,
    COMPARISONS,
    OOD_SUBSETS,
    TABLE1,
    TABLE2,
    TABLE3,
    PaperRow,
    model_label,
    size_order,
    stage_order,
)

IN_DOMAIN = "test"
CSV_COLUMNS = ("model", "size", "stage", "dataset", "n", "ours", "ci_low", "ci_high", "paper", "diff")
MISSING = "missing"
SUMMARIES = "*/*/eval/*/summary.json"  # every evaluation under a runs root


@dataclass(frozen=True)
class Result:
    """One model's evaluation on one dataset."""

    size: str
    stage: str
    dataset: str
    summary: dict[str, Any]
    items_path: Path


Results = dict[tuple[str, str, str], Result]


def collect(runs: Path) -> Results:
    """Every ``<runs>/<size>/<stage>/eval/<dataset>/``, keyed by (size, stage, dataset).

    Each folder's summary, config and items are checked to belong together (``tools.evaluation.eval_files``);
    any that do not stop the report with every problem listed.
    """
    from tools.evaluation.eval_files import EvalFileError, check_folder
    from tools.evaluation.report_passk import is_sampled

    results: Results = {}
    problems = []
    for path in sorted(runs.glob(SUMMARIES)):
        dataset_dir = path.parent
        stage_dir = dataset_dir.parent.parent
        key = (stage_dir.parent.name, stage_dir.name, dataset_dir.name)
        try:
            summary, _ = check_folder(dataset_dir)
        except EvalFileError as error:
            problems.append(str(error))
            continue
        if is_sampled(summary):  # pass@k folders: only the pass@k table reads them (report_passk)
            continue
        results[key] = Result(*key, summary=summary, items_path=dataset_dir / "items.jsonl")
    if problems:
        raise SystemExit("evaluation folders that cannot be trusted:\n  " + "\n  ".join(problems))
    return results


def _stage_rank(key: tuple[str, str]) -> tuple[int, int, str]:
    size, stage = key
    sizes, stages = size_order(), stage_order()
    size_rank = sizes.index(size) if size in sizes else len(sizes)
    stage_rank = stages.index(stage) if stage in stages else len(stages)
    return size_rank, stage_rank, f"{size}/{stage}"


def _row(
    label: str,
    size: str | None,
    stage: str | None,
    dataset: str,
    result: Result | None,
    metric: str,
    paper: str | None,
) -> dict[str, Any]:
    """One table row; accuracies as percentages, tokens as they are."""
    scale = 100.0 if metric == "accuracy" else 1.0
    row: dict[str, Any] = {
        "model": label,
        "size": size or "",
        "stage": stage or "",
        "dataset": dataset,
        "n": None,
        "ours": None,
        "ci_low": None,
        "ci_high": None,
        "paper": paper,
        "diff": None,
    }
    if result is not None:
        low, high = result.summary[f"{metric}_ci"]
        row.update(
            n=result.summary["n"],
            ours=result.summary[metric] * scale,
            ci_low=low * scale,
            ci_high=high * scale,
        )
        if paper is not None:
            row["diff"] = row["ours"] - float(paper)
    return row


def build_table(
    results: Results, paper_rows: Sequence[PaperRow], dataset: str, metric: str
) -> list[dict[str, Any]]:
    """The paper's rows (ours filled in or missing), then our runs on ``dataset`` that the paper lacks."""
    rows = [
        _row(
            p.label,
            p.size,
            p.stage,
            dataset,
            results.get((p.size, p.stage, dataset)) if p.size else None,
            metric,
            p.value,
        )
        for p in paper_rows
    ]
    from tools.train.replicates import parse_run_stage

    covered = {(p.size, p.stage) for p in paper_rows}
    runs = {
        (s, st) for s, st, d in results if d == dataset and parse_run_stage(st)[1] is None
    }  # replicates: below
    extra = sorted(runs - covered, key=_stage_rank)
    rows += [
        _row(model_label(s, st), s, st, dataset, results[(s, st, dataset)], metric, None) for s, st in extra
    ]
    return rows


def build_tables(results: Results) -> dict[str, list[dict[str, Any]]]:
    ood = list(OOD_SUBSETS) + sorted({d for _, _, d in results} - set(OOD_SUBSETS) - {IN_DOMAIN})
    return {
        "table1_in_domain": build_table(results, TABLE1, IN_DOMAIN, "accuracy"),
        "table2_output_tokens": build_table(results, TABLE2, IN_DOMAIN, "avg_output_tokens"),
        "table3_ood": [row for d in ood for row in build_table(results, TABLE3.get(d, ()), d, "accuracy")],
    }


def _correct_by_id(path: Path) -> dict[str, bool]:
    from tools.evaluation.eval_files import read_records

    return {id_: record["correct"] for id_, record in read_records(path).items()}


def build_comparisons(results: Results) -> list[dict[str, Any]]:
    """Exact McNemar tests of the paper's key pairs on the items both models answered.

    In-domain pairs are always listed (``missing`` when a side has not been evaluated); OOD pairs only
    when both sides exist.
    """
    from tools.evaluation.stats import mcnemar_exact

    trained = {s for s, stage, _ in results if stage != "base"} - {API_SIZE}
    sizes = sorted(trained | set(size_order()), key=lambda s: _stage_rank((s, "")))
    datasets = [IN_DOMAIN] + sorted({d for _, _, d in results} - {IN_DOMAIN})
    rows = []
    for size in sizes:
        for dataset in datasets:
            for stage_a, stage_b in COMPARISONS:
                a, b = results.get((size, stage_a, dataset)), results.get((size, stage_b, dataset))
                row: dict[str, Any] = {
                    "size": size,
                    "dataset": dataset,
                    "a": model_label(size, stage_a),
                    "b": model_label(size, stage_b),
                }
                if a is None or b is None:
                    if dataset == IN_DOMAIN:
                        rows.append(row | {"n": MISSING})
                    continue
                correct_a, correct_b = _correct_by_id(a.items_path), _correct_by_id(b.items_path)
                shared = sorted(set(correct_a) & set(correct_b))
                test = mcnemar_exact([correct_a[i] for i in shared], [correct_b[i] for i in shared])
                rows.append(
                    row
                    | {
                        "n": test.n,
                        "accuracy_a": sum(correct_a[i] for i in shared) / test.n * 100
                        if shared
                        else math.nan,
                        "accuracy_b": sum(correct_b[i] for i in shared) / test.n * 100
                        if shared
                        else math.nan,
                        "only_a": test.only_a,
                        "only_b": test.only_b,
                        "p_value": test.p_value,
                    }
                )
    return rows


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def table_markdown(rows: Sequence[dict[str, Any]], with_dataset: bool = False) -> str:
    header = (
        ["Model"]
        + (["Dataset"] if with_dataset else [])
        + ["n", "Ours (95% CI)", "Paper", "Δ (ours − paper)"]
    )
    body: list[list[str]] = []
    for row in rows:
        ours = (
            MISSING
            if row["ours"] is None
            else f"{_num(row['ours'])} ({_num(row['ci_low'])}–{_num(row['ci_high'])})"
        )
        dataset = [OOD_SUBSETS.get(row["dataset"], row["dataset"])] if with_dataset else []
        cells = [
            row["model"],
            *dataset,
            "" if row["n"] is None else str(row["n"]),
            ours,
            row["paper"] or "—",
            _num(row["diff"], sign=True),
        ]
        body.append(cells)
    return markdown_table(header, body)


def comparisons_markdown(rows: Sequence[dict[str, Any]]) -> str:
    header = [
        "Size",
        "Dataset",
        "A",
        "B",
        "n shared",
        "A acc %",
        "B acc %",
        "A only",
        "B only",
        "p (exact McNemar)",
    ]
    body: list[list[str]] = []
    for row in rows:
        if row["n"] == MISSING:
            cells = [row["size"], row["dataset"], row["a"], row["b"], MISSING, "", "", "", "", ""]
        else:
            cells = [
                row["size"],
                row["dataset"],
                row["a"],
                row["b"],
                str(row["n"]),
                _num(row["accuracy_a"]),
                _num(row["accuracy_b"]),
                str(row["only_a"]),
                str(row["only_b"]),
                f"{row['p_value']:.4g}",
            ]
        body.append(cells)
    return markdown_table(header, body)


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})


def plot_metric(rows: Sequence[dict[str, Any]], path: Path, xlabel: str, title: str) -> Path:
    """Ours as points with 95 % CI bars, the paper's numbers as markers, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def write_report(
    results: Results, out: Path, runs: Path | None = None, compare_runs: Path | None = None
) -> tuple[dict[str, list[dict[str, Any]]], list[Path]]:
    """Write report.md, the CSVs and the plots; return the tables (comparisons included) and plot paths."""
    from tools.evaluation import report_runs
    from tools.evaluation.report_learning import sections as learning_sections
    from tools.evaluation.report_passk import sections as passk_sections
    from tools.evaluation.report_reasoning import sections as reasoning_sections

    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(results)
    tables["comparisons"] = build_comparisons(results)
    tables["replicates"] = report_runs.replicate_rows(results)
    tables["seed_comparisons"] = report_runs.seed_comparisons(results)
    tables["selection"] = report_runs.selection_rows(runs) if runs is not None else []
    units = None
    if compare_runs is not None and runs is not None:
        units = tables["split_units"] = report_runs.split_unit_rows(
            results, runs, collect(compare_runs), compare_runs
        )
    run_units = sorted({(s, st, report_runs.split_unit(runs, s, st)) for s, st, _ in results}) if runs else []
    for name in ("table1_in_domain", "table2_output_tokens", "table3_ood"):
        write_csv(out / f"{name}.csv", tables[name], CSV_COLUMNS)
    comparison_columns = (
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
    )
    write_csv(out / "comparisons.csv", tables["comparisons"], comparison_columns)
    plots = [
        plot_metric(
            tables["table1_in_domain"], out / "accuracy.png", "accuracy (%)", "In-domain accuracy (PathMMU)"
        ),
        plot_metric(
            tables["table2_output_tokens"], out / "output_tokens.png", "tokens", "Average output tokens"
        ),
    ]
    sections = [
        "# PathVLM-R1: our runs next to the paper",
        "Accuracy is strict (option letter and text, the paper's metric), in %; intervals are 95 % bootstrap "
        "CIs over items; Δ is ours minus the paper's number; `missing` marks rows we have not evaluated. "
        "A model that only stands in for one of the paper's (`tiny (stands in for …)`) gets no Δ.",
        "## Table 1: in-domain accuracy (PathMMU test)",
        table_markdown(tables["table1_in_domain"]),
        "## Table 2: average output tokens (PathMMU test)",
        table_markdown(tables["table2_output_tokens"]),
        "## Table 3: out-of-domain accuracy (OmniMedVQA)",
        table_markdown(tables["table3_ood"], with_dataset=True),
        "## Paired comparisons (exact McNemar test on shared item ids)",
        "`A only` / `B only`: items only A / only B answered correctly.",
        comparisons_markdown(tables["comparisons"]),
        "Split unit of each run (`image`: image-disjoint splits; `question`: the paper's question-level "
        "split, images shared across splits): "
        + (", ".join(f"{s}/{st} {u}" for s, st, u in run_units) or "none")
        + ".",
        *report_runs.markdown(tables["replicates"], tables["seed_comparisons"], tables["selection"], units),
        *reasoning_sections(results, out),
        *passk_sections(runs, out),
        *learning_sections(results, runs, out),
        "## Plots",
        *(f"![{path.stem}]({path.name})" for path in plots),
    ]
    (out / "report.md").write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return tables, plots


def run_report(args: argparse.Namespace) -> int:
    if not args.no_wandb:
        import tools.common.wandb_first  # noqa: F401  (before scipy and matplotlib)
    _check_arguments(args)
    results = collect(args.runs)
    if not results:
        print(f"{args.runs}: no evaluations found (run `pathvlm eval` first); writing an empty report")
    tables, plots = write_report(results, args.out, args.runs, args.compare_runs)
    print(f"report written to {args.out / 'report.md'} ({len(results)} evaluation(s))")
    if not args.no_wandb:
        from tools.evaluation.wandb_log import log_report

        for path in log_report(results, tables, plots, args.runs, args.out):
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
    from tools.common.paths import runs_root

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

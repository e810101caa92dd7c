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
  (``tools.evaluation.report_authors``). No table or test mixes runs of two splits.
  Then per split exact McNemar tests and paired image-cluster bootstrap tests on shared item ids: R1 vs β,
  β vs α, β vs γ, ε vs δ, per size and dataset;
  then replicate seeds (mean ± sd, McNemar and paired image-cluster
  bootstrap per matching seed), model selection curves and split units
  (``tools.evaluation.report_runs``; ``--compare-runs DIR`` adds the difference between split units);
  the judged reasoning table (``tools.evaluation.report_reasoning``); pass@k per model where
  ``pathvlm eval --samples N`` folders exist (``tools.evaluation.report_passk``, also ``passk.csv``); per size
  with GRPO logs, what each stage did, with ``learning_<size>.png`` (``tools.evaluation.report_learning``).
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
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tools.common.errors import UserError
from tools.evaluation.authors2026 import METRICS as AUTHORS_METRICS
from tools.evaluation.authors2026 import SPLIT as AUTHORS_SPLIT
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
MISSING = "missing"
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
PAPER_SPLIT = "paper-style"  # a data manifest without "split" (or another one): the paper's layout
NO_IMAGES = "n/a (records lack images)"
SUMMARIES = "*/*/eval/*/summary.json"  # every evaluation under a runs root


@dataclass(frozen=True)
class Result:
    """One model's evaluation on one dataset."""

    size: str
    stage: str
    dataset: str
    summary: dict[str, Any]
    items_path: Path
    split: str = PAPER_SPLIT


Results = dict[tuple[str, str, str], Result]


def _split_of(recorded: Any) -> str:
    """Our name of the split a manifest records (``PAPER_SPLIT`` for none or another one)."""
    return AUTHORS_SPLIT if recorded == AUTHORS_SPLIT else PAPER_SPLIT


def _manifest_split(manifest: Path) -> str | None:
    """``split`` of a data manifest (``PAPER_SPLIT`` when it records none); None when it cannot be read."""
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _split_of(recorded.get("split") if isinstance(recorded, dict) else None)


def model_split(run_dir: Path, in_domain: Result | None) -> str:
    """The split a model was trained on: ``run.split`` of its ``config.yaml`` (the runner records the
    manifest's), else the data manifest it names (``run.manifest``), else (the base model, API models, a
    manifest not on this machine) the manifest beside its in-domain eval data
    (``<data>/pathmmu/manifest.json`` for ``<data>/pathmmu/eval/test.jsonl``); the paper-style split when
    none can be read."""

    manifests = []
    config = run_dir / "config.yaml"
    if config.is_file():
        run = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("run") or {}
        if run.get("split"):
            return _split_of(run["split"])
        if run.get("manifest"):
            manifests.append(Path(run["manifest"]))
    if in_domain is not None and in_domain.summary.get("data"):
        manifests.append(Path(in_domain.summary["data"]).parent.parent / "manifest.json")
    splits = (_manifest_split(manifest) for manifest in manifests)
    return next((split for split in splits if split is not None), PAPER_SPLIT)


def by_split(results: Results) -> dict[str, Results]:
    """``results`` grouped by their split (paper-style first), so that nothing is compared across splits."""
    groups: dict[str, Results] = {}
    for key, result in sorted(results.items(), key=lambda kv: kv[1].split != PAPER_SPLIT):
        groups.setdefault(result.split, {})[key] = result
    return groups


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
        trained = trained_size(stage_dir)
        if trained not in (None, key[0]):
            problems.append(
                f"{stage_dir}: trained at size {trained} (config.yaml) but filed under {key[0]}, so it would "
                f"be reported as {model_label(key[0], key[1])}: move it to {runs / trained / key[1]}"
            )
            continue
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
    splits = {
        (size, stage): model_split(runs / size / stage, results.get((size, stage, IN_DOMAIN)))
        for size, stage, _ in results
    }
    return {key: replace(result, split=splits[key[:2]]) for key, result in results.items()}


def trained_size(stage_dir: Path) -> str | None:
    """The ``size`` the run in ``stage_dir`` was composed with (its ``config.yaml``), None without one."""
    try:
        config = yaml.safe_load((stage_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    size = config.get("size") if isinstance(config, dict) else None
    return str(size) if size is not None else None


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
        if metric == "accuracy":
            row.update(_cluster_cells(cluster_ci((result.items_path,))))
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
    from tools.recipe.run import split_name as parse_run_stage

    covered = {(p.size, p.stage) for p in paper_rows}
    runs = {
        (s, st) for s, st, d in results if d == dataset and parse_run_stage(st)[1] is None
    }  # replicates: below
    extra = sorted(runs - covered, key=_stage_rank)
    rows += [
        _row(model_label(s, st), s, st, dataset, results[(s, st, dataset)], metric, None) for s, st in extra
    ]
    return rows


# Evaluations that are no out-of-domain test: the in-domain test, the validation split, the authors' other
# benchmarks (their own section); any other evaluation (a user's own OOD set) joins Table 3.
NOT_OOD = {IN_DOMAIN, "validation", *(dataset for dataset, _ in AUTHORS_METRICS.values())}


def build_tables(results: Results) -> dict[str, list[dict[str, Any]]]:
    ood = list(OOD_SUBSETS) + sorted({d for _, _, d in results} - set(OOD_SUBSETS) - NOT_OOD)
    return {
        "table1_in_domain": build_table(results, TABLE1, IN_DOMAIN, "accuracy"),
        "table2_output_tokens": build_table(results, TABLE2, IN_DOMAIN, "avg_output_tokens"),
        "table3_ood": [row for d in ood for row in build_table(results, TABLE3.get(d, ()), d, "accuracy")],
    }


def _correct_by_id(path: Path, field: str = "correct") -> dict[str, bool | None]:
    """Each item's ``field`` (strict ``correct``, or an authors' scoring ``<name>_correct``: None in records
    written before it existed)."""
    from tools.evaluation.eval_files import read_records

    return {id_: record.get(field) for id_, record in read_records(path).items()}


def _images_by_id(path: Path) -> dict[str, str] | None:
    """Each item's image (``items.jsonl`` ``image``); None when a record lacks it (older records)."""
    from tools.evaluation.eval_files import read_records

    records = read_records(path)
    if any("image" not in record for record in records.values()):
        return None
    return {id_: record["image"] for id_, record in records.items()}


def cluster_ci(items_paths: tuple[Path, ...], field: str = "correct") -> tuple[float, float] | None:
    """Image-cluster bootstrap 95 % CI (%) of the accuracy (``field`` of each record: strict ``correct`` by
    default) over the items of these ``items.jsonl`` pooled; None when a record lacks its image. Computed
    once per file version (tables share rows)."""
    versions = tuple((path, path.stat().st_mtime_ns, path.stat().st_size) for path in items_paths)
    return _cluster_ci(versions, field)


@functools.cache
def _cluster_ci(versions: tuple[tuple[Path, int, int], ...], field: str) -> tuple[float, float] | None:
    from tools.evaluation.stats import cluster_bootstrap_ci

    items_paths = [path for path, _, _ in versions]
    correct: list[float] = []
    images: list[str] = []
    for path in items_paths:
        by_id, image_of = _correct_by_id(path, field), _images_by_id(path)
        if image_of is None:
            return None
        correct += [float(by_id[i]) for i in sorted(by_id)]
        images += [image_of[i] for i in sorted(by_id)]
    low, high = cluster_bootstrap_ci(correct, images)
    return low * 100, high * 100


def _cluster_cells(interval: tuple[float, float] | None) -> dict[str, Any]:
    if interval is None:
        return {"cluster_ci_low": NO_IMAGES, "cluster_ci_high": NO_IMAGES}
    return {"cluster_ci_low": interval[0], "cluster_ci_high": interval[1]}


def _paired_cluster(a: Result, b: Result, shared: Sequence[str]) -> dict[str, Any]:
    """Paired image-cluster bootstrap of accuracy A − B (in points) on the shared items."""
    from tools.evaluation.stats import paired_cluster_bootstrap

    images = _images_by_id(a.items_path) or _images_by_id(b.items_path)
    if images is None or not shared:
        return {"diff": None, "cluster_low": NO_IMAGES, "cluster_high": NO_IMAGES, "cluster_p": NO_IMAGES}
    correct_a, correct_b = _correct_by_id(a.items_path), _correct_by_id(b.items_path)
    test = paired_cluster_bootstrap(
        [correct_a[i] for i in shared], [correct_b[i] for i in shared], [images[i] for i in shared]
    )
    return {
        "diff": test.diff * 100,
        "cluster_low": test.low * 100,
        "cluster_high": test.high * 100,
        "cluster_p": test.p_value,
    }


def build_comparisons(results: Results, split: str = PAPER_SPLIT) -> list[dict[str, Any]]:
    """Exact McNemar tests and paired image-cluster bootstrap tests of the paper's key pairs on the items
    both models answered, among ``results`` (runs of one split).

    In-domain pairs are always listed (``missing`` when a side has not been evaluated; on the authors' split
    only for the sizes run there); OOD pairs only when both sides exist.
    """
    from tools.evaluation.stats import mcnemar_exact

    trained = {s for s, stage, _ in results if stage != "base"} - {API_SIZE}
    listed = set(size_order()) if split == PAPER_SPLIT else {s for s, _, _ in results} - {API_SIZE}
    sizes = sorted(trained | listed, key=lambda s: _stage_rank((s, "")))
    datasets = [IN_DOMAIN] + sorted({d for _, _, d in results} - {IN_DOMAIN})
    rows = []
    for size in sizes:
        for dataset in datasets:
            for stage_a, stage_b in COMPARISONS:
                a, b = results.get((size, stage_a, dataset)), results.get((size, stage_b, dataset))
                row: dict[str, Any] = {
                    "split": split,
                    "size": size,
                    "dataset": dataset,
                    "a": model_label(size, stage_a),
                    "b": model_label(size, stage_b),
                    "stage_a": stage_a,
                    "stage_b": stage_b,
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
                    | _paired_cluster(a, b, shared)
                )
    return rows


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def interval_cell(low: Any, high: Any) -> str:
    """``low–high`` for numbers, the reason for none otherwise (``NO_IMAGES``), empty when absent."""
    if isinstance(low, float | int) and isinstance(high, float | int):
        return f"{_num(low)}–{_num(high)}"
    return "" if low is None else str(low)


def table_markdown(
    rows: Sequence[dict[str, Any]],
    with_dataset: bool = False,
    clusters: bool = True,
    reference: tuple[str, str] = ("paper", "Paper"),
    datasets: dict[str, str] = OOD_SUBSETS,
    extra: tuple[str, str] | None = None,
) -> str:
    """Rows as markdown; ``reference``: the rows' key of the reference number and its column name;
    ``clusters``: with the image-cluster CI column (accuracy tables); ``datasets``: display names;
    ``extra``: a last column (the rows' key, its name)."""
    key, name = reference
    header = (
        ["Model"]
        + (["Dataset"] if with_dataset else [])
        + ["n", "Ours (95% CI)"]
        + (["Image-cluster 95% CI"] if clusters else [])
        + [name, f"Δ (ours − {name.split()[0].lower()})"]
        + ([extra[1]] if extra else [])
    )
    body: list[list[str]] = []
    for row in rows:
        ours = (
            MISSING
            if row["ours"] is None
            else f"{_num(row['ours'])} ({_num(row['ci_low'])}–{_num(row['ci_high'])})"
        )
        dataset = [datasets.get(row["dataset"], row["dataset"])] if with_dataset else []
        cluster = [interval_cell(row.get("cluster_ci_low"), row.get("cluster_ci_high"))] if clusters else []
        cells = [
            row["model"],
            *dataset,
            "" if row["n"] is None else str(row["n"]),
            ours,
            *cluster,
            row[key] or "—",
            _num(row["diff"], sign=True),
            *([row.get(extra[0]) or ""] if extra else []),
        ]
        body.append(cells)
    return markdown_table(header, body)


def paired_cluster_cells(row: dict[str, Any]) -> list[str]:
    """A row's paired image-cluster bootstrap (``_paired_cluster``) as two cells: A − B (95 % CI), p."""
    diff = "" if row["diff"] is None else f"{_num(row['diff'], sign=True)} "
    p_value = row["cluster_p"]
    return [
        diff + f"({interval_cell(row['cluster_low'], row['cluster_high'])})",
        f"{p_value:.4g}" if isinstance(p_value, float) else str(p_value),
    ]


def comparisons_markdown(rows: Sequence[dict[str, Any]], extra: tuple[str, str] | None = None) -> str:
    """The comparisons table; ``extra``: a further column (the rows' key, its name)."""
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
        "A − B (image-cluster 95% CI)",
        "p (image-cluster bootstrap)",
        *([extra[1]] if extra else []),
    ]
    body: list[list[str]] = []
    for row in rows:
        if row["n"] == MISSING:
            cells = [row["size"], row["dataset"], row["a"], row["b"], MISSING] + [""] * (len(header) - 5)
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
                *paired_cluster_cells(row),
                *([row.get(extra[0]) or "—"] if extra else []),
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
    from tools.evaluation import report_authors, report_runs
    from tools.evaluation.report_learning import sections as learning_sections
    from tools.evaluation.report_passk import sections as passk_sections
    from tools.evaluation.report_reasoning import sections as reasoning_sections

    out.mkdir(parents=True, exist_ok=True)
    splits = by_split(results)
    paper, authors = splits.get(PAPER_SPLIT, {}), splits.get(AUTHORS_SPLIT, {})
    tables = build_tables(paper)
    tables["comparisons"] = build_comparisons(paper) if paper or not authors else []  # as the sections
    tables |= report_authors.build(authors) if authors else {}
    tables["replicates"] = report_runs.replicate_rows(results)
    tables["seed_comparisons"] = [
        row for group in splits.values() for row in report_runs.seed_comparisons(group)
    ]
    tables["selection"] = report_runs.selection_rows(runs) if runs is not None else []
    units = None
    if compare_runs is not None and runs is not None:
        units = tables["split_units"] = report_runs.split_unit_rows(
            results, runs, collect(compare_runs), compare_runs
        )
    run_units = sorted({(s, st, report_runs.split_unit(runs, s, st)) for s, st, _ in results}) if runs else []
    for name in ("table1_in_domain", "table2_output_tokens", "table3_ood"):
        write_csv(out / f"{name}.csv", tables[name], CSV_COLUMNS)
    write_csv(
        out / "comparisons.csv",
        tables["comparisons"] + tables.get(report_authors.COMPARISONS, []),
        COMPARISON_COLUMNS,
    )
    report_authors.write_csvs(tables, out)
    plots = [
        plot_metric(
            tables["table1_in_domain"], out / "accuracy.png", "accuracy (%)", "In-domain accuracy (PathMMU)"
        ),
        plot_metric(
            tables["table2_output_tokens"], out / "output_tokens.png", "tokens", "Average output tokens"
        ),
    ]
    paper_sections = [
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
    sections = [
        "# PathVLM-R1: our runs next to the paper" + (" and the authors' 2026 results" if authors else ""),
        "Accuracy is strict (option letter and text, the paper's metric), in %; intervals are 95 % bootstrap "
        "CIs over items and, beside them, over images (image-cluster bootstrap: all questions of a drawn "
        f"image together; {report_authors.METHOD}); Δ is ours minus the reference number; `missing` marks "
        "rows we have not evaluated. A model that only stands in for one of the paper's (`tiny (stands in "
        "for …)`) gets no Δ. Each run stands beside the reference of the split it was trained on (its data "
        f"manifest's `split`): `{AUTHORS_SPLIT}` runs beside the authors' 2026 numbers, the others "
        f"({PAPER_SPLIT}) beside the paper's; runs of different splits are never compared.",
        *(paper_sections if paper or not authors else []),
        *(report_authors.sections(tables) if authors else []),
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

"""The report's optional pass@k table: every ``pathvlm eval --samples N`` folder under the runs root.

Per model and dataset: items, samples per item, temperature, and pass@k for k in ``passk.KS`` with 95 %
bootstrap CIs (``k > n`` when the folder has fewer samples than k). Recomputed from ``items.jsonl``
(each record's ``sample_correct``) and checked against ``summary.json``, so a folder whose records and
summary disagree stops the report with the file and line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.evaluation.markdown import markdown_table
from tools.evaluation.paper import model_label
from tools.evaluation.passk import KS, estimate

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


def is_sampled(summary: dict[str, Any]) -> bool:
    """A pass@k folder (``--samples N``), which Tables 1-3 must not read as greedy accuracy."""
    return summary.get("samples") is not None


def collect(runs: Path) -> list[dict[str, Any]]:
    """One row per sampled evaluation folder ``<runs>/<size>/<stage>/eval/<folder>/``, checked."""
    from tools.evaluation.eval_files import EvalFileError, check_folder

    rows, problems = [], []
    for path in sorted(runs.glob("*/*/eval/*/summary.json")):
        folder = path.parent
        try:
            summary, records = check_folder(folder)
            if not is_sampled(summary):
                continue
            counts = []
            for line_no, record in enumerate(records.values(), 1):
                if len(record.get("sample_correct", ())) != summary["samples"]:
                    raise EvalFileError(
                        f"{folder / 'items.jsonl'}:{line_no}: expected {summary['samples']} scored samples "
                        "(sample_correct), as summary.json says"
                    )
                counts.append(sum(record["sample_correct"]))
        except EvalFileError as error:
            problems.append(str(error))
            continue
        size, stage = folder.parent.parent.parent.name, folder.parent.parent.name
        row: dict[str, Any] = {
            "model": model_label(size, stage),
            "size": size,
            "stage": stage,
            "dataset": Path(summary["data"]).stem,
            "n": summary["n"],
            "samples": summary["samples"],
            "temperature": summary["temperature"],
        }
        for k, value in estimate(counts, summary["samples"]).items():
            row[f"pass@{k}"] = value["value"] * 100
            row[f"pass@{k}_ci_low"], row[f"pass@{k}_ci_high"] = (v * 100 for v in value["ci"])
        rows.append(row)
    if problems:
        raise SystemExit("pass@k folders that cannot be trusted:\n  " + "\n  ".join(problems))
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


def sections(runs: Path | None, out: Path) -> list[str]:
    """The report's pass@k section; writes ``passk.csv`` when there is one."""
    from tools.evaluation.report import write_csv

    rows = collect(runs) if runs is not None else []
    if rows:
        write_csv(out / "passk.csv", rows, COLUMNS)
    return markdown(rows)

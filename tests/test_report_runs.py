"""`pathvlm report` on replicate seeds, model selection and split units (tools/report/runs.py)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from test_report import write_eval

from tools.cli import main


def _config(runs: Path, size: str, run: str, unit: str | None = "image") -> None:
    split = "" if unit is None else f"  split_unit: {unit}\n"
    (runs / size / run / "config.yaml").write_text(f"experiment: repro\nbase_model: tiny\nrun:\n{split}")


def _report(runs: Path, out: Path, *extra: str) -> str:
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb", *extra]) == 0
    return (out / "report.md").read_text()


def test_seeds_are_aggregated_and_compared_per_matching_seed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    beta = {
        "beta": [True] * 6 + [False] * 4,
        "beta-seed43": [True] * 8 + [False] * 2,
        "beta-seed44": [True] * 7 + [False] * 3,
    }
    alpha = {"alpha": [True] * 5 + [False] * 5, "alpha-seed43": [False] * 8 + [True] * 2}
    for run, correct in {**beta, **alpha}.items():
        write_eval(runs, "7b", run, "test", correct)
        _config(runs, "7b", run)
    report = _report(runs, tmp_path / "out")
    mean, sd = statistics.mean([60.0, 80.0, 70.0]), statistics.stdev([60.0, 80.0, 70.0])
    assert f"| β-7B | test | 42, 43, 44 | {mean:.2f} ± {sd:.2f} | 42: 60.00 (" in report
    assert "| α-7B | test | 42, 43 | 35.00 ± 21.21 | 42: 50.00 (" in report
    # β vs α for the seeds both were trained with (42 and 43; 44 has no α)
    assert "| 7b | test | 42 | β-7B | α-7B | 10 | 1 | 0 |" in report
    assert "| 7b | test | 43 | β-7B | α-7B | 10 | 8 | 2 | 0.1094 | +60.00 (" in report  # + image-cluster test
    assert "| 7b | test | 44 |" not in report
    table1 = (tmp_path / "out" / "table1_in_domain.csv").read_text()
    assert "seed43" not in table1  # replicates are summarised, not listed as models of their own


def test_selection_curve_is_reported(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "alpha", "test", [True, False])
    curve = [
        {"step": 100, "accuracy": 0.25, "n": 4},
        {"step": 200, "accuracy": 0.75, "n": 4},
        {"step": 300, "accuracy": 0.5, "n": 4},
    ]
    record = {"best_step": 200, "last_step": 300, "curve": curve}
    (runs / "7b" / "alpha" / "selection.json").write_text(json.dumps(record))
    report = _report(runs, tmp_path / "out")
    assert "| 7b | alpha | 200 (75.00) | 300 (50.00) | 100: 25.0, 200: 75.0, 300: 50.0 |" in report


def test_split_units_are_marked_and_compared(tmp_path: Path) -> None:
    image, question = tmp_path / "runs", tmp_path / "runs-question"
    write_eval(image, "7b", "beta", "test", [True] * 50 + [False] * 50)
    write_eval(question, "7b", "beta", "test", [True] * 70 + [False] * 30)
    write_eval(image, "7b", "alpha", "test", [True, False])
    _config(image, "7b", "beta", None)  # recorded before split units existed: image-disjoint
    _config(question, "7b", "beta", "question")
    _config(image, "7b", "alpha", "image")
    plain = _report(image, tmp_path / "out")
    assert "7b/alpha image, 7b/beta image." in plain and "what a shared image buys" not in plain
    report = _report(image, tmp_path / "out2", "--compare-runs", str(question))
    half = 1.959964 * (0.25 / 100 + 0.21 / 100) ** 0.5 * 100
    assert (
        f"| β-7B | image | 50.00 | question | 70.00 | -20.00 ({-20 - half:+.2f}–{-20 + half:+.2f}) |"
        in report
    )
    assert "α-7B | image" not in report.split("what a shared image buys")[1]  # only stages present in both

"""The report on stand-in runs (size tiny): labelled as stand-ins, never compared with the paper, and a
"learning" section with per-step reward curves and accuracy by stage with McNemar tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from test_report import write_eval

from tools.cli import main


def test_tiny_runs_stand_in_without_a_paper_delta_and_show_learning(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "reports"
    chain = {"base": 0, "alpha": 10, "beta": 30, "r1": 30}  # correct items out of 40
    for stage, right in chain.items():
        write_eval(runs, "tiny", stage, "test", [i < right for i in range(40)])
    for stage, rows in {
        "beta": [{"reward/format": 0.5, "reward/accuracy": a / 10} for a in range(1, 9)],
        "r1": [{"reward/format": 0.9, "reward/accuracy": 0.8, "reward/process": p / 10} for p in range(5, 9)],
    }.items():
        lines = "".join(json.dumps({"step": i, **row}) + "\n" for i, row in enumerate(rows))
        (runs / "tiny" / stage / "metrics.jsonl").write_text(lines)

    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    table1 = list(csv.DictReader((out / "table1_in_domain.csv").open()))
    tiny = {row["model"]: row for row in table1 if row["size"] == "tiny"}
    assert set(tiny) == {
        "tiny (stands in for Qwen2.5-VL-7B)",
        "tiny (stands in for α-7B)",
        "tiny (stands in for β-7B)",
        "tiny (stands in for PathVLM-R1)",
    }
    assert all(row["paper"] == "" and row["diff"] == "" for row in tiny.values())
    paper_rows = [row for row in table1 if row["model"] in ("β-7B", "PathVLM-R1")]
    assert all(
        row["ours"] == "" for row in paper_rows
    )  # the paper's rows stay missing: a stand-in is not them

    report = (out / "report.md").read_text()
    section = report.split("## Learning: what each stage did (tiny)")[1]
    assert "0.250 (" in section and "0.750 (" in section  # alpha and beta accuracy with CIs
    assert "vs alpha: +20 / −0 items, p = 1.91e-06" in section  # beta vs alpha, exact McNemar
    assert "0.150 → 0.750" in section  # beta's accuracy reward, first -> last quarter
    assert "0.500 → 0.800" in section  # r1's process reward
    assert (out / "learning_tiny.png").stat().st_size > 1000
    assert "![learning_tiny](learning_tiny.png)" in report

"""`pathvlm report`: the paper's numbers verbatim, missing rows, McNemar, plots, W&B offline runs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tools.cli import main
from tools.evaluation.score import summarize

# The paper's results as DESIGN.md lists them (typed in again here, independently of
# tools/report/paper.py).
PAPER_TABLE1 = {
    "Qwen2.5-VL-3B": "44.48",
    "Qwen2.5-VL-7B": "51.55",
    "Qwen2.5-VL-32B": "54.20",
    "HuatuoGPT-Vision-7B": "53.00",
    "Gemini-1.5-Pro": "58.40",
    "α-7B": "57.59",
    "β-7B": "63.89",
    "γ-7B": "59.92",
    "δ-7B": "52.85",
    "ε-7B": "56.10",
    "α-3B": "54.58",
    "β-3B": "56.89",
    "γ-3B": "54.44",
    "δ-3B": "52.12",
    "ε-3B": "49.60",
    "PathVLM-R1": "65.55",
}
PAPER_TABLE2 = {"Qwen2.5-VL-7B": "210.04", "β-7B": "80.31", "ε-7B": "220.07", "PathVLM-R1": "94.99"}
PAPER_TABLE3 = {  # Chest CT / ISIC2020 / Retinal OCT-C8 / Diabetic Retinopathy
    "Qwen2.5-VL-3B": ("38.60", "34.59", "60.40", "64.20"),
    "Qwen2.5-VL-7B": ("48.60", "56.59", "57.19", "70.80"),
    "HuatuoGPT-Vision-7B": ("51.00", "34.20", "48.19", "62.00"),
    "γ-7B": ("40.60", "45.40", "45.80", "32.00"),
    "PathVLM-R1": ("44.00", "80.00", "49.20", "59.80"),
}
OOD = ("chest_ct_scan", "isic2020", "retinal_oct_c8", "diabetic_retinopathy")
DESIGN_MD = Path(__file__).resolve().parents[2] / "shared" / "DESIGN.md"


def write_eval(
    runs: Path,
    size: str,
    stage: str,
    dataset: str,
    correct: list[bool],
    tokens: int = 50,
    *,
    images: list[str] | None = None,
    data: Path | None = None,
    scorings: dict[str, list[bool]] | None = None,
) -> None:
    """An evaluation directory as `pathvlm eval` leaves it, for items ``q0``, ``q1``, ...; ``images``: each
    item's image (default one per item; ``[]``: records without images, as before they were kept); ``data``:
    the eval data file the summary names; ``scorings``: the authors' scorings per item (name → verdicts;
    default none, as records before them)."""
    out = runs / size / stage / "eval" / dataset
    out.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "id": f"q{i}",
            "subset": dataset,
            **({"image": images[i] if images else f"img{i}.png"} if images != [] else {}),
            "prompt_sha256": "0" * 64,
            "output": "",
            "parsed_letter": "A",
            "parsed_text": "x",
            "correct": ok,
            "letter_correct": ok,
            "output_tokens": tokens + i % 3,
            "format_ok": True,
            **{f"{name}_correct": verdicts[i] for name, verdicts in (scorings or {}).items()},
        }
        for i, ok in enumerate(correct)
    ]
    (out / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = {
        "model": f"runs/{size}/{stage}/model",
        "model_sha256": "e" * 64,
        "backend": "hf",
        "data_sha256": "f" * 64,
        "max_new_tokens": 1024,
        "temperature": 0.0,
    }
    (out / "config.json").write_text(json.dumps(config))
    meta = {**config, "dataset": dataset, **({"data": str(data)} if data else {})}
    (out / "summary.json").write_text(json.dumps(summarize(records, meta)))


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    # 7B R1 vs beta on 20 shared items (+ 1 item only R1 has): R1 alone right on 6, beta alone on 1.
    beta = [True] * 10 + [False] * 9 + [True]
    r1 = [True] * 16 + [False] * 3 + [False] + [True]
    write_eval(runs, "7b", "beta", "test", beta, tokens=80)
    write_eval(runs, "7b", "r1", "test", r1, tokens=95)
    write_eval(runs, "7b", "r1", "isic2020", [True, True, False, True])
    write_eval(runs, "3b", "r1", "test", [True, False])  # a run the paper does not report
    write_eval(runs, "7b", "base", "test", [False, True, False])  # no config.yaml: a base model
    for size, stage in (("7b", "beta"), ("7b", "r1"), ("3b", "r1")):
        (runs / size / stage / "config.yaml").write_text("experiment: repro\nbase_model: tiny\n")
    return runs


def test_tables_carry_the_paper_numbers_verbatim(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0

    table1 = rows_of(out / "table1_in_domain.csv")
    assert {r["model"]: r["paper"] for r in table1 if r["paper"]} == PAPER_TABLE1
    table2 = rows_of(out / "table2_output_tokens.csv")
    assert {r["model"]: r["paper"] for r in table2 if r["paper"]} == PAPER_TABLE2
    table3 = rows_of(out / "table3_ood.csv")
    for column, dataset in enumerate(OOD):
        paper = {r["model"]: r["paper"] for r in table3 if r["dataset"] == dataset and r["paper"]}
        assert paper == {model: values[column] for model, values in PAPER_TABLE3.items()}

    markdown = (out / "report.md").read_text()
    for model, value in PAPER_TABLE1.items():
        assert re.search(rf"\| {re.escape(model)} \|[^\n]*\| {re.escape(value)} \|", markdown), model
    for values in PAPER_TABLE3.values():
        for value in values:
            assert f"| {value} |" in markdown


@pytest.mark.skipif(not DESIGN_MD.exists(), reason="DESIGN.md is not beside the repository")
def test_every_number_in_design_md_is_in_the_report(runs: Path, tmp_path: Path) -> None:
    text = DESIGN_MD.read_text(encoding="utf-8")
    results = text[text.index("Paper results") : text.index("## Source data formats")]
    numbers = re.findall(r"\d+\.\d\d\b", results)
    assert len(numbers) == 16 + 4 + 20
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    papers = [
        r["paper"]
        for n in ("table1_in_domain", "table2_output_tokens", "table3_ood")
        for r in rows_of(out / f"{n}.csv")
    ]
    assert sorted(n for n in papers if n) == sorted(numbers)


def test_ours_next_to_paper_and_missing_rows(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    table1 = {r["model"]: r for r in rows_of(out / "table1_in_domain.csv")}
    assert len(table1) == 17  # 16 paper rows, none dropped, + R1-3B
    beta = table1["β-7B"]
    assert float(beta["ours"]) == pytest.approx(55.0)
    assert float(beta["diff"]) == pytest.approx(55.0 - 63.89)
    assert float(beta["ci_low"]) < 55.0 < float(beta["ci_high"])
    assert beta["n"] == "20"
    assert table1["PathVLM-R1"]["n"] == "21"
    assert table1["α-7B"]["ours"] == "" and table1["α-7B"]["paper"] == "57.59"
    assert table1["R1-3B"]["paper"] == "" and float(table1["R1-3B"]["ours"]) == 50.0
    table2 = {r["model"]: r for r in rows_of(out / "table2_output_tokens.csv")}
    assert float(table2["β-7B"]["ours"]) == pytest.approx(sum(80 + i % 3 for i in range(20)) / 20)

    markdown = (out / "report.md").read_text()
    assert "| α-7B |  | missing |  | 57.59 |  |" in markdown
    ci = r"\d+\.\d\d–\d+\.\d\d"
    assert re.search(rf"\| β-7B \| 20 \| 55\.00 \({ci}\) \| {ci} \| 63\.89 \| -8\.89 \|", markdown)
    assert "| R1-3B | 2 | 50.00" in markdown
    assert "| PathVLM-R1 | ISIC2020 | 4 | 75.00" in markdown
    assert "| Gemini-1.5-Pro |  | missing |  | 58.40 |  |" in markdown
    # Table 2 (tokens) has no image-cluster column.
    assert re.search(r"\| β-7B \| 20 \| 80\.\d\d \(\S+–\S+\) \| 80\.31 \| [+-]\d", markdown)


def test_mcnemar_on_shared_items(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    rows = rows_of(out / "comparisons.csv")
    r1_beta = next(r for r in rows if r["size"] == "7b" and r["dataset"] == "test" and r["a"] == "PathVLM-R1")
    # Shared q0..q19: R1 alone right on q10..q15 (6), beta alone on q19 (1): p = 2 * 8/128.
    assert (r1_beta["n"], r1_beta["only_a"], r1_beta["only_b"]) == ("20", "6", "1")
    assert float(r1_beta["p_value"]) == pytest.approx(0.125)
    assert float(r1_beta["accuracy_a"]) == pytest.approx(80.0)
    pairs = {(r["size"], r["a"], r["b"]): r["n"] for r in rows if r["dataset"] == "test"}
    for pair in [
        ("7b", "β-7B", "α-7B"),
        ("7b", "β-7B", "γ-7B"),
        ("7b", "ε-7B", "δ-7B"),
        ("3b", "R1-3B", "β-3B"),
    ]:
        assert pairs[pair] == "missing"
    assert (
        "| 7b | test | PathVLM-R1 | β-7B | 20 | 80.00 | 55.00 | 6 | 1 | 0.125 |"
        in (out / "report.md").read_text()
    )


def test_plots_are_pngs(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    for name in ("accuracy.png", "output_tokens.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in (out / "report.md").read_text()


def test_empty_runs_still_lists_the_paper(tmp_path: Path) -> None:
    out, empty = tmp_path / "reports", tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--runs", str(empty), "--out", str(out), "--no-wandb"]) == 0
    assert len(rows_of(out / "table1_in_domain.csv")) == 16
    assert (out / "report.md").read_text().count("| missing |") >= 16


@pytest.mark.slow
def test_wandb_offline_runs_hold_tables_and_metrics(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out)]) == 0

    run_dirs = {p.name.split("-", 3)[-1]: p for p in (out / "wandb").glob("offline-run-*")}
    assert set(run_dirs) == {
        "repro-7b-beta-eval",
        "repro-7b-r1-eval",
        "repro-3b-r1-eval",
        "repro-7b-base-eval",
        "repro-all-report-eval",
        # each trained stage's training run, resumed by its stable id (job type = stage)
        "repro-7b-beta-beta",
        "repro-7b-r1-r1",
        "repro-3b-r1-r1",
    }

    tables = run_dirs["repro-all-report-eval"] / "files" / "media" / "table" / "report"
    logged = {p.name.rsplit("_", 2)[0]: json.loads(p.read_text()) for p in tables.glob("*.table.json")}
    assert set(logged) == {"table1_in_domain", "table2_output_tokens", "table3_ood", "comparisons"}
    table1 = logged["table1_in_domain"]
    paper_column = table1["columns"].index("paper")
    assert [row[paper_column] for row in table1["data"]][:16] == list(PAPER_TABLE1.values())
    images = run_dirs["repro-all-report-eval"] / "files" / "media" / "images" / "report"
    assert {p.name.rsplit("_", 2)[0] for p in images.glob("*.png")} == {"accuracy", "output_tokens"}

    # Per size-stage runs: stable metric names, project/group/job type from tools.common.wandb_naming.
    r1 = next(run_dirs["repro-7b-r1-eval"].glob("*.wandb")).read_bytes()
    for key in (b"eval/in_domain/accuracy", b"eval/ood/isic2020/accuracy", b"eval/avg_output_tokens"):
        assert key in r1
    for value in (b"pathvlm-r1", b"repro", b"7b-r1-eval", b"eval"):
        assert value in r1
    # The training run gets the same evaluation summary, under the training run's own name.
    training = next(run_dirs["repro-7b-r1-r1"].glob("*.wandb")).read_bytes()
    for key in (b"eval/in_domain/accuracy", b"eval/ood/isic2020/accuracy", b"eval/avg_output_tokens"):
        assert key in training
    assert b"7b-r1-eval" not in training and b"7b-r1" in training


def test_table3_holds_ood_sets_only(runs: Path, tmp_path: Path) -> None:
    """The validation split and the authors' other benchmarks are no OOD test; a user's own OOD set is."""
    for dataset in ("validation", "pathvqa_closed", "mmmu_nonmedical_dev", "my_ood_set"):
        write_eval(runs, "7b", "r1", dataset, [True, False])
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    datasets = {row["dataset"] for row in rows_of(out / "table3_ood.csv")}
    assert "my_ood_set" in datasets and "isic2020" in datasets
    assert not datasets & {"test", "validation", "pathvqa_closed", "mmmu_nonmedical_dev"}

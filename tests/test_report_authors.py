"""`pathvlm report` on runs of the authors' 2026 split: their reference column, image-cluster CIs, no
comparison across splits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_report import rows_of, write_eval

from tools.cli import main
from tools.evaluation.stats import cluster_bootstrap_ci, paired_cluster_bootstrap
from tools.report import authors2026

# Their numbers as issue 28 lists them from final_unified_results_tables_20260814.json (typed in again,
# independently of tools/report/authors2026.py): model → (val385, test999).
AUTHORS_PATHMMU = {
    "Base Qwen2.5-VL-7B": ("50.91", "48.65"),
    "Historical full-SFT3000": ("59.74", "58.26"),
    "Historical Stage2 outcome-RL": ("61.04", "60.96"),
    "Full rule-RL n4 step1000": ("59.74", "61.16"),
    "Full rule-RL n8 step1000": ("64.16", "63.46"),
    "GPT-4o Stage3 step500": ("65.71", "64.36"),
    "GPT-4o Stage3 step1000": ("66.75", "63.96"),
    "GPT-4o Stage3 step1500": ("65.19", "63.86"),
}
AUTHORS_OMNIMEDVQA = {  # contract-aligned scoring
    "Base Qwen2.5-VL-7B": "59.00",
    "Historical full-SFT3000": "50.97",
    "Full rule-RL n4 step1000": "69.70",
    "Full rule-RL n8 step1000": "69.50",
    "GPT-4o Stage3 step1500": "75.01",
}
OOD = ("chest_ct_scan", "isic2020", "retinal_oct_c8", "diabetic_retinopathy")
# 30 test questions on 18 images (12 images carry two questions), as their 999 questions share 707 images.
IMAGES = [f"img{i % 18}.png" for i in range(30)]
BETA = [i % 3 != 0 for i in range(30)]
R1 = [i % 4 != 0 for i in range(30)]
# Per OmniMedVQA subset item: strict 3/4, the authors' contract-aligned 2/4 and official 1/4.
OOD_STRICT = [True, False, True, True]
OOD_SCORINGS = {"contract_aligned": [True, True, False, False], "official": [False, False, False, True]}


def theirs_of(label: str) -> str:
    """Their model in a row label: ``β-7B (theirs: Full rule-RL n8 step1000)``, or a reference-only row."""
    return label.split("(theirs: ")[-1].removesuffix(")")


def write_manifest(data: Path, split: str | None) -> Path:
    (data / "pathmmu" / "eval").mkdir(parents=True)
    manifest = data / "pathmmu" / "manifest.json"
    manifest.write_text(json.dumps({"seed": 0, **({"split": split} if split else {})}))
    return manifest


def trained(runs: Path, size: str, stage: str, manifest: Path) -> None:
    run = {"manifest": str(manifest), "manifest_sha256": "a" * 64, "split_unit": "image"}
    (runs / size / stage / "config.yaml").write_text(json.dumps({"experiment": "repro", "run": run}))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """7B base, β and R1 on the authors' split (val, test; the four OmniMedVQA subsets for both, with the
    authors' scorings for R1 only, as records before them; PathVQA and MMMU for R1); 7B α and 3B R1 on the
    paper-style split."""
    runs = tmp_path / "runs"
    authors = write_manifest(tmp_path / "authors", "authors-v2")
    paper = write_manifest(tmp_path / "paper", None)
    test_data = authors.parent / "eval" / "test.jsonl"
    write_eval(runs, "7b", "base", "test", [i % 2 == 0 for i in range(30)], images=IMAGES, data=test_data)
    for stage, correct in (("beta", BETA), ("r1", R1)):
        write_eval(runs, "7b", stage, "test", correct, images=IMAGES, data=test_data)
        write_eval(runs, "7b", stage, "validation", correct[:10], images=IMAGES[:10])
        trained(runs, "7b", stage, authors)
    for subset in OOD:
        images = [f"{subset}{i}" for i in range(4)]
        write_eval(runs, "7b", "r1", subset, OOD_STRICT, images=images, scorings=OOD_SCORINGS)
        write_eval(runs, "7b", "beta", subset, OOD_STRICT, images=images)
    write_eval(runs, "7b", "r1", "pathvqa_closed", [True, False, True], tokens=1023)  # 2 of 3 hit the cap
    write_eval(runs, "7b", "r1", "mmmu_nonmedical_dev", [True, False])
    write_eval(runs, "7b", "alpha", "test", BETA[:20])  # paper-style: would pair with β-7B there
    trained(runs, "7b", "alpha", paper)
    write_eval(runs, "3b", "r1", "test", [True, False])
    trained(runs, "3b", "r1", paper)
    return runs


def test_authors_split_runs_stand_beside_the_authors_numbers(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    pathmmu = rows_of(out / "authors2026_pathmmu.csv")
    for model, (val, test) in AUTHORS_PATHMMU.items():
        theirs = {r["dataset"]: r["authors_2026"] for r in pathmmu if theirs_of(r["model"]) == model}
        assert (theirs["pathmmu_val"], theirs["pathmmu_test"]) == (val, test), model
    beta = next(r for r in pathmmu if r["dataset"] == "pathmmu_test" and r["stage"] == "beta")
    assert beta["model"] == "β-7B (theirs: Full rule-RL n8 step1000)"
    assert float(beta["ours"]) == pytest.approx(20 / 30 * 100)
    assert float(beta["diff"]) == pytest.approx(20 / 30 * 100 - 63.46)
    assert beta["authors_note"] == "theirs, image-cluster: 60.49–66.47"  # their .md: [60.49%, 66.47%]
    order = sorted(range(30), key=lambda i: f"q{i}")
    low, high = cluster_bootstrap_ci([float(BETA[i]) for i in order], [IMAGES[i] for i in order])
    assert (float(beta["cluster_ci_low"]), float(beta["cluster_ci_high"])) == pytest.approx(
        (low * 100, high * 100)
    )
    base = next(r for r in pathmmu if r["dataset"] == "pathmmu_test" and r["stage"] == "base")
    assert base["ours"] != "" and base["authors_2026"] == "48.65"  # untrained: split from its eval data

    benchmarks = rows_of(out / "authors2026_benchmarks.csv")
    omni = {r["model"]: r for r in benchmarks if r["dataset"] == "omnimed_contract_aligned"}
    assert AUTHORS_OMNIMEDVQA.items() <= {theirs_of(m): r["authors_2026"] for m, r in omni.items()}.items()
    r1 = omni["PathVLM-R1 (theirs: GPT-4o Stage3 step1500)"]
    assert (r1["n"], float(r1["ours"])) == ("16", 50.0)  # the four subsets pooled, contract-aligned scoring
    assert (r1["eval_dataset"], float(r1["diff"])) == ("omnimedvqa", pytest.approx(50.0 - 75.01))
    assert float(r1["cluster_ci_low"]) <= 50.0 <= float(r1["cluster_ci_high"])
    official = next(r for r in benchmarks if r["dataset"] == "omnimed_official" and r["stage"] == "r1")
    assert (official["authors_2026"], float(official["ours"])) == ("57.18", 25.0)  # official scoring
    beta = omni["β-7B (theirs: Full rule-RL n8 step1000)"]
    assert (beta["ours"], beta["authors_2026"]) == ("", "69.50")  # records without the authors' scorings
    assert beta["authors_note"].startswith("ours: records lack `contract_aligned_correct`")
    pathvqa = next(r for r in benchmarks if r["dataset"] == "pathvqa_fixed_ab" and r["stage"] == "r1")
    assert (pathvqa["eval_dataset"], float(pathvqa["ours"])) == ("pathvqa_closed", pytest.approx(200 / 3))
    assert pathvqa["authors_note"] == "theirs: parse 98.48, cap 0.00; ours: parse 100.00, cap 66.67"
    mmmu = next(r for r in benchmarks if r["dataset"] == "mmmu_nonmedical" and r["stage"] == "r1")
    assert (mmmu["eval_dataset"], mmmu["ours"], mmmu["authors_2026"]) == (
        "mmmu_nonmedical_dev",
        "50.0",
        "54.31",
    )

    markdown = (out / "report.md").read_text()
    assert "## PathMMU accuracy (authors-v2 split; reference: the authors' 2026 results)" in markdown
    assert "| Authors 2026 | Δ (ours − authors) |" in markdown
    assert "final_unified_results_tables_20260814.json" in markdown
    # Their paired test of the same pair (Stage 3 − rule-RL n8) beside ours.
    paired = paired_cluster_bootstrap(
        [R1[i] for i in order], [BETA[i] for i in order], [IMAGES[i] for i in order]
    )
    row = re.search(r"\| 7b \| test \| PathVLM-R1 \| β-7B \| 30 \|[^\n]*", markdown).group(0)
    assert f"{paired.diff * 100:+.2f} ({paired.low * 100:.2f}–{paired.high * 100:.2f})" in row
    assert f"| {paired.p_value:.4g} |" in row
    assert row.endswith("| +0.40 (-1.82–+2.61), p 0.758 |")


def test_no_comparison_across_splits(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    table1 = {r["model"]: r for r in rows_of(out / "table1_in_domain.csv")}
    assert table1["α-7B"]["ours"] != "" and table1["R1-3B"]["ours"] != ""  # paper-style runs
    for model in ("β-7B", "PathVLM-R1", "Qwen2.5-VL-7B"):  # authors-v2 runs: not beside the paper
        assert table1[model]["ours"] == "", model
    comparisons = rows_of(out / "comparisons.csv")
    beta_alpha = [r for r in comparisons if (r["size"], r["a"], r["b"]) == ("7b", "β-7B", "α-7B")]
    assert {(r["split"], r["n"]) for r in beta_alpha} == {
        ("paper-style", "missing"),
        ("authors-v2", "missing"),
    }
    assert {r["split"] for r in comparisons} == {"paper-style", "authors-v2"}
    pathmmu = rows_of(out / "authors2026_pathmmu.csv")
    assert not [r for r in pathmmu if r["stage"] == "alpha" and r["ours"]]


def test_the_run_section_names_the_split_where_the_data_are_not(tmp_path: Path) -> None:
    """A report on another machine (no manifest, no eval data there): config.yaml's ``run.split`` decides."""
    runs = tmp_path / "runs"
    write_eval(
        runs, "7b", "beta", "test", BETA, images=IMAGES, data=tmp_path / "gone" / "eval" / "test.jsonl"
    )
    run = {"manifest": str(tmp_path / "gone" / "manifest.json"), "split": "authors-v2", "split_unit": "image"}
    (runs / "7b" / "beta" / "config.yaml").write_text(json.dumps({"experiment": "repro", "run": run}))
    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    pathmmu = rows_of(out / "authors2026_pathmmu.csv")
    beta = next(r for r in pathmmu if (r["stage"], r["dataset"]) == ("beta", "pathmmu_test"))
    assert (beta["authors_2026"], float(beta["ours"])) == ("63.46", pytest.approx(20 / 30 * 100))
    assert "## Table 1" not in (out / "report.md").read_text()


def test_paper_split_runs_keep_the_paper(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "beta", "test", BETA, images=IMAGES)
    trained(runs, "7b", "beta", write_manifest(tmp_path / "data", None))
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    markdown = (out / "report.md").read_text()
    assert "Authors 2026" not in markdown and not (out / "authors2026_pathmmu.csv").exists()
    assert (
        "## Table 1: in-domain accuracy (PathMMU test; paper-style split; reference: the paper)" in markdown
    )
    beta = next(r for r in rows_of(out / "table1_in_domain.csv") if r["model"] == "β-7B")
    assert (beta["paper"], float(beta["ours"])) == ("63.89", pytest.approx(20 / 30 * 100))
    assert float(beta["cluster_ci_low"]) < float(beta["ours"]) < float(beta["cluster_ci_high"])


def test_records_without_images_say_so(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_eval(runs, "7b", "beta", "test", BETA, images=[])
    out = tmp_path / "reports"
    main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"])
    beta = next(r for r in rows_of(out / "table1_in_domain.csv") if r["model"] == "β-7B")
    assert beta["cluster_ci_low"] == "n/a (records lack images)"
    assert "| n/a (records lack images) | 63.89 |" in (out / "report.md").read_text()


def test_readme_reference_table_is_the_module() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The authors' 2026 numbers") :]
    keys = ("pathmmu_val", "pathmmu_test", "pathvqa_fixed_ab", "omnimed_contract_aligned", "omnimed_official")
    keys += ("mmmu_nonmedical",)
    rows = {row.model: row for row in authors2026.CORE}
    seen = 0
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        model = cells[0].split(" (")[0]
        if model in rows:
            assert cells[1:] == [authors2026.percent(rows[model].values[k]) or "—" for k in keys], model
            seen += 1
    assert seen == len(rows)

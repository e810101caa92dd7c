"""Issue 28 done-when: a tiny CPU pipeline on the authors' split (`pathvlm data pathmmu --split authors-v2`
from keys derived from a fixture laid out like their split files → α on the tiny model → `pathvlm eval` →
`pathvlm report`) stands beside the authors' 2026 numbers, with image-cluster bootstrap CIs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_data_authors import _authors_folder
from test_report import rows_of

from tools.cli import main
from tools.dev.authors_split_keys import main as derive_keys
from tools.dev.synth import write_synthetic_pathmmu

pytestmark = pytest.mark.slow

ALPHA = [  # two optimizer steps, one checkpoint for model selection on the validation split
    "llamafactory.per_device_train_batch_size=8",
    "llamafactory.max_steps=2",
    "llamafactory.save_steps=2",
    "selection_max_new_tokens=8",
]


def test_tiny_pipeline_on_the_authors_split_stands_beside_their_numbers(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pathmmu = write_synthetic_pathmmu(tmp_path / "PathMMU", 90, seed=3)
    _authors_folder(pathmmu, tmp_path / "pathmmu_image_disjoint_v2")
    keys = tmp_path / "authors-v2.json"
    assert derive_keys([str(tmp_path / "pathmmu_image_disjoint_v2"), "--out", str(keys)]) == 0
    data, runs = tmp_path / "data", tmp_path / "runs"
    for name, value in {"PATHVLM_DATA": data, "PATHVLM_RUNS": runs, "PATHVLM_TINY_MODEL": tiny_model}.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    convert = ["data", "pathmmu", "--root", str(pathmmu), "--out", str(data / "pathmmu")]
    assert main([*convert, "--split", "authors-v2", "--split-keys", str(keys)]) == 0

    code = main(["run", "alpha", "--size", "tiny", "--profile", "cpu", "--set", *ALPHA])
    assert code == 0, capsys.readouterr().err[-3000:]
    config = yaml.safe_load((runs / "tiny" / "alpha" / "config.yaml").read_text())
    assert config["run"]["split"] == "authors-v2"  # the report's split of the run, without its data
    splits = [f"--data={data / 'pathmmu' / 'eval' / f'{name}.jsonl'}" for name in ("validation", "test")]
    for model in (["--model", str(runs / "tiny" / "alpha" / "model")], ["--model", str(tiny_model)]):
        assert main(["eval", *model, "--size", "tiny", *splits, "--max-new-tokens", "8"]) == 0

    out = tmp_path / "reports"
    assert main(["report", "--runs", str(runs), "--out", str(out), "--no-wandb"]) == 0
    markdown = (out / "report.md").read_text()
    assert "## PathMMU accuracy (authors-v2 split; reference: the authors' 2026 results)" in markdown
    assert "| Image-cluster 95% CI | Authors 2026 | Δ (ours − authors) |" in markdown
    assert "## Table 1" not in markdown  # no paper-style run: nothing beside the paper
    rows = rows_of(out / "authors2026_pathmmu.csv")
    reference = {(r["model"], r["dataset"]): r["authors_2026"] for r in rows}
    assert reference[("α-7B (theirs: Historical full-SFT3000)", "pathmmu_test")] == "58.26"  # test999
    assert reference[("PathVLM-R1 (theirs: GPT-4o Stage3 step1500)", "pathmmu_val")] == "65.19"  # val385
    assert reference[("Full rule-RL n4 step1000", "pathmmu_test")] == "61.16"  # a reference-only row
    ours = {(r["stage"], r["dataset"]): r for r in rows if r["size"] == "tiny"}
    assert set(ours) == {(stage, d) for stage in ("base", "alpha") for d in ("pathmmu_val", "pathmmu_test")}
    test_items = len((data / "pathmmu" / "eval" / "test.jsonl").read_text().splitlines())
    for row in ours.values():  # the stand-in beside no number of theirs, with both CIs
        assert row["authors_2026"] == "" and row["model"].startswith("tiny (stands in for ")
        low, high, ours_pct = (float(row[k]) for k in ("cluster_ci_low", "cluster_ci_high", "ours"))
        assert 0 <= low <= ours_pct <= high <= 100
    assert ours[("alpha", "pathmmu_test")]["n"] == str(test_items)
    comparisons = rows_of(out / "comparisons.csv")
    assert {r["split"] for r in comparisons} == {"authors-v2"}

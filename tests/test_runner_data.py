"""The stage runner uses only data whose files are the ones the manifest lists (sha256 per file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cli import main


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    out = tmp_path / "data" / "pathmmu"
    convert_pathmmu(write_synthetic_pathmmu(tmp_path / "src", 24), out, sizes=(8, 8))
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr("tools.train.run_spec.require_cached", lambda model, size: None)  # no hub cache here
    return out


def _mix(out: Path) -> None:
    """What an interrupted conversion with another seed used to leave: a new sft.json, the old manifest."""
    rows = json.loads((out / "llamafactory" / "sft.json").read_text())
    (out / "llamafactory" / "sft.json").write_text(json.dumps(rows[::-1]))


@pytest.mark.parametrize("stage", ["alpha", "epsilon"])
def test_runner_refuses_data_that_differs_from_its_manifest(data: Path, stage: str, capsys) -> None:
    args = ["run", stage, "--size", "7b", "--profile", "h20x4"]
    assert main([*args, "--dry-run"]) == 0
    assert "is not what its manifest lists" not in capsys.readouterr().out
    _mix(data) if stage == "alpha" else (data / "easyr1" / "rl.jsonl").write_text("")
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"# note: the data in {data} is not what its manifest lists:" in out
    assert f"pathvlm data check {data}" in out
    assert main(args) == 2
    err = capsys.readouterr().err
    changed = "llamafactory/sft.json" if stage == "alpha" else "easyr1/rl.jsonl"
    assert f"{data / changed}: changed since the conversion (sha256 differs)" in err
    assert f"convert the data again, then check it:\n  pathvlm data check {data}" in err


def test_runner_refuses_a_manifest_without_file_hashes(data: Path, capsys) -> None:
    manifest = json.loads((data / "manifest.json").read_text())
    del manifest["files"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert main(["run", "alpha", "--size", "7b", "--profile", "h20x4"]) == 2
    assert (
        "no 'files' list (written before file hashes were recorded): convert again" in capsys.readouterr().err
    )


def _lengths(data_dir: Path, model: Path) -> list[int]:
    from transformers import AutoProcessor

    from tools.common.grpo_rows import load_rows, prompt_length

    processor = AutoProcessor.from_pretrained(model)
    rows = load_rows({"train_files": str(data_dir / "easyr1" / "rl.jsonl"), "max_pixels": 401408})
    return [prompt_length(processor, row) for row in rows]


def test_data_check_counts_prompts_easyr1_would_drop(data: Path, tiny_model: Path, capsys) -> None:
    lengths = sorted(_lengths(data, tiny_model))
    limit = lengths[len(lengths) // 2]
    args = ["data", "check", str(data), "--model", str(tiny_model), "--max-pixels", "401408"]
    assert main([*args, "--max-prompt-length", str(limit)]) == 0
    dropped = sum(n > limit for n in lengths)
    assert 0 < dropped < 8, lengths
    assert f"filter_overlong_prompts: {dropped} of 8 prompts are longer than max_prompt_length={limit}" in (
        capsys.readouterr().out
    )
    assert main([*args, "--max-prompt-length", "100000"]) == 0
    assert (
        f"max_prompt_length=100000 tokens and are dropped (longest: {lengths[-1]})" in capsys.readouterr().out
    )


def test_runner_announces_overlong_prompts_and_tags_wandb(
    data: Path, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    from tools.train.prelaunch import announce_overlong
    from tools.train.runner import RunError, make_plan

    lengths = sorted(_lengths(data, tiny_model))
    limit = lengths[0]
    assert limit < lengths[-1], lengths
    overrides = [f"base_model={tiny_model}", f"easyr1.data.max_prompt_length={limit}"]
    plan = make_plan("epsilon", "7b", "h20x4", tmp_path / "runs", overrides)
    announce_overlong(plan.cfg, plan.env)
    dropped = sum(n > limit for n in lengths)
    assert f"filter_overlong_prompts: {dropped} of 8 prompts" in capsys.readouterr().out
    assert plan.env["WANDB_TAGS"].endswith(f",overlong-prompts-{dropped}")
    plan = make_plan(
        "epsilon",
        "7b",
        "h20x4",
        tmp_path / "runs",
        [f"base_model={tiny_model}", "easyr1.data.max_prompt_length=8"],
    )
    with pytest.raises(RunError, match="every prompt is longer than easyr1.data.max_prompt_length=8"):
        announce_overlong(plan.cfg, plan.env)


def test_run_section_records_the_split_the_manifest_names(data: Path, tmp_path: Path) -> None:
    """`split: authors-v2` goes into config.yaml's run section (the report reads it where the data are not);
    our seeded split records none, so the config hash of runs on it stays as it was."""
    from tools.train.runner import make_plan

    assert "split" not in make_plan("alpha", "7b", "h20x4", tmp_path / "runs", []).cfg["run"]
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps(manifest | {"split": "authors-v2"}))
    assert make_plan("alpha", "7b", "h20x4", tmp_path / "runs", []).cfg["run"]["split"] == "authors-v2"

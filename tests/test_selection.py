"""Model selection on the validation split: the best kept checkpoint is exported, ties go to the earliest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from tools.cli import main as cli_main
from tools.evaluation.selection import best_step


@pytest.mark.parametrize(
    ("accuracies", "best"),
    [
        ({10: 0.2, 20: 0.5, 30: 0.4}, 20),
        ({10: 0.5, 20: 0.5, 30: 0.1}, 10),  # tie: the earliest
        ({10: 0.0, 20: 0.0}, 10),
        ({30: 0.9, 10: 0.1}, 30),  # order of the curve does not matter
    ],
)
def test_best_step_is_the_highest_then_earliest(accuracies: dict[int, float], best: int) -> None:
    assert best_step([{"step": s, "accuracy": a} for s, a in accuracies.items()]) == best


def test_no_checkpoint_is_an_error() -> None:
    with pytest.raises(ValueError, match="no checkpoint"):
        best_step([])


@pytest.fixture
def data(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The smoke's 200 sft items and, as the validation split, 16 test items with their true answers."""
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    root = tmp_path / "data" / "pathmmu"
    convert_pathmmu(write_synthetic_pathmmu(tmp_path / "src", 240), root, sizes=(200, 8))
    rows = [json.loads(line) for line in (root / "eval" / "test.jsonl").read_text().splitlines()][:16]
    _write_validation(root, rows)
    for name, value in {
        "PATHVLM_DATA": tmp_path / "data",
        "PATHVLM_RUNS": tmp_path / "runs",
        "PATHVLM_TINY_MODEL": tiny_model,
        "WANDB_DIR": tmp_path,
    }.items():
        monkeypatch.setenv(name, str(value))
    return root


def _write_validation(root: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as the validation split, listed in the manifest as if the conversion had written them."""
    from tools.common.manifest import file_hashes

    path = root / "eval" / "validation.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"] = file_hashes(root)
    (root / "manifest.json").write_text(json.dumps(manifest))


def _outputs(stage: Path, step: int) -> dict[str, str]:
    """What checkpoint ``step`` answered on each validation item (its selection evaluation)."""
    items = stage / "selection" / f"step-{step}" / "validation" / "items.jsonl"
    return {r["id"]: r["output"] for r in map(json.loads, items.read_text().splitlines())}


def gold_against_the_last(
    rows: list[dict[str, Any]], outputs: dict[int, dict[str, str]]
) -> tuple[list[dict[str, Any]], int]:
    """``rows`` with each answer replaced: an option that an earlier checkpoint's output scores as correct
    and the last's does not (the earliest such checkpoint's), else any option the last's output misses.

    Scored with the evaluation's own ``score``; returns the rows and how many items an earlier
    checkpoint gets right (so the last scores 0 and, if that count is > 0, some earlier one scores more).
    """
    from tools.evaluation.score import score

    *earlier, last = sorted(outputs)
    new_rows, won = [], 0
    for row in rows:
        missed = [o for o in row["options"] if not score(outputs[last][row["id"]], o)["correct"]]
        right = [o for step in earlier for o in missed if score(outputs[step][row["id"]], o)["correct"]]
        won += bool(right)
        new_rows.append({**row, "answer": (right or missed)[0]})
    return new_rows, won


@pytest.mark.slow
def test_alpha_exports_the_best_validation_checkpoint_not_the_last(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two identical seeded alpha runs. The first (true validation answers) shows what every checkpoint
    answers; the second is validated on gold answers that an earlier checkpoint gives and the last one
    does not, so its best checkpoint is not the last, and exporting the last would fail here."""
    from safetensors.torch import load_file

    # a checkpoint every 120 steps and the final one (cpu profile: 250 steps): each costs two evaluations
    command = ["run", "alpha", "--profile", "cpu", "--set", "llamafactory.save_steps=120"]
    assert cli_main(command) == 0, capsys.readouterr().out[-3000:]
    first = tmp_path / "runs" / "tiny" / "alpha"
    steps = [point["step"] for point in json.loads((first / "selection.json").read_text())["curve"]]
    sft = OmegaConf.load(first / "config.yaml").llamafactory  # the cpu profile's epochs and batch
    last = 200 // sft.per_device_train_batch_size * int(sft.num_train_epochs)
    periodic = range(sft.save_steps, last + 1, sft.save_steps)
    assert steps == sorted({*periodic, last})  # every periodic checkpoint and the final one
    rows = [json.loads(line) for line in (data / "eval" / "validation.jsonl").read_text().splitlines()]
    rows, won = gold_against_the_last(rows, {step: _outputs(first, step) for step in steps})
    assert won > 0, "premise: no earlier checkpoint gave a valid answer the last one does not give"
    _write_validation(data, rows)
    shutil.rmtree(tmp_path / "wandb")  # what W&B holds below comes from the second run
    capsys.readouterr()

    runs = tmp_path / "runs2"
    code = cli_main([*command, "--runs", str(runs)])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    stage = runs / "tiny" / "alpha"
    for step in steps:  # premise: the seeded training is reproducible, so the answers above hold here
        assert _outputs(stage, step) == _outputs(first, step), step
    record = json.loads((stage / "selection.json").read_text())
    assert [point["step"] for point in record["curve"]] == steps
    accuracies = {point["step"]: point["accuracy"] for point in record["curve"]}
    assert accuracies[last] == 0.0 and sum(accuracies.values()) * len(rows) >= won  # as built above
    best = record["best_step"]
    assert best == min(steps, key=lambda s: (-accuracies[s], s))  # the highest, ties to the earliest
    assert best != record["last_step"] == last and accuracies[best] > accuracies[last]
    assert record["data"] == str((data / "eval" / "validation.jsonl").resolve())
    assert not (stage / "eval").exists()  # the test split is never read for selection
    exported = load_file(stage / "model" / "model.safetensors")
    chosen = load_file(stage / "checkpoints" / f"checkpoint-{best}" / "model.safetensors")
    final = load_file(stage / "checkpoints" / "model.safetensors")
    assert all((exported[k] == chosen[k]).all() for k in chosen)
    assert any((exported[k] != final[k]).any() for k in final)
    config = (stage / "config.yaml").read_text()
    assert (
        "save_total_limit: null" in config
        and f"selection_data: {data / 'eval' / 'validation.jsonl'}" in config
    )
    assert f"selection: exporting step {best} of {steps}" in out
    logged = [p for p in tmp_path.glob("wandb/offline-run-*-smoke-cpu-tiny-alpha-alpha/*.wandb")]
    assert any(b"selection/best_step" in p.read_bytes() for p in logged)  # the curve in the stage's W&B run

"""Model selection on the validation split: the best kept checkpoint is exported, ties go to the earliest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cli import main as cli_main
from tools.train.selection import best_step


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
    """The smoke's 200 sft items, and a validation file whose answers are all wrong on purpose.

    Every validation answer is another option than the true one, so the better alpha learns the (learnable)
    synthetic data, the lower its validation accuracy once it answers well-formed: the curve rises while the
    format is learnt, then falls, and the best checkpoint is not the last one.
    """
    from tools.data.pathmmu import convert_pathmmu
    from tools.data.staging import file_hashes
    from tools.dev.synth import write_synthetic_pathmmu

    root = tmp_path / "data" / "pathmmu"
    convert_pathmmu(write_synthetic_pathmmu(tmp_path / "src", 240), root, sizes=(200, 8))
    rows = [json.loads(line) for line in (root / "eval" / "test.jsonl").read_text().splitlines()][:16]
    with (root / "eval" / "validation.jsonl").open("w") as handle:
        for row in rows:
            row["answer"] = next(option for option in row["options"] if option != row["answer"])
            handle.write(json.dumps(row) + "\n")
    manifest = json.loads((root / "manifest.json").read_text())  # as if the conversion had written it
    manifest["files"] = file_hashes(root)
    (root / "manifest.json").write_text(json.dumps(manifest))
    for name, value in {
        "PATHVLM_DATA": tmp_path / "data",
        "PATHVLM_RUNS": tmp_path / "runs",
        "PATHVLM_TINY_MODEL": tiny_model,
        "WANDB_DIR": tmp_path,
    }.items():
        monkeypatch.setenv(name, str(value))
    return root


@pytest.mark.slow
@pytest.mark.xfail(
    reason="after the issue-12 merge every checkpoint scores 0.0 on the adversarial validation file, so the "
    "curve is flat and the best is not distinct from the last; the fixture needs a new premise (issue 19)",
    strict=False,
)
def test_alpha_exports_the_best_validation_checkpoint_not_the_last(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    code = cli_main(["run", "alpha", "--profile", "cpu", "--set", "llamafactory.save_steps=40"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    stage = tmp_path / "runs" / "7b" / "alpha"
    record = json.loads((stage / "selection.json").read_text())
    steps = [point["step"] for point in record["curve"]]
    assert steps == [
        40,
        80,
        120,
        160,
        200,
    ]  # every periodic checkpoint kept and evaluated, and the final model
    accuracies = {point["step"]: point["accuracy"] for point in record["curve"]}
    best = record["best_step"]
    assert best == min(steps, key=lambda s: (-accuracies[s], s)) and best != record["last_step"] == 200
    assert accuracies[best] > accuracies[200]
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
    logged = [p for p in tmp_path.glob("wandb/offline-run-*-smoke-cpu-7b-alpha-alpha/*.wandb")]
    assert any(b"selection/best_step" in p.read_bytes() for p in logged)  # the curve in the stage's W&B run

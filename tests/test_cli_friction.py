"""What a new user meets first: a dry run says something at once, verdicts on stdout, help that matches what a
command accepts, a suggested --sizes, W&B files beside the run, a warning when GRPO has no reward to learn
from, and a console without INFO records."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tools.cli import main
from tools.train import runner
from tools.train.engines.loss_guard import RewardWatch
from tools.train.process import QuietInfo, run_logged


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.synth import write_synthetic_pathmmu

    convert_pathmmu(
        write_synthetic_pathmmu(tmp_path / "src", 24), tmp_path / "data" / "pathmmu", sizes=(8, 8)
    )
    monkeypatch.setenv("PATHVLM_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_run_prints_a_line_before_composing(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    seen = []

    def plan(*args, **kwargs):
        seen.append(capsys.readouterr().err)
        raise runner.RunError("stop here")

    monkeypatch.setattr(runner, "make_plan", plan)
    assert main(["run", "alpha", "--profile", "cpu", "--dry-run"]) == 2
    assert seen and seen[0].startswith("pathvlm run alpha: composing the recipe (tiny, cpu)")


def test_dry_run_puts_wandb_files_under_the_stage(
    data_env: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("WANDB_DIR", raising=False)
    assert main(["run", "beta", "--profile", "h20x4", "--dry-run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"WANDB_DIR={(data_env / 'runs' / '7b' / 'beta').resolve()} " in last
    monkeypatch.setenv("WANDB_DIR", "/elsewhere")
    assert main(["run", "beta", "--profile", "h20x4", "--dry-run"]) == 0
    assert "WANDB_DIR" not in capsys.readouterr().out.strip().splitlines()[-1]  # the user's own is kept


def test_data_check_verdict_is_on_stdout(data_env: Path, capsys) -> None:
    folder = data_env / "data" / "pathmmu"
    assert main(["data", "check", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == f"{folder}: OK"
    (folder / "eval" / "test.jsonl").write_text("")
    assert main(["data", "check", str(folder)]) == 1
    out = capsys.readouterr()
    assert "problem(s)" in out.out and "test.jsonl" in out.err


def test_too_few_items_suggests_sizes(data_env: Path, capsys) -> None:
    command = ["data", "pathmmu", "--root", str(data_env / "src"), "--out", str(data_env / "o")]
    assert main(command) == 2
    assert "e.g. --sizes 9,3" in capsys.readouterr().err
    assert main([*command, "--val", "385"]) == 2
    assert "--sizes 8,2 --val 1" in capsys.readouterr().err


def test_eval_all_help_shows_only_what_it_accepts(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval-all", "--help"])
    text = capsys.readouterr().out
    assert "openai" not in text and "--out DIR" not in text and "--samples" not in text
    assert text.count("pathvlm eval-all --size S") == 1
    with pytest.raises(SystemExit):
        main(["eval-all", "--size", "7b", "--backend", "openai"])
    assert "invalid choice: 'openai'" in capsys.readouterr().err


def _log(step: int, reward: float) -> tuple[SimpleNamespace, dict[str, float]]:
    return SimpleNamespace(global_step=step), {"loss": 0.0, "reward": reward}


@pytest.mark.parametrize(("rewards", "warned"), [([0.0] * 6, True), ([0.0] * 4 + [0.25, 0.0], False)])
def test_grpo_without_any_reward_is_warned_once(rewards: list[float], warned: bool, capsys) -> None:
    watch = RewardWatch(k=5)
    for step, reward in enumerate(rewards, 1):
        state, logs = _log(step, reward)
        watch.on_log(None, state, None, logs=logs)
    err = capsys.readouterr().err
    assert err.count("warning: the reward is 0 on all of the first 5 steps (up to step 5)") == int(warned)


def test_console_leaves_out_info_records_that_the_log_keeps(tmp_path: Path, capsys) -> None:
    lines = [
        "[INFO|configuration_utils.py:770] 2026 >> Model config Qwen2_5_VLConfig {",
        '  "hidden_size": 64,',
        "}",
        "",
        "[INFO|processing_utils.py:1] >> Processor:",
        "- image_processor: Qwen2VLImageProcessorFast {",
        "\t880: AddedToken(...)",
        ")",
        "[WARNING|trainer.py:906] 2026 >> The model is already on multiple devices.",
        " 50%|#####     | 1/2 [00:00<00:00,  2.47it/s]",
        "{'loss': 6.7588, 'grad_norm': 1.93, 'learning_rate': 0.0, 'epoch': 0.25}",
        "[INFO|2026-12-07 01:32:01] llamafactory.data.loader:143 >> Loading dataset",
        "params: trainable 10 of 20",
    ]
    script = "import sys; sys.stdout.write(sys.argv[1])"
    log = tmp_path / "train.log"
    assert run_logged([sys.executable, "-c", script, "\n".join(lines) + "\n"], {}, log) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown == [lines[8], lines[9], lines[10], lines[12]]
    assert log.read_text().splitlines() == lines


def test_quiet_info_shows_every_line_without_records() -> None:
    console = QuietInfo()
    assert all(console.shown(line) for line in ["resuming from checkpoint-4", "  indented", "", "}"])

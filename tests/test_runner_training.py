"""`pathvlm run` trains every stage for real in the cpu profile (tiny model, synthetic data, small `--set`s).

alpha → beta → r1 (r1 against the fake judge), the controls gamma, delta, epsilon; re-runs are no-ops, a
changed config is refused, a killed run resumes from its checkpoint, and the vision tower never changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tools.cli import main as cli_main
from tools.recipe.run import Run

pytestmark = pytest.mark.slow

SFT = [  # 16 items, 8 per step, 2 epochs: 4 steps
    "llamafactory.per_device_train_batch_size=8",
    "llamafactory.gradient_accumulation_steps=1",
    "llamafactory.max_steps=-1",
    "llamafactory.num_train_epochs=2",
    "llamafactory.save_steps=2",
]
GRPO = [  # 2 prompts x 4 completions of at most 16 tokens per step
    "easyr1.data.max_response_length=16",
    "easyr1.data.rollout_batch_size=2",
    "easyr1.worker.actor.global_batch_size=2",
    "easyr1.worker.actor.micro_batch_size_per_device_for_update=8",
    "easyr1.worker.actor.micro_batch_size_per_device_for_experience=8",
    "easyr1.worker.actor.model.enable_gradient_checkpointing=false",
    "easyr1.trainer.save_freq=1",
]
OVERRIDES = {
    "alpha": SFT,
    "gamma": SFT,
    "delta": SFT,
    "beta": [*GRPO, "easyr1.trainer.max_steps=2"],
    "r1": [*GRPO, "easyr1.trainer.max_steps=2"],
    "epsilon": [*GRPO, "easyr1.trainer.max_steps=12", "easyr1.trainer.save_limit=-1"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Synthetic PathMMU, an empty runs directory, the tiny model (``pathvlm tiny-model``), the fake judge."""
    from tools.data.pathmmu import convert_pathmmu
    from tools.dev.judge_server import JudgeServer
    from tools.dev.synth import write_synthetic_pathmmu

    root = tmp_path_factory.mktemp("pipeline")
    assert cli_main(["tiny-model", "--out", str(root / "tiny")]) == 0
    convert_pathmmu(write_synthetic_pathmmu(root / "src", 40), root / "data" / "pathmmu", sizes=(16, 8))
    with JudgeServer() as judge, pytest.MonkeyPatch.context() as env:
        for name, value in {
            "PATHVLM_DATA": root / "data",
            "PATHVLM_RUNS": root / "runs",
            "PATHVLM_TINY_MODEL": root / "tiny",
            "PATHVLM_JUDGE_PORT": judge.port,
            "PATHVLM_JUDGE_CACHE": root / "judge-cache",
            "WANDB_DIR": root,
        }.items():
            env.setenv(name, str(value))
        yield root


def run(stage: str, *extra: str) -> list[str]:
    return ["run", stage, "--size", "tiny", "--profile", "cpu", "--set", *OVERRIDES[stage], *extra]


def train(stage: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = cli_main(run(stage))
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:] + captured.err[-3000:]
    return captured.out


def stage_dir(workdir: Path, stage: str) -> Path:
    return workdir / "runs" / "tiny" / stage


def tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def metrics(workdir: Path, stage: str) -> list[dict]:
    lines = (stage_dir(workdir, stage) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_alpha_trains_the_tiny_model_and_exports_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = train("alpha", capsys)
    run_dir = stage_dir(workdir, "alpha")
    assert "-m tools.train.engines.sft_train" in out and "tiny/alpha done in" in out
    config_text = (run_dir / "config.yaml").read_text()
    config = yaml.safe_load(config_text)
    assert (run_dir / "DONE").read_text().strip() in config_text  # the header's config hash
    manifest = workdir / "data" / "pathmmu" / "manifest.json"
    assert config["run"]["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert config["llamafactory"]["bf16"] is False and "deepspeed" not in config["llamafactory"]
    exported = json.loads((run_dir / "model" / "config.json").read_text())
    assert exported["model_type"] == "qwen2_5_vl" and "text_config" not in exported
    losses = [row["loss"] for row in metrics(workdir, "alpha") if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert list(workdir.glob("wandb/offline-run-*-smoke-cpu-tiny-alpha-alpha"))  # W&B run id (wandb_naming)


def test_rerun_of_a_finished_stage_is_a_no_op(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = stage_dir(workdir, "alpha") / "DONE"
    before = done.stat().st_mtime_ns
    out = train("alpha", capsys)
    assert "tiny/alpha is already done with config" in out and "skipping" in out
    assert "tools.train.engines.sft_train" not in out and done.stat().st_mtime_ns == before


def test_changed_config_is_refused_unless_forced(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = (stage_dir(workdir, "alpha") / "DONE").read_text().strip()
    assert cli_main(run("alpha", "llamafactory.learning_rate=0.002")) == 2
    err = capsys.readouterr().err
    assert f"finished run with config hash {old}" in err and "--force" in err
    new = err.split("recipe now gives ")[1][:64]
    assert len(new) == 64 and new != old
    assert (stage_dir(workdir, "alpha") / "DONE").read_text().strip() == old

    assert cli_main(run("alpha", "llamafactory.learning_rate=0.002", "--force")) == 0
    assert f"--force: deleting {stage_dir(workdir, 'alpha')}" in capsys.readouterr().out
    assert (stage_dir(workdir, "alpha") / "DONE").read_text().strip() == new


def test_beta_then_r1_train_from_their_parents_and_log_rewards(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for stage, parent in (("beta", "alpha"), ("r1", "beta")):
        out = train(stage, capsys)
        assert "-m tools.train.engines.trl_grpo" in out
        config = yaml.safe_load((stage_dir(workdir, stage) / "config.yaml").read_text())
        assert config["run"]["init_model"] == str(stage_dir(workdir, parent) / "model")
        assert (
            config["run"]["parent_config_hash"] == (stage_dir(workdir, parent) / "DONE").read_text().strip()
        )
    steps = [row for row in metrics(workdir, "beta") if "reward/format" in row]
    assert len(steps) == 2 and all("reward/accuracy" in row for row in steps)
    steps = [row for row in metrics(workdir, "r1") if "reward/format" in row]
    assert len(steps) == 2 and all({"reward/accuracy", "reward/process"} <= row.keys() for row in steps)
    judge = yaml.safe_load((stage_dir(workdir, "r1") / "config.yaml").read_text())["easyr1"]["worker"][
        "reward"
    ]
    judge = judge["reward_function_kwargs"]["judge"]
    assert judge["base_url"] == f"http://127.0.0.1:{os.environ['PATHVLM_JUDGE_PORT']}/v1"
    assert judge["api_key_env"] is None and "api_key" not in judge  # the fake judge needs no key
    assert f"judge 'gpt-4o' at {judge['base_url']} answered in" in out  # the check before training


def test_killed_run_resumes_from_its_checkpoint(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """epsilon (GRPO from the base model, one checkpoint per step) is killed with its whole process group."""
    checkpoints = stage_dir(workdir, "epsilon") / "checkpoints"
    log = workdir / "epsilon-killed.log"
    with log.open("w") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", *run("epsilon")], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 600
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert runner.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.1)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert not (stage_dir(workdir, "epsilon") / "DONE").exists()
    step = max(
        int(path.parent.name.split("-")[1]) for path in checkpoints.glob("checkpoint-*/trainer_state.json")
    )
    assert step < 12, "killed too late to prove anything"

    out = train("epsilon", capsys)
    assert f"resuming from checkpoint {checkpoints}/checkpoint-{step} (step {step})" in out
    steps = [row["step"] for row in metrics(workdir, "epsilon") if "reward/format" in row]
    assert steps == list(range(1, 13))  # the steps before the kill come from the checkpoint, none twice
    assert (stage_dir(workdir, "epsilon") / "DONE").is_file()


def test_sigusr1_checkpoints_and_stops_then_resumes(workdir: Path) -> None:
    """SLURM's warning before the time limit (SIGUSR1 to the runner) makes the TRL engine save a checkpoint
    at the end of the current step and stop; the stage is not DONE and the next run resumes from there."""

    runs = workdir / "signal-runs"
    args = [*run("epsilon", "easyr1.trainer.save_freq=100"), "--runs", str(runs)]  # no periodic checkpoint
    runner = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], stdout=subprocess.DEVNULL)
    train_log, deadline = Run(runs, "tiny", "epsilon").train_log, time.monotonic() + 600
    while not (train_log.exists() and "'reward/format'" in train_log.read_text()):
        assert runner.poll() is None and time.monotonic() < deadline, "no training step logged"
        time.sleep(0.1)
    runner.send_signal(signal.SIGUSR1)
    assert runner.wait(timeout=300) != 0
    checkpoints = sorted((runs / "tiny" / "epsilon" / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert len(checkpoints) == 1 and f"stopped by signal {int(signal.SIGUSR1)}" in train_log.read_text()
    assert not (runs / "tiny" / "epsilon" / "DONE").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True, check=True
    ).stdout
    assert f"resuming from checkpoint {checkpoints[0].parent}" in resumed
    assert (runs / "tiny" / "epsilon" / "DONE").is_file()


def test_sigusr1_checkpoints_llamafactory_at_the_step_it_reached_then_resumes(workdir: Path) -> None:
    """The same warning for LLaMA-Factory (alpha), with periodic saves off: our entry point's trainer
    callback saves checkpoint-N of the step training reached and exits; the stage is not DONE and the next
    run resumes from checkpoint-N."""

    runs = workdir / "usr1-sft-runs"
    # 60 steps: the stop lands at step 2-3, however fast the tiny model trains (20 steps a second unloaded)
    sft = [*SFT[:-1], "llamafactory.save_steps=1000", "llamafactory.num_train_epochs=30"]
    args = ["run", "alpha", "--size", "tiny", "--profile", "cpu", "--runs", str(runs), "--set", *sft]
    stage = runs / "tiny" / "alpha"
    runner = subprocess.Popen([sys.executable, "-m", "tools.cli", *args], stdout=subprocess.DEVNULL)
    progress, deadline = stage / "checkpoints" / "trainer_log.jsonl", time.monotonic() + 600
    while not (progress.exists() and len(progress.read_text().splitlines()) >= 2):  # LLaMA-Factory's log
        assert runner.poll() is None and time.monotonic() < deadline, "no training step logged"
        time.sleep(0.1)
    runner.send_signal(signal.SIGUSR1)
    assert runner.wait(timeout=300) != 0
    states = list((stage / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert len(states) == 1, "exactly the checkpoint of the stop request"
    step = json.loads(states[0].read_text())["global_step"]
    assert states[0].parent.name == f"checkpoint-{step}" and 2 <= step < 60
    log = Run.at(stage).train_log.read_text()
    assert f"stopped by signal {int(signal.SIGUSR1)} after step {step}" in log
    assert not (stage / "DONE").exists() and not (stage / "checkpoints" / "config.json").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], capture_output=True, text=True, check=True
    ).stdout
    assert f"resuming from {states[0].parent}" in resumed
    assert (stage / "DONE").is_file()


@pytest.mark.parametrize("stage", ["alpha", "beta", "r1", "gamma", "delta", "epsilon"])
def test_vision_tower_stays_frozen(workdir: Path, capsys: pytest.CaptureFixture[str], stage: str) -> None:
    """The engine trained every parameter but the vision tower's, and the exported vision weights are the
    initial ones (the language model's did change)."""
    import torch

    if not (stage_dir(workdir, stage) / "DONE").is_file():
        train(stage, capsys)
    run_dir = stage_dir(workdir, stage)
    init = Path(yaml.safe_load((run_dir / "config.yaml").read_text())["run"]["init_model"])
    before, after = tensors(init), tensors(run_dir / "model")
    assert before.keys() == after.keys()
    vision = {key for key in before if key.startswith("visual.")}
    assert vision and all(torch.equal(before[key], after[key]) for key in vision)
    assert any(not torch.equal(before[key], after[key]) for key in before.keys() - vision)
    params = json.loads((run_dir / "params.json").read_text())
    assert params["total"] == sum(value.numel() for value in before.values())
    assert params["trainable"] == params["total"] - sum(before[key].numel() for key in vision)

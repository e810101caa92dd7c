"""The cluster path without a GPU: EasyR1's checkpoints, metrics across attempts and stop on SLURM's warning,
EasyR1's batch rules for the job's world size, and multi-node SFT where only node rank 0 writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.recipe.compose import compose, to_container
from tools.recipe.registry import RecipeError
from tools.recipe.run import Run
from tools.recipe.validate import validate
from tools.train import runner
from tools.train.engines import easyr1, llamafactory


def _save(checkpoints: Path, step: int) -> None:
    """What EasyR1's ``_save_checkpoint`` leaves for one step: actor/, dataloader.pt, then the tracker."""
    folder = checkpoints / f"global_step_{step}"
    (folder / "actor").mkdir(parents=True)
    (folder / easyr1.DATALOADER_STATE).write_bytes(b"state")
    (checkpoints / easyr1.TRACKER).write_text(json.dumps({"last_global_step": step, "best_global_step": 20}))


@pytest.mark.parametrize(("save_limit", "survives"), [(2, False), (None, True)])
def test_job_killed_while_easyr1_saves_keeps_the_tracked_checkpoint(
    tmp_path: Path, save_limit: int | None, survives: bool
) -> None:
    """EasyR1 deletes old checkpoints before writing the next and keeps the first as "best" (validation off).
    With save_limit 2 a kill during the save at step 60 leaves the tracker naming a deleted step; the
    profile's limit (None: the h20x4 recipe's) keeps it."""
    from verl.utils.checkpoint import remove_obsolete_ckpt

    trainer = to_container(compose("beta", "7b", "h20x4"))["easyr1"]["trainer"]
    limit = save_limit if save_limit is not None else trainer["save_limit"]
    checkpoints = tmp_path / "checkpoints"
    for step in (20, 40):
        remove_obsolete_ckpt(str(checkpoints), step, 20, limit)
        _save(checkpoints, step)
    remove_obsolete_ckpt(str(checkpoints), 60, 20, limit)  # then the job is killed while saving step 60
    (checkpoints / "global_step_60" / "actor").mkdir(parents=True)

    if survives:
        assert easyr1.check_tracked_checkpoint(checkpoints) == checkpoints / "global_step_40"
        return
    with pytest.raises(FileNotFoundError, match="would silently train from step 0") as error:
        easyr1.check_tracked_checkpoint(checkpoints)
    fix = next(line.strip() for line in str(error.value).splitlines() if line.strip().startswith("printf"))
    assert "global_step_20" in str(error.value)
    subprocess.run(["bash", "-c", fix], check=True)  # the recovery command it names works
    assert easyr1.check_tracked_checkpoint(checkpoints) == checkpoints / "global_step_20"


def test_missing_tracked_checkpoint_with_nothing_left_says_how_to_start_over(tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / easyr1.TRACKER).write_text(json.dumps({"last_global_step": 100}))
    with pytest.raises(FileNotFoundError, match=f"rm {checkpoints / easyr1.TRACKER}"):
        easyr1.check_tracked_checkpoint(checkpoints)


def test_easyr1_stage_with_its_last_step_checkpointed_is_finished(tmp_path: Path) -> None:
    """A relaunch of a finished GRPO stage exports instead of rebuilding every worker for validation."""
    checkpoints = tmp_path / "checkpoints"
    cfg = {"easyr1": {"trainer": {"save_checkpoint_path": str(checkpoints), "max_steps": 40}}}
    engine = easyr1.EasyR1(cfg, Run.at(tmp_path))
    assert not engine.finished()
    _save(checkpoints, 20)
    assert not engine.finished()
    _save(checkpoints, 40)
    assert engine.finished()


def _log(path: Path, steps: range) -> None:
    path.write_text("".join(json.dumps({"step": s, "reward": {"overall": s / 10}}) + "\n" for s in steps))


def test_every_attempts_metrics_are_kept_and_joined(tmp_path: Path) -> None:
    """EasyR1 empties experiment_log.jsonl when it starts: each attempt's is moved aside first; at export,
    a resumed attempt's rows replace the earlier attempt's rows of the steps it trained again."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    log = checkpoints / easyr1.EXPERIMENT_LOG
    _log(log, range(1, 26))  # attempt 1: killed after step 25, last checkpoint at 20
    assert easyr1.keep_attempt_log(checkpoints) == checkpoints / "experiment_log.attempt-1.jsonl"
    _log(log, range(21, 31))  # attempt 2 resumed from 20, killed after 30 with a checkpoint at 30
    easyr1.keep_attempt_log(checkpoints)
    log.write_text("")  # attempt 3 started and died before its first step
    assert easyr1.keep_attempt_log(checkpoints) is None
    _log(log, range(31, 41))
    rows = easyr1.joined_log(checkpoints)
    assert [row["step"] for row in rows] == list(range(1, 41))
    assert rows[0] == {"step": 1, "reward/overall": 0.1}
    assert sorted(p.name for p in checkpoints.glob("experiment_log.attempt-*")) == [
        "experiment_log.attempt-1.jsonl",
        "experiment_log.attempt-2.jsonl",
    ]


def test_warning_signal_stops_easyr1_after_its_next_checkpoint(tmp_path: Path) -> None:
    """EasyR1 has no checkpoint hook: SIGUSR1 lets it train on until the tracker names a newer step."""
    from tools.train.process import run_logged

    checkpoints = tmp_path / "checkpoints"
    _save(checkpoints, 20)
    cfg = {"easyr1": {"trainer": {"save_checkpoint_path": str(checkpoints)}}}
    assert set(easyr1.EasyR1(cfg, Run.at(tmp_path)).stop_handlers()) == {signal.SIGUSR1, signal.SIGTERM}
    handlers = {signal.SIGUSR1: easyr1.stop_after_next_checkpoint(checkpoints, poll_s=0.05)}
    stand_in = (  # "trains", saves step 40 two seconds after the warning, then would train for a minute more
        "import json, pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: None)\n"
        "print('training', flush=True); time.sleep(2)\n"
        f"p = pathlib.Path({str(checkpoints)!r}); (p / 'global_step_40').mkdir()\n"
        "(p / 'global_step_40' / 'dataloader.pt').write_bytes(b'x')\n"
        "(p / 'checkpoint_tracker.json').write_text(json.dumps({'last_global_step': 40}))\n"
        "time.sleep(60)\n"
    )

    def warn() -> None:  # SLURM's warning, once the engine runs
        while not (tmp_path / "train.log").exists() or "training" not in (tmp_path / "train.log").read_text():
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    threading.Thread(target=warn, daemon=True).start()
    start = time.monotonic()
    code = run_logged([sys.executable, "-c", stand_in], {}, tmp_path / "train.log", on_signal=handlers)
    assert code == -signal.SIGTERM and time.monotonic() - start < 30
    assert easyr1.tracked_step(checkpoints) == 40


# -- EasyR1 batch rules for the job's world size ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["easyr1.trainer.nnodes=4"], "data.rollout_batch_size 4 is not divisible by the 16 GPUs"),
        (["easyr1.trainer.n_gpus_per_node=3"], "data.rollout_batch_size 4 is not divisible by the 3 GPUs"),
        (
            ["easyr1.data.rollout_batch_size=12", "easyr1.worker.actor.global_batch_size=6"],
            "global_batch_size*n = 24 is not divisible by 16 data-parallel GPUs",
        ),
        (["easyr1.worker.actor.ulysses_size=3"], "ulysses_size 3 does not divide the 4 GPUs"),
    ],
)
def test_easyr1_batch_rules_use_the_world_size(overrides: list[str], expected: str) -> None:
    if "global_batch_size=6" in overrides[-1]:
        overrides = [
            *overrides,
            "easyr1.trainer.nnodes=4",
            "easyr1.worker.actor.micro_batch_size_per_device_for_update=1",
        ]
    with pytest.raises(RecipeError, match=expected.replace("*", r"\*")):
        validate(compose("beta", "7b", "h20x4", overrides))


def test_two_nodes_of_four_gpus_validate() -> None:
    # the paper budget's 1-prompt updates cannot split over 8 GPUs (recipes/budgets/paper.yaml); fast can
    validate(compose("beta", "7b", "h20x4", ["easyr1.trainer.nnodes=2"], budget="fast"))


# -- multi-node SFT: only node rank 0 writes --------------------------------------------------------------


def _plan(tmp_path: Path, engine: Any) -> Any:
    return runner.Plan(
        "alpha", "h20x4", Run(tmp_path / "runs", "7b", "alpha"),
        {"stage": "alpha", "run": {"selection_data": None}}, "c0ffee" * 10 + "abcd", engine, {}, [],
    )  # fmt: skip


def _engine(tmp_path: Path) -> Any:
    """A stand-in engine: its command writes which node ran it; resume/export steps are recorded."""
    calls: list[str] = []
    marker = tmp_path / "engine-ran"
    script = f"import os; open({str(marker)!r}, 'a').write(os.environ['NODE_RANK'] + ' ')"
    return types.SimpleNamespace(
        name="stand_in",
        config_name="engine.yaml",
        launch_env=(),
        calls=calls,
        command=lambda: [sys.executable, "-c", script],
        engine_file=lambda fitted: {"x": 1},
        finished=lambda: False,
        trained_steps=lambda: 1,
        resume=lambda: calls.append("resume"),
        stop_handlers=lambda: {},
        export=lambda model_dir=None: calls.append("export") or (tmp_path / "runs/7b/alpha/model").mkdir(),
    )


def test_node_rank_1_runs_the_engine_only_after_rank_0_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.train import node_rank

    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setattr(node_rank, "POLL_S", 0.05)
    engine = _engine(tmp_path)
    plan = _plan(tmp_path, engine)

    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv(node_rank.WAIT_ENV, "0.2")
    with pytest.raises(TimeoutError, match="node rank 0 did not prepare"):
        runner.execute(plan)  # rank 0 has not announced this launch
    assert not (tmp_path / "engine-ran").exists()

    node_rank.announce(plan.stage_dir, plan.config_hash, launch=True)
    before = sorted(p.name for p in plan.stage_dir.iterdir())
    runner.execute(plan)
    assert (tmp_path / "engine-ran").read_text() == "1 "
    after = sorted(p.name for p in plan.stage_dir.iterdir())
    assert after == sorted([*before, "train.node1.log"])  # no config, no DONE, no model, no train.log
    assert engine.calls == []

    monkeypatch.setenv("NODE_RANK", "0")
    runner.execute(plan)
    assert engine.calls == ["resume", "export"]
    assert (plan.stage_dir / "DONE").read_text() == plan.config_hash + "\n"
    assert (plan.stage_dir / node_rank.LAUNCH_FILE).read_text().split() == [plan.config_hash, "7.0", "launch"]

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the job requeued: rank 0 finds the stage done
    runner.execute(plan)
    monkeypatch.setenv("NODE_RANK", "1")
    runner.execute(plan)  # and rank 1 does not launch
    assert (tmp_path / "engine-ran").read_text() == "1 0 "
    assert engine.calls == ["resume", "export"]


# -- shared-node hygiene ----------------------------------------------------------------------------------


def test_engine_files_hold_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative data, cache, reward and DeepSpeed paths become absolute in llamafactory.yaml / easyr1.yaml
    (ranks and Ray workers need not share the runner's directory); config.yaml keeps the recipe's values."""
    from tools.common.paths import REPO_ROOT

    monkeypatch.delenv("PATHVLM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    run = Run.at(tmp_path / "runs" / "7b" / "alpha")
    sft = to_container(compose("alpha", "7b", "h20x4"))
    args = llamafactory.LlamaFactory(sft, run).engine_file({})
    assert args["dataset_dir"] == str(tmp_path / "data/generated/pathmmu/llamafactory")
    assert args["deepspeed"] == str(REPO_ROOT / "recipes/deepspeed/zero3.json")
    assert sft["llamafactory"]["deepspeed"] == "recipes/deepspeed/zero3.json"
    section = easyr1.EasyR1(to_container(compose("r1", "7b", "h20x4")), run).engine_file({})
    assert section["data"]["train_files"] == str(tmp_path / "data/generated/pathmmu/easyr1/rl.jsonl")
    reward = section["worker"]["reward"]
    assert reward["reward_function"] == f"{REPO_ROOT / 'rewards/easyr1.py'}:process_reward"
    assert reward["reward_function_kwargs"]["judge"]["cache_dir"] == str(tmp_path / ".cache/judge")


def test_collectives_time_out_within_hours() -> None:
    """A hung NCCL collective must fail the job, not hold its GPUs until the 2-day limit."""
    timeout = to_container(compose("alpha", "7b", "h20x4"))["llamafactory"]["ddp_timeout"]
    assert 600 <= timeout <= 4 * 3600


@pytest.mark.parametrize(
    ("gpus", "nodes", "accumulation", "error"),
    [
        ("4", None, 1, None),  # the profile's GPUs: unchanged
        ("2", None, 2, None),  # --gres=gpu:2: twice the accumulation keeps the effective batch 4
        ("1", None, 4, None),
        ("3", None, None, "no gradient accumulation keeps the effective batch 4"),
        ("4", "2", None, "the job has 8 GPUs (2 x 4)"),  # 8 GPUs cannot hold a batch of 4 at 1 per GPU
    ],
)
def test_sft_keeps_the_effective_batch_on_other_gpus(
    gpus: str,
    nodes: str | None,
    accumulation: int | None,
    error: str | None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tools.cli import main

    monkeypatch.setenv("PATHVLM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", gpus)
    monkeypatch.delenv("NNODES", raising=False)
    if nodes is not None:
        monkeypatch.setenv("SLURM_JOB_NUM_NODES", nodes)
    else:
        monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)
    code = main(["run", "alpha", "--size", "7b", "--profile", "h20x4", "--dry-run"])
    out, err = capsys.readouterr()
    if error is not None:
        assert code == 2 and error in err and "--set gpus_per_node=" in err
        return
    assert code == 0
    assert "  gradient_accumulation_steps: 1\n" in out  # the config keeps the profile's value
    assert (f"gradient_accumulation_steps 1 -> {accumulation} keeps the effective batch 4" in out) == (
        accumulation != 1
    )


def test_the_batch_fitted_to_the_job_is_recorded_beside_the_config_not_in_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch --gres=gpu:2 on a 4-GPU profile: llamafactory.yaml trains with twice the accumulation, job.json
    says so; config.yaml and its hash are the profile's (a requeue on other GPUs resumes)."""
    monkeypatch.delenv("NNODES", raising=False)
    monkeypatch.delenv("SLURM_JOB_NUM_NODES", raising=False)
    monkeypatch.delenv("SLURM_GPUS_ON_NODE", raising=False)
    runs = tmp_path / "runs"
    plain = runner.make_plan("alpha", "7b", "h20x4", runs, [], dry_run=True)
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "2")
    plan = runner.make_plan("alpha", "7b", "h20x4", runs, [], dry_run=True)
    assert plan.config_hash == plain.config_hash and plain.job == {}
    assert plan.job == {"llamafactory.gradient_accumulation_steps": 2}
    runner._write_files(plan)
    assert json.loads(plan.run.job.read_text()) == plan.job
    engine_file = yaml.safe_load((plan.run.dir / "llamafactory.yaml").read_text())
    assert engine_file["gradient_accumulation_steps"] == 2
    assert engine_file["loss_guard_steps"] == plan.cfg["loss_guard_steps"]  # the SFT child's own spec
    assert yaml.safe_load(plan.run.config.read_text())["llamafactory"]["gradient_accumulation_steps"] == 1
    runner._write_files(plain)  # the profile's GPUs again: nothing fitted, no job.json
    assert not plan.run.job.exists()
